"""Linux auditd logs: raw ``/var/log/audit/audit.log`` text (docs/formats/auditd.md).

The records of one event share their stamp ``msg=audit(<epoch>:<serial>)`` (and ``node=``);
they are joined by it, interleaved or not. An event is complete at its ``EOE`` record, or
once ``MAX_OPEN`` newer events have started (not every event ends with ``EOE``; time is no
guide, as logs are not always in time order).

An event becomes ``access`` rows when it is a successful open or read of a regular file (or
any successful syscall of a rule whose key names a read watch, e.g. ``-k pacs_read``): one
row per file, ``object`` ``file://<node>/abs/path``. A successful ``USER_LOGIN`` becomes a
``login`` row. Every other event is counted as skipped, by its type.
"""

from __future__ import annotations

import posixpath
import re
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import duckdb

from hemostat.ingest.reader import Columns, Log, Reader, open_text
from hemostat.schema import Action, Sample, Table

#: events kept open (waiting for more records) before the oldest is taken as complete
MAX_OPEN = 4096
#: rows handed to the store at a time
BATCH_ROWS = 100_000

_RECORD = re.compile(r"(?:node=(\S+) )?type=(\S+) msg=audit\((\d+)\.(\d+):(\d+)\):?")
_FIELD = re.compile(r"""([\w-]+)=("[^"]*"|'[^']*'|\S*)""")
_HEX = re.compile(r"(?:[0-9A-F]{2})+")
_READ_KEY = re.compile(r"(?:^|[^a-z])read")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_UNSET = frozenset({"4294967295", "-1", "unset"})

#: syscall numbers hemostat names, by audit arch (x86_64, aarch64, i386)
_SYSCALLS: dict[str, dict[str, str]] = {
    "c000003e": {"0": "read", "1": "write", "2": "open", "17": "pread64", "19": "readv",
                 "40": "sendfile", "42": "connect", "59": "execve", "85": "creat",
                 "257": "openat", "322": "execveat", "326": "copy_file_range", "437": "openat2"},
    "c00000b7": {"56": "openat", "63": "read", "64": "write", "65": "readv", "67": "pread64",
                 "71": "sendfile", "203": "connect", "221": "execve", "281": "execveat",
                 "285": "copy_file_range", "437": "openat2"},
    "40000003": {"3": "read", "4": "write", "5": "open", "8": "creat", "11": "execve",
                 "180": "pread64", "187": "sendfile", "295": "openat", "358": "execveat",
                 "377": "copy_file_range", "437": "openat2"},
}  # fmt: skip
_READS = frozenset({"open", "openat", "openat2", "read", "readv", "pread64", "sendfile",
                    "copy_file_range"})  # fmt: skip
_EXECS = frozenset({"execve", "execveat"})
_FLAGS_ARG = {"open": "a1", "openat": "a2"}  # where the open flags are
_NOT_READ = frozenset({"PARENT", "DELETE", "CREATE"})  # PATH nametypes that are not reads
_EXPORTERS = frozenset({"scp", "sftp-server", "sftp", "rsync", "rclone", "curl", "wget", "nc",
                        "ncat", "netcat", "socat", "ftp", "lftp", "smbclient", "aws", "azcopy",
                        "gsutil", "s3cmd"})  # fmt: skip
_COPIERS = frozenset({"cp", "dd", "tar", "zip", "7z", "7za", "gzip", "pigz", "bzip2", "xz",
                      "zstd", "cpio"})  # fmt: skip


@dataclass(slots=True)
class _Event:
    node: str | None
    ts: datetime
    records: list[tuple[str, str]] = field(default_factory=list)  # (type, text after stamp)

    def bodies(self, rtype: str) -> Iterator[str]:
        return (body for t, body in self.records if t == rtype)


class Auditd(Reader):
    id: ClassVar[str] = "auditd"
    description: ClassVar[str] = "Linux auditd logs (raw audit.log; file reads and logins)"
    tables: ClassVar[tuple[Table, ...]] = (Table.ACCESS,)

    def sniff(self, sample: Sample) -> bool:
        for line in sample.head.decode("utf-8", "replace").splitlines():
            if line.strip() and not line.startswith("#"):
                return _RECORD.match(line) is not None
        return False

    def read(
        self, path: Path, con: duckdb.DuckDBPyConnection, log: Log
    ) -> Iterator[tuple[Table, Any]]:
        cols = Columns(Table.ACCESS)
        for event in _events(path, log):
            _add(event, cols, log)
            if len(cols) >= BATCH_ROWS:
                yield Table.ACCESS, cols.arrow()
                cols = Columns(Table.ACCESS)
        if len(cols):
            yield Table.ACCESS, cols.arrow()


def _events(path: Path, log: Log) -> Iterator[_Event]:
    """Complete events, their records joined by (node, time, serial)."""
    pending: OrderedDict[tuple[str | None, str, str, str], _Event] = OrderedDict()
    with open_text(path) as fh:
        for lineno, line in enumerate(fh, 1):
            m = _RECORD.search(line)
            if m is None:
                _not_a_record(line, lineno, log)
                continue
            node, rtype, sec, frac, serial = m.groups()
            key = (node, sec, frac, serial)
            event = pending.get(key)
            if event is None:
                event = pending[key] = _Event(node, _time(sec, frac))
                if len(pending) > MAX_OPEN:
                    yield pending.popitem(last=False)[1]
            if rtype == "EOE":
                yield pending.pop(key)
            else:
                event.records.append((rtype, line[m.end() :].rstrip("\r\n")))
    yield from pending.values()


def _not_a_record(line: str, lineno: int, log: Log) -> None:
    if line.startswith("#"):
        log.skip("comment line")
    elif line.strip():
        log.bad_line(lineno, f"not an audit record (no msg=audit(…) stamp): {line[:60]!r}")


def _time(sec: str, frac: str) -> datetime:
    return _EPOCH + timedelta(seconds=int(sec), microseconds=int(frac.ljust(6, "0")[:6]))


def _add(event: _Event, cols: Columns, log: Log) -> None:
    """The access rows of one event, or one skip counted under its type."""
    if not event.records:
        return  # an EOE whose records came too late to join: already counted
    first = event.records[0][0]
    if any(t == "SYSCALL" for t, _ in event.records):
        reason = _add_syscall(event, cols)
    elif first == "USER_LOGIN":
        reason = _add_login(event, cols)
    else:
        reason = f"auditd {first}"
    if reason:
        log.skip(reason)


def _add_syscall(event: _Event, cols: Columns) -> str | None:
    """Rows for a file read; otherwise the reason it is skipped."""
    sc = _fields(next(event.bodies("SYSCALL")))
    name = sc.get("SYSCALL") or _SYSCALLS.get(sc.get("arch", ""), {}).get(sc.get("syscall", ""))
    name = name or sc.get("syscall", "?")
    if sc.get("success") == "no":
        return f"auditd SYSCALL {name} (failed)"
    process = _process(event, sc)
    action = _action(sc, name, process)
    if action is None:
        return f"auditd SYSCALL {name}"
    paths = _paths(event)
    for path in paths:
        cols.add(ts=event.ts, host=event.node, user=_user(sc), process=process,
                 action=str(action), object=f"file://{event.node or ''}{path}",
                 pid=_int(sc.get("pid")), source="auditd")  # fmt: skip
    return None if paths else f"auditd SYSCALL {name} (no file)"


def _action(sc: dict[str, str], name: str, process: str | None) -> Action | None:
    """What a successful syscall did to its files, or None when it read nothing."""
    if name in _EXECS or _write_only(sc, name):
        return None
    if name not in _READS and not _read_watch(sc):
        return None
    tool = posixpath.basename(process or "")
    if tool in _EXPORTERS:
        return Action.EXPORT
    return Action.COPY if tool in _COPIERS else Action.READ


def _write_only(sc: dict[str, str], name: str) -> bool:
    flags = _number(sc.get(_FLAGS_ARG.get(name, "")), 16)
    return name == "creat" or (flags is not None and flags & 3 == 1)  # O_WRONLY


def _read_watch(sc: dict[str, str]) -> bool:
    keys = (_text(sc.get("key")) or "").lower().split("\x01")
    return any(_READ_KEY.search(k) for k in keys)


def _paths(event: _Event) -> list[str]:
    """Absolute paths of the regular files the event read (relative names joined to CWD)."""
    cwd = next((_text(_fields(b).get("cwd")) for b in event.bodies("CWD")), None)
    paths: list[str] = []
    for body in event.bodies("PATH"):
        f = _fields(body)
        name, mode = _text(f.get("name")), _number(f.get("mode"), 8)
        if name is None or f.get("nametype") in _NOT_READ:
            continue
        if mode is not None and mode & 0o170000 != 0o100000:
            continue  # directories, devices, sockets: not data
        if not name.startswith("/"):
            if cwd is None:
                continue
            name = posixpath.normpath(posixpath.join(cwd, name))
        if name not in paths:
            paths.append(name)
    return paths


def _add_login(event: _Event, cols: Columns) -> str | None:
    f = _fields(next(event.bodies("USER_LOGIN")))
    if f.get("res") not in ("success", "1"):
        return "auditd USER_LOGIN (failed)"
    exe = _text(f.get("exe"))
    scheme = "ssh" if posixpath.basename(exe or "").startswith("sshd") else "login"
    user = _text(f.get("acct")) or _text(f.get("ID")) or f.get("id") or _user(f)
    cols.add(ts=event.ts, host=event.node, user=user, process=exe, action=str(Action.LOGIN),
             object=f"{scheme}://{event.node or ''}", client_ip=_text(f.get("addr")),
             pid=_int(f.get("pid")), source="auditd")  # fmt: skip
    return None


def _user(f: dict[str, str]) -> str | None:
    """The login user (auid) when set, else the uid: names when the log is enriched."""
    auid = f.get("auid")
    if auid is not None and auid not in _UNSET:
        return _text(f.get("AUID")) or auid
    return _text(f.get("UID")) or f.get("uid")


def _process(event: _Event, sc: dict[str, str]) -> str | None:
    process = _text(sc.get("exe")) or _text(sc.get("comm"))
    if process is None:
        title = next(event.bodies("PROCTITLE"), None)
        process = _text(_fields(title).get("proctitle")) if title else None
    return process


def _fields(body: str) -> dict[str, str]:
    """``key=value`` pairs of one record, values as written (quoted or hex); those of a
    user-space ``msg='…'`` and of the enriched part (after ``\\x1d``) included."""
    raw, _, enriched = body.partition("\x1d")
    fields: dict[str, str] = {}
    for key, value in _FIELD.findall(raw):
        if key == "msg" and value.startswith("'"):
            for inner, inner_value in _FIELD.findall(value[1:-1]):
                fields.setdefault(inner, inner_value)
        else:
            fields[key] = value
    for key, value in _FIELD.findall(enriched):
        fields.setdefault(key, value)
    return fields


def _text(value: str | None) -> str | None:
    """A string field decoded: quotes removed, hex decoded, ``(null)`` and ``?`` as None."""
    if value is None or value in ("", "(null)", "?", "(none)"):
        return None
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    if _HEX.fullmatch(value):
        return bytes.fromhex(value).decode("utf-8", "replace").rstrip("\x00").replace("\x00", " ")
    return value


def _int(value: str | None) -> int | None:
    return int(value) if value is not None and value.isdigit() else None


def _number(value: str | None, base: int) -> int | None:
    try:
        return int(value, base) if value else None
    except ValueError:
        return None

"""Follows growing log files across rotations; their new complete lines become ``raw`` chunks
(contract section 3) that the collector parses with the ingest reader of their format.

A followed file is known by its device and inode, and read from a byte offset that only ever
moves past complete lines (a partial last line waits for its end). Its position
(``dev``, ``ino``, ``offset``, ``line``) is saved by the caller with each spooled batch, so an
agent restart resumes where the last spooled batch ended. Cases handled:

- rename rotation (``logrotate``, auditd, Zeek): the path names a new inode; the old file is
  read to its end (and still for ``GRACE`` seconds, for a writer that has not reopened yet),
  then the new one from its start. At start-up, a saved inode no longer at the path is looked
  for among the path's siblings (``audit.log.1``) and read from the saved offset.
- ``copytruncate``: same inode, size below the offset: read again from the start.
- the file disappears: the open handle is read to its end; when a file appears again at the
  path it is read from its start.
- Zeek TSV: every chunk repeats the file's ``#`` header lines first, so it parses on its own;
  ``#close`` and other ``#`` lines after the data are not shipped.
- PostgreSQL logs: a chunk is cut only before a line that starts a log record (statements
  continue over several lines); audit logs only between events. (A poll that ends while a
  record or an event is being written can still part it: rare, as both are written at once.)
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from hemostat.errors import ConfigError

log = logging.getLogger("hemostat.agent.tail")

#: line-based formats the agent can ship raw (ids of ``hemostat.ingest.READERS``)
FORMATS = ("zeek_tsv", "zeek_json", "suricata_eve", "auditd", "pglog", "access_jsonl")
MAX_CHUNK_LINES = 5_000
MAX_CHUNK_BYTES = 1 << 20
READ_BYTES = 1 << 20
#: seconds a rotated-away file is still read after its path names a new file
GRACE = 5.0
_AUDIT_STAMP = re.compile(r"msg=audit\([\d.:]+\)")
_PG_RECORD = re.compile(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d|\d{10}(?:\.\d+)?\s")

Keep = Callable[[str], bool]


@dataclass(frozen=True, slots=True)
class TailSpec:
    """``FORMAT:PATH`` from the command line."""

    format: str
    path: Path

    @classmethod
    def parse(cls, text: str) -> TailSpec:
        fmt, sep, path = text.partition(":")
        if not sep or not path:
            raise ConfigError(f"--tail {text!r}: expected FORMAT:PATH, e.g. zeek_tsv:/x/conn.log")
        if fmt not in FORMATS:
            raise ConfigError(
                f"--tail {text!r}: unknown format {fmt!r}; one of {', '.join(FORMATS)}"
            )
        return cls(fmt, Path(path))

    @property
    def key(self) -> str:
        return f"{self.format}:{self.path}"


@dataclass(frozen=True, slots=True)
class Chunk:
    format: str
    path: str
    first_line: int  # line number in the file of the first line after the repeated header
    lines: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"format": self.format, "path": self.path, "first_line": self.first_line,
                "lines": list(self.lines)}  # fmt: skip


@dataclass(slots=True)
class _File:
    fh: IO[bytes]
    dev: int
    ino: int
    offset: int = 0
    line: int = 0  # complete lines read so far
    header: list[str] = field(default_factory=list)
    data_seen: bool = False  # a non-# line was read (the Zeek header is over)
    rotated: float | None = None  # when its path stopped naming it


@dataclass(slots=True)
class _Budget:
    lines: int
    size: int

    @property
    def spent(self) -> bool:
        return self.lines <= 0 or self.size <= 0


class Follower:
    """One path, followed across rotations."""

    def __init__(
        self, spec: TailSpec, position: dict[str, int] | None = None, keep: Keep | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:  # fmt: skip
        self.spec, self.keep, self.clock = spec, keep, clock
        self._saved = position
        self._cur: _File | None = None
        self._old: list[_File] = []

    def poll(self, budget: _Budget | None = None) -> list[Chunk]:
        budget = budget or _Budget(50_000, 64 << 20)
        if self._saved is not None:
            self._resume(self._saved)
            self._saved = None
        st = _stat(self.spec.path)
        cur = self._cur
        if cur is not None and (st is None or (st.st_dev, st.st_ino) != (cur.dev, cur.ino)):
            cur.rotated = self.clock()
            self._old.append(cur)
            self._cur = cur = None
        if cur is not None and st is not None and st.st_size < cur.offset:
            log.info("%s was truncated (copytruncate): reading it again from the start",
                     self.spec.path)  # fmt: skip
            cur.offset, cur.line, cur.header, cur.data_seen = 0, 0, [], False
        if cur is None and st is not None:
            self._cur = cur = self._open(0, 0)
        chunks = [c for old in list(self._old) for c in self._drain(old, budget)]
        if cur is not None:
            chunks += self._chunks(cur, self._read(cur, budget, final=False))
        return chunks

    def position(self) -> dict[str, int] | None:
        """Where to resume after a restart (the file at the path, not a rotated one)."""
        if self._saved is not None:
            return self._saved
        cur = self._cur
        if cur is None:
            return None
        return {"dev": cur.dev, "ino": cur.ino, "offset": cur.offset, "line": cur.line}

    def close(self) -> None:
        for f in (*self._old, *([self._cur] if self._cur else [])):
            f.fh.close()
        self._old, self._cur = [], None

    # -- files -----------------------------------------------------------------------------

    def _resume(self, saved: dict[str, int]) -> None:
        st = _stat(self.spec.path)
        ident = (saved.get("dev"), saved.get("ino"))
        if st is not None and (st.st_dev, st.st_ino) == ident and st.st_size >= saved["offset"]:
            self._cur = self._open(saved["offset"], saved["line"])
            return
        rotated = self._sibling(ident)
        if rotated is not None:
            log.info("%s was rotated while the agent was stopped: reading the rest of %s",
                     self.spec.path, rotated)  # fmt: skip
            old = self._open(saved["offset"], saved["line"], rotated)
            if old is not None:
                old.rotated = self.clock() - GRACE
                self._old.append(old)

    def _sibling(self, ident: tuple[int | None, int | None]) -> Path | None:
        try:
            with os.scandir(self.spec.path.parent) as entries:
                for entry in entries:
                    if entry.name.startswith(self.spec.path.name) and entry.is_file():
                        st = entry.stat()
                        if (st.st_dev, st.st_ino) == ident:
                            return Path(entry.path)
        except OSError:
            return None
        return None

    def _open(self, offset: int, line: int, path: Path | None = None) -> _File | None:
        try:
            fh = open(path or self.spec.path, "rb")  # noqa: SIM115 (kept open across polls)
        except OSError as exc:
            log.warning("cannot open %s: %s", path or self.spec.path, exc.strerror)
            return None
        st = os.fstat(fh.fileno())
        f = _File(fh, st.st_dev, st.st_ino, offset, line)
        if offset and self.spec.format == "zeek_tsv":
            f.header, f.data_seen = _zeek_header(fh), True
        return f

    def _drain(self, old: _File, budget: _Budget) -> list[Chunk]:
        done = old.rotated is not None and self.clock() - old.rotated >= GRACE
        lines = self._read(old, budget, final=done)
        if done and not budget.spent:
            old.fh.close()
            self._old.remove(old)
        return self._chunks(old, lines)

    def _read(self, f: _File, budget: _Budget, final: bool) -> list[tuple[int, str]]:
        """New complete lines (with their numbers); with ``final``, a last line without end."""
        out: list[tuple[int, str]] = []
        f.fh.seek(f.offset)
        while not budget.spent:
            data = f.fh.read(min(READ_BYTES, max(budget.size, 1)))
            end = data.rfind(b"\n")
            if end >= 0:
                data = data[: end + 1]
            elif not data or not (final or len(data) == READ_BYTES):
                break
            parts = data.split(b"\n")
            if data.endswith(b"\n"):
                parts.pop()
            parts = parts[: max(budget.lines, 1)]
            used = min(sum(len(p) + 1 for p in parts), len(data))
            f.offset += used
            budget.size -= used
            budget.lines -= len(parts)
            for raw in parts:
                f.line += 1
                text = raw.decode("utf-8", "replace").rstrip("\r")
                if self._wanted(f, text):
                    out.append((f.line, text))
        return out

    def _wanted(self, f: _File, text: str) -> bool:
        if self.spec.format == "zeek_tsv" and text.startswith("#"):
            if not f.data_seen:
                f.header.append(text)
            return False
        f.data_seen = True
        return self.keep is None or self.keep(text)

    def _chunks(self, f: _File, lines: list[tuple[int, str]]) -> list[Chunk]:
        chunks: list[Chunk] = []
        start, size = 0, 0
        for i, (_, text) in enumerate(lines):
            full = i - start >= MAX_CHUNK_LINES or size >= MAX_CHUNK_BYTES
            if full and self._starts_record(text, lines[i - 1][1]):
                chunks.append(self._chunk(f, lines[start:i]))
                start, size = i, 0
            size += len(text) + 1
        if start < len(lines):
            chunks.append(self._chunk(f, lines[start:]))
        return chunks

    def _chunk(self, f: _File, lines: list[tuple[int, str]]) -> Chunk:
        texts = tuple(f.header) + tuple(text for _, text in lines)
        return Chunk(self.spec.format, str(self.spec.path), lines[0][0], texts)

    def _starts_record(self, text: str, previous: str) -> bool:
        """Whether a chunk may start at ``text``: not inside a PostgreSQL record (continued
        on tab-indented lines) nor inside an audit event (records sharing one stamp)."""
        if self.spec.format == "pglog":
            return _PG_RECORD.match(text) is not None
        if self.spec.format == "auditd":
            stamp = _AUDIT_STAMP.search(text)
            return stamp is None or stamp.group() not in previous
        return True


class Tailer:
    """Every followed path; positions keyed by ``FORMAT:PATH``."""

    def __init__(self, positions: dict[str, Any] | None = None) -> None:
        self._saved = dict(positions or {})
        self.followers: dict[str, Follower] = {}
        self._turn = 0

    def add(self, spec: TailSpec, keep: Keep | None = None) -> None:
        if spec.key not in self.followers:
            self.followers[spec.key] = Follower(spec, self._saved.get(spec.key), keep)

    def remove(self, spec: TailSpec) -> None:
        follower = self.followers.pop(spec.key, None)
        if follower is not None:
            follower.close()

    def poll(self, max_lines: int = 50_000, max_bytes: int = 32 << 20) -> list[Chunk]:
        """New lines of every file, at most about ``max_lines`` and ``max_bytes``."""
        budget = _Budget(max_lines, max_bytes)
        chunks: list[Chunk] = []
        followers = list(self.followers.values())
        self._turn = (self._turn + 1) % max(len(followers), 1)  # a busy log starves no other
        for follower in followers[self._turn :] + followers[: self._turn]:
            if budget.spent:
                break
            chunks += follower.poll(budget)
        return chunks

    def positions(self) -> dict[str, Any]:
        found = {key: f.position() for key, f in self.followers.items()}
        return {key: p for key, p in found.items() if p is not None}

    def close(self) -> None:
        for follower in self.followers.values():
            follower.close()


def _stat(path: Path) -> os.stat_result | None:
    try:
        return path.stat()
    except OSError:
        return None


def _zeek_header(fh: IO[bytes]) -> list[str]:
    """The ``#`` lines a Zeek TSV file starts with."""
    fh.seek(0)
    header = []
    for raw in fh.read(64 * 1024).split(b"\n"):
        text = raw.decode("utf-8", "replace").rstrip("\r")
        if not text.startswith("#"):
            break
        header.append(text)
    return header

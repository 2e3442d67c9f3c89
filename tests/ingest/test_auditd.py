"""Linux auditd logs: the real samples in ../shared/data/auditd-samples, and a hand-made
interleaved log (tests/data/auditd/interleaved.log).

How the expected numbers were obtained, independently of hemostat:

- events per file = distinct ``(node, msg=audit(time:serial))`` stamps::

    grep -oE '^(node=[^ ]+ )?type=[^ ]+ msg=audit\\([0-9.]+:[0-9]+\\)' F \\
        | sed -E 's/type=[^ ]+ //' | sort -u | wc -l

  for go-libaudit/auparse, the same as the distinct ``(@timestamp, sequence)`` of the
  upstream parser's ``.golden`` output (checked below, in ``test_events_agree_with_golden``);
- access rows: the samples hold no successful open/read of a regular file (``grep -E
  'syscall=(2|257) success=yes'`` finds none; the two successful ``read`` syscalls of
  laurel/record-syscall-key.txt name no file), only two successful sshd logins
  (``grep -c 'type=USER_LOGIN.*res=success'``), in audit-rhel7.log and audit-ubuntu16.log;
- bad lines: ``type=UNKNOWN[1329] msg=?`` (line 31 of audit-rhel7.log) has no stamp;
  the upstream .golden has ``null`` in its place. Every event not turned into a row is
  counted as skipped, so rows + skipped events = events.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hemostat.errors import IngestError
from hemostat.ingest import detect, ingest_file
from hemostat.ingest.auditd import _fields, _text
from hemostat.schema import Table
from hemostat.store import Store

DATA = Path(__file__).parents[1] / "data" / "auditd"
GO = "go-libaudit/auparse/testdata"
LAUREL_SINGLE = ("adjntpval", "anom-promiscuous", "avc-apparmor", "bind-ipv4-bigendian",
                 "execve", "execve-long", "login", "nscd", "perl-reverse-shell", "ptrace",
                 "service-start", "uringop", "weblogic")  # fmt: skip

#: events per sample file (grep count, see the module docstring)
EVENTS = {
    f"{GO}/audit-rhel6.log": 2, f"{GO}/audit-rhel7.log": 46, f"{GO}/audit-ubuntu14.log": 1,
    f"{GO}/audit-ubuntu16.log": 3, f"{GO}/audit-ubuntu17.log": 1, f"{GO}/test2.log": 7,
    f"{GO}/test3.log": 10,
    "go-libaudit/testdata/lost_messages.log": 5, "go-libaudit/testdata/normal.log": 5,
    "go-libaudit/testdata/out_of_order.log": 5, "go-libaudit/testdata/rollover.log": 5,
    "laurel/fork-sleep-exec.txt": 3, "laurel/line-user-acct.txt": 1,
    "laurel/proc-trace-dpkg-l.txt": 23, "laurel/record-connect.txt": 2,
    "laurel/record-syscall-key.txt": 3, "laurel/record-syscall-nullkey.txt": 3,
    "laurel/shell-proc-trace-confusion.txt": 72, "laurel/shell-proc-trace-reordered.txt": 9,
    "laurel/shell-proc-trace.txt": 9,
    **{f"laurel/record-{name}.txt": 1 for name in LAUREL_SINGLE},
    **{f"laurel/tree/{i:02}.txt": 1 for i in range(17)},
    "linux-audit-userspace/test.log": 7, "linux-audit-userspace/test2.log": 7,
    "linux-audit-userspace/test3.log": 8, "linux-audit-userspace/test4.log": 2,
}  # fmt: skip
LOGINS = {f"{GO}/audit-rhel7.log": 1, f"{GO}/audit-ubuntu16.log": 1}
BAD_LINES = {f"{GO}/audit-rhel7.log": [31]}


def _samples(shared: Path) -> list[str]:
    root = shared / "auditd-samples"
    return sorted(
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.suffix in (".log", ".txt") and p.stem not in ("LICENSE", "README")
    )


def _auditd_skips(skipped: dict[str, int]) -> int:
    return sum(n for reason, n in skipped.items() if reason.startswith("auditd "))


def test_every_sample_is_listed(shared: Path) -> None:
    assert _samples(shared) == sorted(EVENTS)


@pytest.mark.parametrize("rel", sorted(EVENTS))
def test_every_sample_ingests_exactly(shared: Path, store: Store, rel: str) -> None:
    path = shared / "auditd-samples" / rel
    assert detect(path).id == "auditd"
    report = ingest_file(store, path)
    rows = LOGINS.get(rel, 0)
    assert report.rows.get(Table.ACCESS, 0) == rows
    assert _auditd_skips(report.skipped) == EVENTS[rel] - rows
    assert [e.line for e in report.bad] == BAD_LINES.get(rel, [])


def test_events_agree_with_golden(shared: Path) -> None:
    """The grep counts above equal the events of the upstream parser's own output."""
    for golden in sorted((shared / "auditd-samples" / GO).glob("*.golden")):
        records = [r for r in json.loads(golden.read_text()) if r]
        events = {(r["@timestamp"], r["sequence"]) for r in records}
        assert len(events) == EVENTS[f"{GO}/{golden.stem}"], golden.name


def test_string_fields_decode_like_upstream(shared: Path) -> None:
    """Quoted, hex-encoded and ``msg='…'`` values decode as go-libaudit's .golden says."""
    checked = 0
    for golden in sorted((shared / "auditd-samples" / GO).glob("*.golden")):
        for record in filter(None, json.loads(golden.read_text())):
            fields = _fields(re.sub(r"^audit\([\d.:]+\):?", "", record["raw_msg"]))
            for key in ("name", "cwd", "exe", "comm", "acct"):
                if key in record["data"] and key in fields:
                    assert _text(fields[key]) == record["data"][key], (golden.name, key)
                    checked += 1
    assert checked > 80  # hex names and cwds among them (e.g. cwd=2F746D702F6120622063)


def test_a_real_login_field_by_field(shared: Path, store: Store) -> None:
    # audit-ubuntu16.log: USER_LOGIN msg=audit(1492810797.778:12651): pid=11396 … auid=1001
    #   msg='op=login id=1001 exe="/usr/sbin/sshd" … addr=72.83.230.100 … res=success'
    ingest_file(store, shared / "auditd-samples" / GO / "audit-ubuntu16.log")
    row = store.con.execute(
        "SELECT ts, host, user, process, action, object, pid, client_ip, rows, bytes, source "
        "FROM access"
    ).fetchall()
    assert row == [(datetime(2017, 4, 21, 21, 39, 57, 778000, tzinfo=UTC), None, "1001",
                    "/usr/sbin/sshd", "login", "ssh://", 11396, "72.83.230.100", None, None,
                    "auditd")]  # fmt: skip


def _rows(store: Store) -> dict[str, tuple[object, ...]]:
    found = store.con.execute(
        "SELECT object, host, user, process, action, pid, client_ip, epoch_ms(ts) FROM access"
    ).fetchall()
    return {r[0]: r[1:] for r in found}


def test_interleaved_events_are_joined(store: Store) -> None:
    report = ingest_file(store, DATA / "interleaved.log")
    assert _rows(store) == {
        # records of 100 and 101 alternate; 100's name is relative to its CWD
        "file:///home/alice/notes/patients.csv":
            (None, "1000", "/usr/bin/cat", "read", 2301, None, 1700000000100),
        # hex exe and name, node= host, scp: export
        "file://fs-01/srv/pacs/study 1.dcm":
            ("fs-01", "1001", "/usr/bin/scp", "export", 3120, None, 1700000000100),
        # enriched (\x1d AUID="alice"): the name, not the number; cp: copy
        "file:///srv/rh/paie/2023.xlsx":
            (None, "alice", "/usr/bin/cp", "copy", 2403, None, 1700000004600),
        "ssh://": (None, "supplier1", "/usr/sbin/sshd", "login", 4000, "203.0.113.7",
                   1700000010000),
        # getxattr (not an open) of a rule keyed "phi-read" (hex, two keys), no EOE
        "file:///srv/pacs/x.dcm":
            (None, "1002", "/usr/bin/getfattr", "read", 4100, None, 1700000012000),
        # aarch64 openat; auid unset, so the uid
        "file:///data/research/cohort.parquet":
            (None, "990", "/usr/bin/python3.11", "read", 4200, None, 1700000013000),
    }  # fmt: skip
    assert report.skipped == {
        "auditd SYSCALL openat": 1,  # O_WRONLY|O_CREAT|O_TRUNC
        "auditd SYSCALL openat (failed)": 1,
        "auditd SYSCALL openat (no file)": 1,  # a directory
        "auditd SYSCALL execve": 1,
        "auditd USER_LOGIN (failed)": 1,
        "auditd USER_AUTH": 1,
    }
    assert [(e.line, e.message[:28]) for e in report.bad] == [(11, "not an audit record (no msg=")]


def test_strict_refuses_a_log_with_a_bad_line(store: Store) -> None:
    with pytest.raises(IngestError, match=r"interleaved\.log:11: not an audit record"):
        ingest_file(store, DATA / "interleaved.log", strict=True)
    assert store.counts().access == 0


def test_far_apart_records_of_one_event_still_join(tmp_path: Path, store: Store) -> None:
    """Records are joined by stamp, not by position: a SYSCALL and its PATH 500 events apart."""
    stamp = "msg=audit(1700000000.000:1)"
    lines = [f'type=SYSCALL {stamp}: arch=c000003e syscall=2 success=yes a1=0 pid=7 auid=0 '
             f'uid=0 comm="cat" exe="/usr/bin/cat" key=(null)']  # fmt: skip
    lines += [f"type=USER_CMD msg=audit(1700000001.000:{n}): pid=1" for n in range(2, 502)]
    lines.append(f'type=PATH {stamp}: item=0 name="/etc/shadow" mode=0100640 nametype=NORMAL')
    log = tmp_path / "audit.log"
    log.write_text("\n".join(lines) + "\n")
    report = ingest_file(store, log)
    assert _rows(store).keys() == {"file:///etc/shadow"}
    assert report.skipped == {"auditd USER_CMD": 500}

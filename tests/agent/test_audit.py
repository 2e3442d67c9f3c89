"""auditd read watches through a stand-in ``auditctl`` (a script keeping its rules in a file),
and the audit.log lines the agent ships: only events of its key, which the collector's
auditd reader turns into read rows."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from hemostat.agent.audit import KeyFilter, Watches
from hemostat.ingest import ingest_file
from hemostat.store import Store

AUDITCTL = """#!/bin/sh
echo "$*" >> "{d}/calls"
touch "{d}/rules"
case "$1" in
  -l) if [ -s "{d}/rules" ]; then cat "{d}/rules"; else echo "No rules"; fi ;;
  -w) echo "-w $2 -p r -k hemostat" >> "{d}/rules" ;;
  -W) grep -v -x -F -e "-w $2 -p r -k hemostat" "{d}/rules" > "{d}/rules.new";
      mv "{d}/rules.new" "{d}/rules" ;;
esac
"""


@pytest.fixture
def auditctl(tmp_path: Path) -> Path:
    script = tmp_path / "auditctl"
    script.write_text(AUDITCTL.format(d=tmp_path))
    script.chmod(0o755)
    return script


def _rules(tmp_path: Path) -> list[str]:
    return (tmp_path / "rules").read_text().splitlines()


def test_watches_are_reconciled_and_cleared(tmp_path: Path, auditctl: Path) -> None:
    (tmp_path / "rules").write_text("-w /srv/old/ -p r -k hemostat\n")  # left by a killed agent
    watches = Watches(str(auditctl))
    assert watches.apply(["/srv/pacs/", "/srv/rh/", "relative/ignored"]) == ["/srv/pacs/",
                                                                            "/srv/rh/"]  # fmt: skip
    assert _rules(tmp_path) == ["-w /srv/pacs/ -p r -k hemostat", "-w /srv/rh/ -p r -k hemostat"]
    calls = (tmp_path / "calls").read_text().splitlines()
    assert "-W /srv/old/ -p r -k hemostat" in calls and "-w /srv/pacs/ -p r -k hemostat" in calls
    assert watches.apply(["/srv/pacs/"]) == ["/srv/pacs/"]
    assert _rules(tmp_path) == ["-w /srv/pacs/ -p r -k hemostat"]
    watches.clear()
    assert _rules(tmp_path) == []


def test_directory_watches_listed_as_syscall_rules(tmp_path: Path, auditctl: Path) -> None:
    (tmp_path / "rules").write_text(
        "-a always,exit -F arch=b64 -S open -F dir=/srv/pacs/ -F perm=r -F key=hemostat\n"
    )
    assert Watches(str(auditctl)).listed() == ["/srv/pacs/"]


def test_without_auditctl_it_says_so_once(caplog: pytest.LogCaptureFixture) -> None:
    watches = Watches()
    watches.auditctl = None
    with caplog.at_level(logging.WARNING):
        assert watches.apply(["/srv/pacs/"]) == [] and watches.apply(["/srv/x/"]) == []
        watches.clear()
    assert [r.getMessage() for r in caplog.records].count(
        "auditctl not found: no file-read events from this host (install auditd to have them)"
    ) == 1


EVENT = """\
type=SYSCALL msg=audit(1700000000.100:2301): arch=c000003e syscall=257 success=yes exit=3 a0=ffffff9c a1=7ffd a2=0 a3=0 items=1 ppid=1 pid=2301 auid=1000 uid=1000 gid=1000 euid=1000 suid=1000 fsuid=1000 egid=1000 sgid=1000 fsgid=1000 tty=pts0 ses=1 comm="cat" exe="/usr/bin/cat" key="{key}"
type=CWD msg=audit(1700000000.100:2301): cwd="/srv/pacs"
type=PATH msg=audit(1700000000.100:2301): item=0 name="/srv/pacs/study.dcm" inode=42 dev=08:01 mode=0100644 ouid=0 ogid=0 rdev=00:00 nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0
type=EOE msg=audit(1700000000.100:2301):
"""


def test_only_the_events_of_the_key_are_kept_and_they_parse(tmp_path: Path, store: Store) -> None:
    other = EVENT.format(key="other").replace("2301", "2302").replace("study", "other")
    unkeyed = EVENT.format(key="x").replace(' key="x"', " key=(null)").replace("2301", "2303")
    lines = (EVENT.format(key="hemostat") + other + unkeyed).splitlines()
    keep = KeyFilter()
    kept = [line for line in lines if keep(line)]
    assert len(kept) == 4 and all(":2301)" in line for line in kept)
    shipped = tmp_path / "audit-chunk.log"
    shipped.write_text("\n".join(kept) + "\n")
    report = ingest_file(store, shipped)
    assert report.format == "auditd"
    assert store.con.execute('SELECT action, object, "user" FROM access').fetchall() == [
        ("read", "file:///srv/pacs/study.dcm", "1000")
    ]

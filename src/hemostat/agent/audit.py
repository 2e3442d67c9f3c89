"""File-read watches through auditd: the data-store paths the collector names (``watch`` in
``GET /api/v1/agent/config``) get ``auditctl -w PATH -p r -k hemostat``; the records of those
watches are picked out of ``/var/log/audit/audit.log`` and shipped raw (format ``auditd``,
parsed on the collector by ``hemostat.ingest.auditd``).

Watches are reconciled with what the kernel already has under the key (``auditctl -l -k
hemostat``), so a watch left by an agent that was killed is removed when no longer wanted,
and all of them are removed on a clean stop. Without ``auditctl`` the agent says so once and
carries on without file-read events.
"""

from __future__ import annotations

import logging
import re
import shlex
import shutil
import subprocess
from collections import OrderedDict
from pathlib import Path

log = logging.getLogger("hemostat.agent.audit")

KEY = "hemostat"
AUDIT_LOG = Path("/var/log/audit/audit.log")
#: event stamps remembered to join a watch's later records (CWD, PATH...) to its SYSCALL
MAX_STAMPS = 4096
_STAMP = re.compile(r"msg=audit\((\d+\.\d+:\d+)\)")


class Watches:
    """The read watches this agent has asked auditd for."""

    def __init__(self, auditctl: str | None = None, key: str = KEY) -> None:
        self.auditctl = auditctl or shutil.which("auditctl")
        self.key = key
        self._warned = False

    @property
    def available(self) -> bool:
        if self.auditctl is None and not self._warned:
            log.warning("auditctl not found: no file-read events from this host "
                        "(install auditd to have them)")  # fmt: skip
            self._warned = True
        return self.auditctl is not None

    def apply(self, paths: list[str]) -> list[str]:
        """Make the watches exactly ``paths``; returns the paths watched."""
        if not self.available:
            return []
        wanted = list(dict.fromkeys(p for p in paths if p.startswith("/")))
        present = self.listed()
        for path in present:
            if path not in wanted:
                self._run("-W", path, "-p", "r", "-k", self.key)
        watched = []
        for path in wanted:
            if path in present or self._run("-w", path, "-p", "r", "-k", self.key) is not None:
                watched.append(path)
        return watched

    def clear(self) -> None:
        if self.auditctl is not None:
            for path in self.listed():
                self._run("-W", path, "-p", "r", "-k", self.key)

    def listed(self) -> list[str]:
        """Paths watched under the key now (``auditctl -l -k KEY``)."""
        out = self._run("-l", "-k", self.key)
        paths = []
        for line in (out or "").splitlines():
            words = shlex.split(line)
            if words[:1] == ["-w"] and len(words) >= 2:
                paths.append(words[1])
            else:  # directory watches may be listed as syscall rules: -F dir=/srv/pacs
                paths += [w.split("=", 1)[1] for w in words if w.startswith(("dir=", "path="))]
        return paths

    def _run(self, *args: str) -> str | None:
        if self.auditctl is None:
            return None
        try:
            done = subprocess.run([self.auditctl, *args], capture_output=True, text=True,
                                  timeout=30, check=False)  # fmt: skip
        except (OSError, subprocess.TimeoutExpired) as exc:
            log.warning("auditctl %s failed: %s", " ".join(args), exc)
            return None
        if done.returncode != 0:
            detail = (done.stderr or done.stdout).strip().splitlines()
            if args[0] != "-l":
                log.warning("auditctl %s failed: %s", " ".join(args),
                            detail[-1] if detail else done.returncode)  # fmt: skip
            return None
        return done.stdout


class KeyFilter:
    """Keeps the audit.log lines of events whose SYSCALL record carries the key: the SYSCALL
    record comes first, the event's other records share its ``msg=audit(...)`` stamp."""

    def __init__(self, key: str = KEY) -> None:
        self._key = re.compile(rf'\bkey=(?:"{re.escape(key)}"|{re.escape(key)})(?=[\s\x1d]|$)')
        self._stamps: OrderedDict[str, None] = OrderedDict()

    def __call__(self, line: str) -> bool:
        m = _STAMP.search(line)
        if m is None:
            return False
        stamp = m.group(1)
        if stamp in self._stamps:
            return True
        if "type=SYSCALL" in line and self._key.search(line):
            self._stamps[stamp] = None
            if len(self._stamps) > MAX_STAMPS:
                self._stamps.popitem(last=False)
            return True
        return False

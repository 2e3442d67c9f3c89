"""The live path in network namespaces: a server (``srv``) running the agent, the collector
(``col``, with the alert receivers on its loopback) and "the Internet" (``net``, a sink).

    srv 10.231.1.1 ──── 10.231.1.2 col     (management: agent -> collector, HTTPS)
    srv 10.231.2.1 ──── 198.51.100.10 net  (egress)

Every process runs inside one of these namespaces; the root namespace only runs
``hemostat init`` and ``agent enroll`` (no network).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.contain.lab import Lab, sh, wait_until

RECEIVERS = Path(__file__).with_name("receivers.py")
SEND = Path(__file__).with_name("send.py")
#: the collector's log line of a live detection pass: "detection pass START - END: ..."
PASS = re.compile(r"detection pass \S+ - (\S+):")
BIN = Path(sys.executable).parent
COLLECTOR, SERVER, INTERNET = "10.231.1.2", "10.231.2.1", "198.51.100.10"
SYSLOG_PORT, WEBHOOK_PORT, PORT = 5514, 8080, 8443

INVENTORY = f"""site: Lab hospital
timezone: Europe/Paris
hosts:
  - {{name: srv-01, ip: {SERVER}, role: server}}
management: [{COLLECTOR}]
"""

SETTINGS = f"""[server]
detect_interval = 2
agent_interval = 2

[alerting]
syslog = ["udp://127.0.0.1:{SYSLOG_PORT}"]
webhook = ["http://127.0.0.1:{WEBHOOK_PORT}/hook"]
"""


@dataclass
class Site:
    lab: Lab
    home: Path
    srv: str = ""
    col: str = ""
    net: str = ""
    alerts: Path = field(default_factory=Path)
    collector: subprocess.Popen[bytes] | None = None
    agent: subprocess.Popen[bytes] | None = None
    token: Path = field(default_factory=Path)

    def build(self) -> Site:
        lab = self.lab
        self.srv, self.col, self.net = lab.ns("srv"), lab.ns("col"), lab.ns("net")
        lab.link(self.srv, "10.231.1.1/24", self.col, f"{COLLECTOR}/24")
        a, b = lab.link(self.srv, f"{SERVER}/24", self.net, f"{INTERNET}/24")
        sh("ip", "-n", self.srv, "route", "add", "198.51.100.0/24", "dev", a)
        sh("ip", "-n", self.net, "route", "add", "10.231.2.0/24", "dev", b)
        self.home.mkdir(parents=True)
        (self.home / "inventory.yaml").write_text(INVENTORY)
        (self.home / "hemostat.toml").write_text(SETTINGS)
        hemostat("--home", str(self.home), "init", "--ip", COLLECTOR)
        enrolled = json.loads(hemostat("--home", str(self.home), "agent", "enroll", "srv-01",
                                       "--ip", SERVER, "--json"))  # fmt: skip
        self.token = self.home.parent / "agent.token"
        self.token.write_text(enrolled["token"])
        self.token.chmod(0o600)
        self.alerts = self.home.parent / "alerts.jsonl"
        self.spawn(self.col, sys.executable, "-I", str(RECEIVERS), str(self.alerts),
                   str(SYSLOG_PORT), str(WEBHOOK_PORT))  # fmt: skip
        if not wait_until(self.alerts.exists, 10):
            raise RuntimeError("the alert receivers did not start")
        return self

    def spawn(self, ns: str, *argv: str, env: dict[str, str] | None = None,
              log: Path | None = None) -> subprocess.Popen[bytes]:  # fmt: skip
        argv = ("ip", "netns", "exec", ns, *argv)
        environ = {**os.environ, **(env or {})}
        if log is None:
            proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                    env=environ)  # fmt: skip
        else:
            with log.open("ab") as out:  # the child keeps its own copy
                proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=environ)
        self.lab.procs.append(proc)
        return proc

    def start_collector(self) -> None:
        log = self.home.parent / "collector.log"
        proc = self.spawn(self.col, str(BIN / "hemostat"), "--home", str(self.home), "serve",
                          "--bind", f"{COLLECTOR}:{PORT}", log=log)  # fmt: skip
        self.collector = proc
        if not wait_until(lambda: "listening on" in log.read_text(errors="replace")
                          or proc.poll() is not None, 60):  # fmt: skip
            raise RuntimeError("the collector did not start")
        if proc.poll() is not None:
            raise RuntimeError(f"the collector failed: {log.read_text(errors='replace')}")

    def stop_collector(self) -> None:
        assert self.collector is not None
        self.collector.terminate()
        self.collector.wait(timeout=60)

    def start_agent(self) -> None:
        self.agent = self.spawn(
            self.srv, str(BIN / "hemostat-agent"), "--collector", f"https://{COLLECTOR}:{PORT}",
            "--token-file", str(self.token), "--ca", str(self.home / "pki" / "ca.pem"),
            "--state", str(self.home.parent / "agent"), "--interval", "2",
            env={"HEMOSTAT_AGENT__BATCH_SECONDS": "2", "HEMOSTAT_AGENT__BACKOFF_MAX_SECONDS": "3"}, log=self.home.parent / "agent.log",
        )  # fmt: skip
        log = self.home.parent / "collector.log"  # the agent samples once it delivered
        if not wait_until(lambda: "POST /api/v1/ingest" in log.read_text(errors="replace"), 30):
            raise RuntimeError("the agent delivered nothing in 30 s")

    def send(self, ns: str, host: str, port: int, size: int) -> None:
        """Exactly ``size`` bytes over one connection from ``ns``, closed cleanly."""
        done = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-I", str(SEND), host,
                               str(port), str(size)], capture_output=True, timeout=30)  # fmt: skip
        assert done.returncode == 0, done.stderr

    def passes(self) -> list[datetime]:
        """The end of every live detection pass so far, from the collector's log."""
        log = (self.home.parent / "collector.log").read_text(errors="replace")
        return [datetime.fromisoformat(end) for end in PASS.findall(log)]

    def received(self) -> list[dict[str, Any]]:
        lines = self.alerts.read_text().splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def first(self, sink: str) -> dict[str, Any] | None:
        return next((r for r in self.received() if r["sink"] == sink), None)


def hemostat(*argv: str) -> str:
    done = subprocess.run([str(BIN / "hemostat"), *argv], capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"hemostat {' '.join(argv)}: {done.stderr}")
    return done.stdout

"""A network-namespace lab for the containment tests: namespaces with a prefix unique to this
test process, veth links, and peers (``peer.py``) started inside them. ``close`` kills only the
processes it started and deletes only its namespaces."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hemostat.contain.runner import Runner

PEER = Path(__file__).with_name("peer.py")


def missing() -> str | None:
    """Why the lab cannot run here (None: it can)."""
    if os.geteuid() != 0:
        return "needs root (network namespaces, nftables)"
    for tool in ("ip", "nft", "ss"):
        if shutil.which(tool) is None:
            return f"needs {tool}"
    return None


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


def sh(*argv: str, stdin: str | None = None) -> str:
    done = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=20)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {done.stderr.strip()}")
    return done.stdout


@dataclass
class Sink:
    """A counting server's status file: bytes and last arrival time per peer IP."""

    path: Path

    def status(self) -> dict[str, Any]:
        for _ in range(50):
            try:
                return dict(json.loads(self.path.read_text()))
            except (OSError, ValueError):
                time.sleep(0.02)
        raise RuntimeError(f"{self.path}: no status from the sink")

    def bytes_from(self, ip: str) -> int:
        return int(self.status()["bytes"].get(ip, 0))

    def last_from(self, ip: str) -> float:
        return float(self.status()["last"].get(ip, 0.0))

    def quiet(self, ip: str, seconds: float) -> bool:
        """No byte from ``ip`` for ``seconds`` (by the sink's own clock)."""
        status = self.status()
        return status["t"] - status["last"].get(ip, 0.0) >= seconds


@dataclass
class Lab:
    tag: str
    tmp: Path
    namespaces: list[str] = field(default_factory=list)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    links: int = 0

    @property
    def prefix(self) -> str:
        return f"hs7{self.tag}{os.getpid() % 10000}-"

    def ns(self, name: str) -> str:
        full = self.prefix + name
        sh("ip", "netns", "add", full)
        self.namespaces.append(full)
        sh("ip", "-n", full, "link", "set", "lo", "up")
        return full

    def link(self, a: str, a_addr: str, b: str, b_addr: str) -> tuple[str, str]:
        """A veth pair between namespaces ``a`` and ``b`` with these addresses (CIDR)."""
        self.links += 1
        ia, ib = f"h7{os.getpid() % 10000}l{self.links}a", f"h7{os.getpid() % 10000}l{self.links}b"
        sh("ip", "link", "add", ia, "netns", a, "type", "veth", "peer", "name", ib, "netns", b)
        for ns, dev, addr in ((a, ia, a_addr), (b, ib, b_addr)):
            sh("ip", "-n", ns, "addr", "add", addr, "dev", dev)
            sh("ip", "-n", ns, "link", "set", dev, "up")
        return ia, ib

    def address(self, ns: str, addr: str, dev: str) -> None:
        sh("ip", "-n", ns, "addr", "add", addr, "dev", dev)

    def route(self, ns: str, dest: str, via: str) -> None:
        sh("ip", "-n", ns, "route", "add", dest, "via", via)

    def forwarding(self, ns: str) -> None:
        sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.ip_forward=1")

    def runner(self, ns: str) -> Runner:
        return Runner.netns(ns)

    def nft(self, ns: str, *args: str, stdin: str | None = None) -> str:
        return sh("ip", "netns", "exec", ns, "nft", *args, stdin=stdin)

    def spawn(self, ns: str, *args: str) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, sys.executable, "-I", str(PEER), *args],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        self.procs.append(proc)
        return proc

    def sink(self, ns: str, *ports: int) -> Sink:
        path = self.tmp / f"sink-{ns}-{'-'.join(map(str, ports))}.json"
        proc = self.spawn(ns, "sink", str(path), *map(str, ports))
        if not wait_until(lambda: path.exists() or proc.poll() is not None, 10):
            raise RuntimeError(f"sink in {ns} did not start")
        if proc.poll() is not None:
            raise RuntimeError(f"sink in {ns} failed: {proc.stderr.read() if proc.stderr else ''}")
        return Sink(path)

    def upload(
        self, ns: str, host: str, port: int, rate: int = 1_000_000, seconds: float = 30
    ) -> subprocess.Popen[bytes]:
        return self.spawn(ns, "upload", host, str(port), str(rate), str(seconds))

    def probes(self, checks: list[tuple[str, str, int]], timeout: float = 1.0) -> list[bool]:
        """Open (ns, host, port) connections in parallel: which ones opened and were greeted."""
        procs = [
            self.spawn(ns, "probe", host, str(port), str(timeout)) for ns, host, port in checks
        ]
        return [proc.wait(timeout=timeout + 10) == 0 for proc in procs]

    def probe(self, ns: str, host: str, port: int, timeout: float = 1.0) -> bool:
        return self.probes([(ns, host, port)], timeout)[0]

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=5)
            if proc.stderr:
                proc.stderr.close()
        for ns in reversed(self.namespaces):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=20)


def others(lab: Lab, ns: str) -> dict[str, str]:
    """Every nftables table but ``inet hemostat``, listed without counters: what must never
    change."""
    tables = [line.split()[1:] for line in lab.nft(ns, "list", "tables").splitlines() if line]
    return {f"{family} {name}": lab.nft(ns, "-s", "list", "table", family, name)
            for family, name in tables if (family, name) != ("inet", "hemostat")}  # fmt: skip

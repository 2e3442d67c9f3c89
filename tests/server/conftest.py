"""Collector test kit: agent batches, tokens, and a real ``hemostat serve`` in a subprocess."""

from __future__ import annotations

import gzip
import os
import re
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from starlette.exceptions import StarletteDeprecationWarning

from hemostat import config
from hemostat.server.app import create_app
from hemostat.server.auth import Role, Tokens
from hemostat.store import Store

#: the full CLI with the collector's commands (cli/__init__.py may not import them yet)
LAUNCH = "import sys, hemostat.cli.serve; from hemostat.cli import main; main()"
START = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def flow(batch: str, i: int, start: datetime = START) -> dict[str, Any]:
    """One agent flow slice; ``conn_id`` names its batch so tests can count per batch."""
    ts = start + timedelta(milliseconds=i)
    return {
        "ts": iso(ts), "end_ts": iso(ts + timedelta(seconds=5)), "src_ip": f"10.1.{i % 200}.7",
        "src_port": 40000 + i % 20000, "dst_ip": "203.0.113.9", "dst_port": 443, "proto": "tcp",
        "bytes_out": 1000 + i, "bytes_in": 45, "pkts_out": None, "pkts_in": None,
        "conn_state": "ESTABLISHED", "conn_id": f"{batch}/{i}", "host": "dpi-db-01",
        "process": "curl", "user": "root", "source": "agent",
    }  # fmt: skip


def batch(agent: str, seq: int, flows: int = 3, **extra: Any) -> dict[str, Any]:
    ident = f"{agent}-{seq:012d}"
    body = {"agent": agent, "batch": ident, "created": iso(START),
            "flows": [flow(ident, i) for i in range(flows)],
            "stats": {"spool_batches": 1, "spool_bytes": 2048, "dropped_batches": 0,
                      "oldest_unsent": None, "cpu_seconds": 1.5, "rss_bytes": 23_000_000,
                      "version": "0.1.0"}}  # fmt: skip
    body.update(extra)
    return body


def gz(body: Any) -> bytes:
    return gzip.compress(orjson.dumps(body), 1)


def headers(token: str, gzip_body: bool = True) -> dict[str, str]:
    out = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    if gzip_body:
        out["Content-Encoding"] = "gzip"
    return out


class Tokened:
    """A home with tokens: two agents, an analyst, a responder."""

    def __init__(self, home: Path) -> None:
        self.home = home
        tokens = Tokens(home)
        self.agent, self.agent_text = tokens.create("dpi-db-01", Role.AGENT, "10.0.0.5")
        self.other, self.other_text = tokens.create("web-01", Role.AGENT)
        self.analyst, self.analyst_text = tokens.create("soc", Role.ANALYST)
        self.responder, self.responder_text = tokens.create("cert", Role.RESPONDER)
        self.revoked, self.revoked_text = tokens.create("old", Role.AGENT)
        tokens.revoke(self.revoked.id)

    @property
    def texts(self) -> list[str]:
        return [self.agent_text, self.other_text, self.analyst_text, self.responder_text,
                self.revoked_text]  # fmt: skip


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def tokened(home: Path) -> Tokened:
    return Tokened(home)


QUIET = {"HEMOSTAT_SERVER__DETECT_INTERVAL": "0", "HEMOSTAT_SERVER__RATE": "1000",
         "HEMOSTAT_SERVER__BURST": "1000"}  # fmt: skip


class Served:
    """``hemostat serve`` in a subprocess; its output goes to files the test can read."""

    def __init__(self, home: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.home = home
        self.out = home.parent / f"serve-{time.monotonic_ns()}.log"
        environ = {**os.environ, **QUIET, **(env or {})}
        environ.pop("HEMOSTAT_HOME", None)
        with self.out.open("wb") as sink:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", LAUNCH, "--home", str(home), "serve",
                 "--bind", "127.0.0.1:0", *args],
                stdout=sink, stderr=subprocess.STDOUT, env=environ,
            )  # fmt: skip
        self.url = self._wait_ready()

    def _wait_ready(self, timeout: float = 90.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(r"listening on (https?://[^\s;]+)", self.log())
            if found:
                return found.group(1)
            if self.proc.poll() is not None:
                raise AssertionError(f"hemostat serve exited: {self.log()}")
            time.sleep(0.05)
        self.kill()
        raise AssertionError(f"hemostat serve not ready in {timeout}s: {self.log()}")

    def log(self) -> str:
        return self.out.read_text(errors="replace")

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM, then wait: the writer drains its queue before the process ends."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def serve() -> Iterator[Any]:
    """Start collectors; every one still running is killed at the end of the test."""
    started: list[Served] = []

    def start(home: Path, *args: str, env: dict[str, str] | None = None) -> Served:
        served = Served(home, *args, env=env)
        started.append(served)
        return served

    yield start
    for served in started:
        served.kill()


# ---- in process (FastAPI TestClient) ------------------------------------------------------

with warnings.catch_warnings():  # Starlette 1.10 would rather have httpx2 (not installed)
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

LIMITS = {"HEMOSTAT_SERVER__DETECT_INTERVAL": "0", "HEMOSTAT_SERVER__MAX_BODY_BYTES": "65536",
          "HEMOSTAT_SERVER__MAX_ROWS": "1000"}  # fmt: skip


@contextmanager
def running(home: Path, metrics_open: bool = False, **env: str) -> Iterator[TestClient]:
    settings = config.load(home, environ={**LIMITS, **env})
    with TestClient(create_app(home, settings, metrics_open)) as client:
        yield client


def stored(home: Path) -> tuple[int, int]:
    """(flows, batches) in the store, once the collector has stopped."""
    with Store(home, read_only=True) as store:
        flows = store.con.execute("SELECT count(*) FROM flows").fetchall()[0][0]
        batches = store.con.execute("SELECT count(*) FROM batches").fetchall()[0][0]
    return int(flows), int(batches)


def journal(home: Path) -> list[str]:
    return sorted(p.name for p in (home / "journal").glob("*"))

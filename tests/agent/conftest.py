"""A small real collector for the agent's tests: a stdlib HTTP server on 127.0.0.1 speaking
the contract's agent endpoints, recording what it receives, answering what a test scripts."""

from __future__ import annotations

import gzip
import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

TOKEN = "hst_0123456789ab_" + "s" * 43
AGENT = "0123456789ab"


@dataclass
class Collector:
    """What the fake collector saw, and what it answers next."""

    port: int = 0
    batches: list[dict[str, Any]] = field(default_factory=list)  # every accepted body
    ids: list[str] = field(default_factory=list)  # every batch id received (dupes too)
    requests: list[tuple[str, str, float]] = field(default_factory=list)  # method, path, time
    auth: set[str] = field(default_factory=set)
    answers: list[tuple[int, dict[str, str], dict[str, Any]]] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=lambda: {"agent": AGENT, "interval": 5.0,
                                                            "watch": []})  # fmt: skip
    commands: list[dict[str, Any]] = field(default_factory=list)
    results: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait(self, condition: Callable[[], bool], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError("condition not met in time")
            time.sleep(0.02)


def _handler(c: Collector) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _reply(self, status: int, body: dict[str, Any], headers: dict[str, str]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            for key, value in {**headers, "Content-Type": "application/json"}.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _seen(self) -> None:
            with c.lock:
                c.requests.append((self.command, self.path, time.monotonic()))
                c.auth.add(self.headers.get("Authorization", ""))

        def do_GET(self) -> None:
            self._seen()
            if self.path.startswith("/api/v1/agent/config"):
                self._reply(200, c.config, {})
            elif self.path.startswith("/api/v1/commands"):
                with c.lock:
                    pending = [x for x in c.commands if x["id"] not in c.results]
                if not pending:
                    time.sleep(0.2)  # a short "long poll"
                self._reply(200, {"commands": pending}, {})
            else:
                self._reply(404, {"error": "no such endpoint"}, {})

        def do_POST(self) -> None:
            self._seen()
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            m = re.fullmatch(r"/api/v1/commands/([\w.-]+)", self.path)
            if m:
                with c.lock:
                    c.results.setdefault(m.group(1), []).append(json.loads(raw))
                self._reply(200, {}, {})
                return
            body = json.loads(gzip.decompress(raw))
            with c.lock:
                c.ids.append(body["batch"])
                status, headers, answer = c.answers.pop(0) if c.answers else (200, {}, {})
                duplicate = body["batch"] in {b["batch"] for b in c.batches}
                if status == 200 and not duplicate:
                    c.batches.append(body)
            if status == 200:
                answer = {"batch": body["batch"], "duplicate": duplicate, "rows": {}}
            self._reply(status, answer, headers)

    return Handler


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """Start and stop the fake collector on a fixed port (an outage is a stopped server)."""

    def __init__(self, collector: Collector) -> None:
        self.collector = collector
        collector.port = collector.port or free_port()
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> None:
        server = ThreadingHTTPServer(("127.0.0.1", self.collector.port), _handler(self.collector))
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()  # fmt: skip
        self._server = server

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


@pytest.fixture
def collector() -> Iterator[Collector]:
    c = Collector()
    server = Server(c)
    server.start()
    yield c
    server.stop()

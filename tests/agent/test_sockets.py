"""The socket collector against the real kernel, in two network namespaces joined by a veth.

Every process (collectors, server, clients) runs inside a test namespace through
``ip netns exec``: a collector in the client namespace sees the upload as the originator, one in
the server namespace sees the accepted side of the same connection.
"""

from __future__ import annotations

import itertools
import json
import os
import select
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

pytestmark = [
    pytest.mark.netns,
    pytest.mark.skipif(
        os.geteuid() != 0 or shutil.which("ip") is None, reason="needs root and iproute2"
    ),
]

TAG = f"hss{os.getpid() % 10000}"
CLI_IP, SRV_IP, PORT = "10.233.0.1", "10.233.0.2", 9000
CHUNK = 100_000  # the server answers one byte "k" per CHUNK read
REPLY = 300_000  # and this many bytes once the client has shut its side

COLLECTOR = """
import json, sys
from hemostat.agent.sockets import SocketCollector
c = SocketCollector(sys.argv[1], interval=0.0)
print("ready", flush=True)
for line in sys.stdin:
    print(json.dumps(c.sample()), flush=True)
c.close()
"""

SERVER = """
import ctypes, socket, sys, threading
ctypes.CDLL(None).prctl(15, b"hs-sink", 0, 0, 0)
srv = socket.create_server((sys.argv[1], int(sys.argv[2])), backlog=64)
CHUNK, REPLY = int(sys.argv[3]), int(sys.argv[4])
def serve(c):
    with c:
        total = 0
        while data := c.recv(1 << 16):
            before, total = total, total + len(data)
            c.sendall(b"k" * (total // CHUNK - before // CHUNK))
        c.sendall(b"r" * REPLY)
print("ready", flush=True)
while True:
    threading.Thread(target=serve, args=(srv.accept()[0],), daemon=True).start()
"""

CLIENT = """
import ctypes, socket, sys
ctypes.CDLL(None).prctl(15, b"hs-upload", 0, 0, 0)
CHUNK = int(sys.argv[3])
for line in sys.stdin:
    cmd, *arg = line.split()
    if cmd == "open":
        c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
        print(c.getsockname()[1], flush=True)
    elif cmd == "send":
        n = int(arg[0])
        c.sendall(b"x" * n)
        acks = 0
        while acks < n // CHUNK:
            acks += len(c.recv(n // CHUNK - acks))
        print("sent", flush=True)
    elif cmd == "close":
        c.shutdown(socket.SHUT_WR)
        got = 0
        while data := c.recv(1 << 16):
            got += len(data)
        c.close()
        print(got, flush=True)
"""


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


@dataclass
class Net:
    cli: str
    srv: str
    procs: list[subprocess.Popen[str]]

    def start(self, ns: str, code: str, *args: str) -> subprocess.Popen[str]:
        cmd = ["ip", "netns", "exec", ns, sys.executable, "-c", code, *args]
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.procs.append(proc)
        return proc


def stop(proc: subprocess.Popen[str]) -> None:
    """Kill one process this test started and close its pipes."""
    proc.kill()
    proc.wait(timeout=10)
    for stream in (proc.stdin, proc.stdout):
        if stream is not None:
            stream.close()


def ask(proc: subprocess.Popen[str], line: str | None = None, timeout: float = 15.0) -> str:
    """Send one command line (if any) and read one answer line, within ``timeout``."""
    assert proc.stdin is not None and proc.stdout is not None
    if line is not None:
        proc.stdin.write(line + "\n")
        proc.stdin.flush()
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, f"no answer to {line!r} within {timeout} s"
    return proc.stdout.readline().strip()


@pytest.fixture(scope="module")
def net() -> Iterator[Net]:
    n = Net(f"{TAG}c", f"{TAG}s", [])
    try:
        ip("netns", "add", n.cli)
        ip("netns", "add", n.srv)
        ip("link", "add", f"{TAG}vc", "type", "veth", "peer", "name", f"{TAG}vs")
        for ns, dev, addr in ((n.cli, f"{TAG}vc", CLI_IP), (n.srv, f"{TAG}vs", SRV_IP)):
            ip("link", "set", dev, "netns", ns)
            ip("-n", ns, "addr", "add", f"{addr}/24", "dev", dev)
            ip("-n", ns, "link", "set", dev, "up")
            ip("-n", ns, "link", "set", "lo", "up")
        assert ask(n.start(n.srv, SERVER, SRV_IP, str(PORT), str(CHUNK), str(REPLY))) == "ready"
        yield n
    finally:
        for proc in n.procs:
            stop(proc)
        for ns in (n.cli, n.srv):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10)
        subprocess.run(["ip", "link", "del", f"{TAG}vc"], capture_output=True, timeout=10)


Sampler = Callable[[], list[dict[str, Any]]]


@pytest.fixture
def collectors(net: Net) -> Iterator[tuple[Sampler, Sampler]]:
    """A sampler in each namespace, started (and baselined) before the test's traffic."""
    client, server = net.start(net.cli, COLLECTOR, "ws-01"), net.start(net.srv, COLLECTOR, "db-01")
    assert (ask(client), ask(server)) == ("ready", "ready")
    yield (lambda: json.loads(ask(client, "sample"))), (lambda: json.loads(ask(server, "sample")))
    for proc in (client, server):
        stop(proc)


def mine(rows: list[dict[str, Any]], port: int) -> list[dict[str, Any]]:
    """The rows of the test connection whose client port is ``port``."""
    return [r for r in rows if r["src_port"] == port and r["dst_port"] == PORT]


def until_closed(sample: Sampler, port: int) -> list[dict[str, Any]]:
    """Rows of ``port`` from successive samples, up to the one that reports it closed."""
    rows: list[dict[str, Any]] = []
    deadline = time.monotonic() + 10
    while not any(r["conn_state"] == "CLOSED" for r in rows):
        assert time.monotonic() < deadline, f"no CLOSED row for port {port}: {rows}"
        rows += mine(sample(), port)
        time.sleep(0.02)
    return rows


def near(value: int, truth: int, tolerance: float = 0.01) -> bool:
    return abs(value - truth) <= truth * tolerance


def test_upload_is_counted_on_both_ends_with_direction_and_process(
    net: Net, collectors: tuple[Sampler, Sampler]
) -> None:
    client_sample, server_sample = collectors
    client = net.start(net.cli, CLIENT, SRV_IP, str(PORT), str(CHUNK))
    port = int(ask(client, "open"))
    assert ask(client, f"send {50 * CHUNK}") == "sent"
    client_rows, server_rows = mine(client_sample(), port), mine(server_sample(), port)
    assert int(ask(client, "close")) == REPLY
    client_rows += until_closed(client_sample, port)
    server_rows += until_closed(server_sample, port)

    for rows, process, host in (
        (client_rows, "hs-upload", "ws-01"),
        (server_rows, "hs-sink", "db-01"),
    ):
        # both ends name the client as the originator: bytes_out is the upload, bytes_in the reply
        assert {(r["src_ip"], r["dst_ip"], r["proto"]) for r in rows} == {(CLI_IP, SRV_IP, "tcp")}
        assert near(sum(r["bytes_out"] for r in rows), 50 * CHUNK)
        assert near(sum(r["bytes_in"] for r in rows), REPLY + 50)
        assert rows[0]["process"] == process and rows[0]["user"] == "root"
        assert rows[0]["conn_state"] == "ESTABLISHED" and rows[-1]["conn_state"] == "CLOSED"
        assert len({r["conn_id"] for r in rows}) == 1
        assert {(r["host"], r["source"]) for r in rows} == {(host, "agent")}
        assert all(r["ts"] < r["end_ts"] and r["ts"].endswith("Z") for r in rows)


def test_long_transfer_gives_one_slice_per_sample_and_idle_gives_none(
    net: Net, collectors: tuple[Sampler, Sampler]
) -> None:
    client_sample, _ = collectors
    client = net.start(net.cli, CLIENT, SRV_IP, str(PORT), str(CHUNK))
    port = int(ask(client, "open"))
    slices = []
    for _ in range(4):
        assert ask(client, f"send {5 * CHUNK}") == "sent"
        slices += mine(client_sample(), port)
    assert mine(client_sample(), port) == []  # idle: nothing to report
    assert int(ask(client, "close")) == REPLY

    assert [r["bytes_out"] for r in slices] == [5 * CHUNK] * 4
    assert len({r["conn_id"] for r in slices}) == 1
    assert all(a["end_ts"] == b["ts"] for a, b in itertools.pairwise(slices))
    assert slices[0]["pkts_out"] > 5 * CHUNK // 65536


def test_connection_opened_and_closed_between_two_samples_is_counted(
    net: Net, collectors: tuple[Sampler, Sampler]
) -> None:
    client_sample, server_sample = collectors
    client_sample(), server_sample()
    done = subprocess.run(
        ["ip", "netns", "exec", net.cli, sys.executable, "-c", CLIENT, SRV_IP, str(PORT), str(CHUNK)],
        input=f"open\nsend {2 * CHUNK}\nclose\n", capture_output=True, text=True, timeout=20,
        check=True,
    )  # fmt: skip
    port = int(done.stdout.split()[0])
    for sample, process in ((client_sample, None), (server_sample, "hs-sink")):
        rows = until_closed(sample, port)
        # one row, from the socket-destroy event: no sample ever saw the connection alive
        assert len(rows) == 1, rows
        assert near(rows[0]["bytes_out"], 2 * CHUNK) and near(rows[0]["bytes_in"], REPLY + 2)
        assert (rows[0]["src_ip"], rows[0]["dst_ip"]) == (CLI_IP, SRV_IP)
        # an outgoing socket is gone before its owner is known; an accepted one has its listener's
        assert rows[0]["process"] == process


def test_loopback_traffic_is_skipped(net: Net, collectors: tuple[Sampler, Sampler]) -> None:
    client_sample, _ = collectors
    loop = net.start(
        net.cli,
        "import socket, sys\n"
        "s = socket.create_server(('127.0.0.1', 0)); c = socket.create_connection(s.getsockname())\n"
        "a = s.accept()[0]; c.sendall(b'x' * 100000); a.recv(1)\n"
        "print('ready', flush=True); sys.stdin.read()\n",
    )
    assert ask(loop) == "ready"
    client = net.start(net.cli, CLIENT, SRV_IP, str(PORT), str(CHUNK))
    port = int(ask(client, "open"))
    assert ask(client, f"send {CHUNK}") == "sent"
    rows = client_sample()
    assert [r["bytes_out"] for r in mine(rows, port)] == [CHUNK]
    assert all("127.0.0.1" not in (r["src_ip"], r["dst_ip"]) for r in rows)
    assert int(ask(client, "close")) == REPLY


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv (util-linux)")
def test_without_root_a_clear_error() -> None:
    code = (
        "from hemostat.agent.sockets import SocketCollector\n"
        "from hemostat.errors import HemostatError\n"
        "try:\n    SocketCollector('h')\nexcept HemostatError as e:\n    print(e)\n"
    )
    cmd = [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        sys.executable,
        "-c",
        code,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=True)
    assert "socket collector must run as root" in done.stdout, done.stderr

"""The live NetFlow/IPFIX collector: template state and waiting data without a network, then
real exporters in network namespaces of their own (softflowd; replayed sample payloads)."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hemostat.errors import IngestError
from hemostat.ingest.netflow_listen import Collector, listen, parse_bind
from hemostat.store import Store

LOGSTASH = "netflow-ipfix-samples/logstash-codec-netflow"
PORT = 2055

#: the collector, run inside the namespace: home, bind, pending seconds, max packets (0: none)
LISTENER = """
import json, signal, sys, threading
from pathlib import Path
from hemostat.ingest.netflow_listen import listen
from hemostat.store import Store
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
with Store(Path(sys.argv[1])) as store:
    s = listen(store, sys.argv[2], stop=stop, flush_seconds=0.2,
               pending_seconds=float(sys.argv[3]), max_packets=int(sys.argv[4]) or None)
print(json.dumps({"packets": s.packets, "flows": s.flows, "undecodable": s.undecodable,
                  "waiting": s.waiting, "exporters": sorted(s.exporters)}))
"""

#: traffic to capture: 20 UDP datagrams of 1000 bytes, then 50 000 bytes over TCP
TRAFFIC = """
import json, socket, threading
rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); rx.bind(("127.0.0.1", 0))
tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); tx.bind(("127.0.0.1", 0))
for _ in range(20):
    tx.sendto(b"u" * 1000, rx.getsockname())
    rx.recv(2048)
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(1)
def serve():
    conn, _ = srv.accept()
    while conn.recv(65536):
        pass
    conn.close()
t = threading.Thread(target=serve); t.start()
cli = socket.create_connection(srv.getsockname()); cli.sendall(b"t" * 50000); cli.close(); t.join()
print(json.dumps({"udp": [tx.getsockname()[1], rx.getsockname()[1]],
                  "tcp": srv.getsockname()[1]}))
"""

#: send each file's bytes as one datagram to the collector
SENDER = """
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for name in sys.argv[2:]:
    payload = open(name, "rb").read() if name != "-" else b"not an export packet"
    s.sendto(payload, ("127.0.0.1", int(sys.argv[1])))
    time.sleep(0.02)
"""


# ---- without a network ----------------------------------------------------------------------


def payload(shared: Path, name: str) -> bytes:
    return (shared / LOGSTASH / name).read_bytes()


def test_data_before_template_waits_then_decodes(shared: Path) -> None:
    collector = Collector()
    collector.receive(payload(shared, "ipfix_test_mikrotik_data258.dat"), "192.0.2.1")
    assert (len(collector.rows.columns), collector.pending) == (0, 1)
    collector.receive(payload(shared, "ipfix_test_mikrotik_tpl.dat"), "192.0.2.1")
    assert (len(collector.rows.columns), collector.pending) == (28, 0)
    assert set(collector.take().data["host"]) == {"192.0.2.1"}


def test_templates_are_kept_per_exporter(shared: Path) -> None:
    # both exporters define template 256, with different fields, in domain 0
    collector = Collector()
    collector.receive(payload(shared, "ipfix_test_barracuda_tpl.dat"), "192.0.2.1")
    collector.receive(payload(shared, "ipfix_test_openbsd_pflow_tpl.dat"), "192.0.2.2")
    collector.receive(payload(shared, "ipfix_test_barracuda_data256.dat"), "192.0.2.1")
    collector.receive(payload(shared, "ipfix_test_openbsd_pflow_data.dat"), "192.0.2.2")
    hosts = collector.take().data["host"]
    assert (hosts.count("192.0.2.1"), hosts.count("192.0.2.2")) == (8, 26)


def test_data_whose_template_never_comes_is_counted() -> None:
    now = [0.0]
    collector = Collector(pending_seconds=30, clock=lambda: now[0])
    v9 = bytes.fromhex("0009 0001 00000000 5a000000 00000001 00000000 0100 0008 deadbeef")
    collector.receive(v9, "192.0.2.1")
    collector.receive(b"\x00\x09 too short", "192.0.2.1")
    now[0] = 31.0
    collector.expire()
    stats = collector.stats
    assert (stats.packets, stats.undecodable, stats.waiting, collector.pending) == (2, 1, 1, 0)


@pytest.mark.parametrize(
    ("bind", "expected"),
    [("udp://0.0.0.0:2055", ("0.0.0.0", 2055)), ("udp://[::1]:4739", ("::1", 4739)),
     ("127.0.0.1:9995", ("127.0.0.1", 9995)), (":2055", ("0.0.0.0", 2055))],
)  # fmt: skip
def test_parse_bind(bind: str, expected: tuple[str, int]) -> None:
    assert parse_bind(bind) == expected


@pytest.mark.parametrize("bind", ["tcp://127.0.0.1:2055", "udp://127.0.0.1", "udp://h:70000"])
def test_parse_bind_refuses(bind: str) -> None:
    with pytest.raises(IngestError, match="udp://"):
        parse_bind(bind)


def test_a_session_is_recorded_under_its_address(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        bind = f"udp://127.0.0.1:{probe.getsockname()[1]}"
    stop = threading.Event()
    stop.set()  # bind, record the session, stop at once
    with Store(tmp_path / "home") as store:
        listen(store, bind, stop=stop)
        rows = store.con.execute("SELECT path, format FROM ingests").fetchall()
    assert rows == [(bind, "netflow_listen")]  # as given, not a path ("udp:/…")


# ---- in network namespaces ------------------------------------------------------------------


@pytest.fixture
def netns() -> Iterator[str]:
    """A fresh network namespace with its loopback up, deleted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    if shutil.which("ip") is None:
        pytest.skip("ip (iproute2) is not installed")
    name = f"hmst-nf-{secrets.token_hex(4)}"
    added = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if added.returncode != 0:
        pytest.skip(f"ip netns is unavailable: {added.stderr.strip()}")
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True, timeout=10)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False, timeout=10)


class Started:
    """Processes a test started in a namespace; whatever still runs is stopped, by PID."""

    def __init__(self, ns: str) -> None:
        self.ns = ns
        self.procs: list[subprocess.Popen[str]] = []

    def start(self, *argv: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(["ip", "netns", "exec", self.ns, *argv],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
        self.procs.append(proc)
        return proc

    def run(self, *argv: str, timeout: float = 30) -> str:
        done = subprocess.run(["ip", "netns", "exec", self.ns, *argv],
                              capture_output=True, text=True, timeout=timeout, check=True)  # fmt: skip
        return done.stdout

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)


@pytest.fixture
def started(netns: str) -> Iterator[Started]:
    procs = Started(netns)
    try:
        yield procs
    finally:
        procs.stop()


def wait_until(check: Callable[[], object], what: str, seconds: float = 10) -> None:
    for _ in range(int(seconds / 0.05)):
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def start_listener(started: Started, home: Path, pending: float = 30, packets: int = 0) -> (
    subprocess.Popen[str]
):  # fmt: skip
    proc = started.start(sys.executable, "-c", LISTENER, str(home), f"udp://127.0.0.1:{PORT}",
                         str(pending), str(packets))  # fmt: skip
    wait_until(lambda: f":{PORT} " in started.run("ss", "-Hlun"), "the collector to bind")
    return proc


def finish(proc: subprocess.Popen[str], stop: bool = True) -> dict[str, object]:
    if stop:
        proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    result: dict[str, object] = json.loads(out)
    return result


def capture_traffic(started: Started, pcap: Path) -> dict[str, list[int] | int]:
    """Live traffic on the namespace's loopback, captured by dumpcap into ``pcap``."""
    dumpcap = started.start("dumpcap", "-q", "-P", "-i", "lo", "-f", f"not udp port {PORT}",
                            "-w", str(pcap))  # fmt: skip
    wait_until(pcap.exists, "dumpcap to start")
    time.sleep(0.3)
    ports: dict[str, list[int] | int] = json.loads(started.run(sys.executable, "-c", TRAFFIC))
    time.sleep(0.3)
    dumpcap.send_signal(signal.SIGINT)
    dumpcap.communicate(timeout=15)
    return ports


def export(started: Started, pcap: Path, version: str, tmp: Path) -> None:
    """softflowd turns the capture into flows and exports them to the collector over UDP.

    ``-r`` (read the capture) rather than ``-i lo``: softflowd 1.1.0 polls libpcap 1.10's
    TPACKET_V3 socket without a timeout and sees no packet until a ring block fills. Read
    from a file it serves one control command per loop turn: ``statistics`` lets it read
    the capture, ``expire-all`` exports every flow, ``shutdown`` ends it.
    """
    ctl = tmp / "softflowd.ctl"
    softflowd = started.start("softflowd", "-r", str(pcap), "-n", f"127.0.0.1:{PORT}",
                              "-v", version, "-d", "-p", str(tmp / "softflowd.pid"),
                              "-c", str(ctl))  # fmt: skip
    for command in ("statistics", "expire-all", "shutdown", "shutdown", "shutdown"):
        wait_until(lambda: ctl.exists() or softflowd.poll() is not None, "softflowd")
        if softflowd.poll() is not None:
            break
        subprocess.run(["ip", "netns", "exec", started.ns, "softflowctl", "-c", str(ctl),
                        command], capture_output=True, timeout=10, check=False)  # fmt: skip
        time.sleep(0.2)
    softflowd.communicate(timeout=15)


@pytest.mark.netns
@pytest.mark.parametrize("version", ["5", "9", "10"])
def test_softflowd_export_lands_in_the_store(
    started: Started, tmp_path: Path, version: str
) -> None:
    pcap, home = tmp_path / "lo.pcap", tmp_path / "home"
    before = time.time()
    ports = capture_traffic(started, pcap)
    listener = start_listener(started, home)
    export(started, pcap, version, tmp_path)
    time.sleep(0.5)  # the collector flushes every 0.2 s
    result = finish(listener)
    assert (result["flows"], result["undecodable"], result["waiting"]) == (3, 0, 0)
    assert result["exporters"] == ["127.0.0.1"]
    with Store(home) as store:
        rows = store.con.execute(
            "SELECT src_port, dst_port, proto, bytes_out, pkts_out, conn_state, host, source,"
            " epoch(ts), epoch(end_ts) FROM flows ORDER BY proto DESC, bytes_out DESC"
        ).fetchall()
    udp, tcp_out, tcp_back = rows
    source = "ipfix" if version == "10" else "netflow"
    assert udp[:8] == (*ports["udp"], "udp", 20 * (1000 + 28), 20, None, "127.0.0.1", source)  # type: ignore[misc]
    assert (tcp_out[1], tcp_out[2], tcp_out[5]) == (ports["tcp"], "tcp", "SF")
    assert tcp_out[3] > 50_000 and tcp_out[4] >= 3  # payload plus IP and TCP headers
    assert tcp_back[0] == ports["tcp"] and tcp_back[3] < 1000
    # v9 exports whole seconds: a flow may seem to start up to a second early
    assert all(before - 2 <= r[8] <= r[9] <= time.time() for r in rows)


@pytest.mark.netns
def test_replayed_payloads_with_late_templates(
    started: Started, shared: Path, tmp_path: Path
) -> None:
    samples = shared / LOGSTASH
    files = [samples / "ipfix_test_mikrotik_data258.dat",  # before its template: waits
             samples / "ipfix_test_mikrotik_tpl.dat", samples / "ipfix_test_mikrotik_data259.dat",
             samples / "netflow9_test_cisco_asa_1_data.dat"]  # fmt: skip  # template never sent
    listener = start_listener(started, tmp_path / "home", packets=len(files) + 1)
    started.run(sys.executable, "-c", SENDER, str(PORT), *map(str, files), "-")
    result = finish(listener, stop=False)  # ends by itself after max_packets
    assert (result["packets"], result["flows"]) == (5, 46)
    assert (result["undecodable"], result["waiting"]) == (1, 1)
    with Store(tmp_path / "home") as store:
        row = store.con.execute(
            "SELECT count(*), count(DISTINCT ingest_id), min(host), max(source) FROM flows"
        ).fetchone()
        ingest = store.con.execute("SELECT format, rows_flows, bad_lines FROM ingests").fetchall()
    assert row == (46, 1, "127.0.0.1", "ipfix")
    assert ingest == [("netflow_listen", 46, 2)]

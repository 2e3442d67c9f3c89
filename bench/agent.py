"""Agent budget: the socket sampler on a host holding 2,000 established TCP connections.

Two network namespaces joined by a veth: a server namespace (the "host" under watch, where the
sampler runs) holds N accepted connections from a client namespace; ACTIVE of them send 1 KB a
second and CHURN short connections (10 KB, then closed) are made each second. The real sampler
loop (`SocketCollector.sample()` every INTERVAL seconds) runs in a child process for SECONDS;
its CPU comes from psutil `cpu_times` around the loop (startup reported apart) and its peak
RSS from the child's own high-water mark. Goal (DESIGN section 9): <= 1 % of one core on
average, <= 50 MB resident. Baseline, in the same run: one `ss -tinpH` per interval in the
same namespace (CPU from wait4), and the ratio of the two.

    sudo .venv/bin/python bench/agent.py [--seconds 60 | --quick] [--connections 2000]
        [--interval 5] [--active 20] [--churn 5]
"""

from __future__ import annotations

import argparse
import json
import os
import select
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import psutil

TAG = f"hsb{os.getpid() % 10000}"
CLI, SRV = f"{TAG}c", f"{TAG}s"
CLI_IP, SRV_IP, PORT = "10.234.0.1", "10.234.0.2", 9100

SERVER = """
import resource, selectors, socket, sys
resource.setrlimit(resource.RLIMIT_NOFILE, (20000, 20000))
srv = socket.create_server((sys.argv[1], int(sys.argv[2])), backlog=4096)
srv.setblocking(False)
sel = selectors.DefaultSelector()
sel.register(srv, selectors.EVENT_READ)
print("ready", flush=True)
while True:
    for key, _ in sel.select():
        if key.fileobj is srv:
            while True:
                try:
                    c = srv.accept()[0]
                except BlockingIOError:
                    break
                c.setblocking(False)
                sel.register(c, selectors.EVENT_READ)
        else:
            try:
                data = key.fileobj.recv(65536)
            except OSError:
                data = b""
            if not data:
                sel.unregister(key.fileobj)
                key.fileobj.close()
"""

CLIENT = """
import resource, select, socket, sys, time
resource.setrlimit(resource.RLIMIT_NOFILE, (20000, 20000))
host, port, n, active, churn = sys.argv[1], int(sys.argv[2]), *map(int, sys.argv[3:6])
held = []
deadline = time.monotonic() + 120
while len(held) < n and time.monotonic() < deadline:
    held.append(socket.create_connection((host, port), timeout=10))
print("connected", len(held), flush=True)
while not select.select([sys.stdin], [], [], 1.0)[0]:
    for c in held[:active]:
        c.sendall(b"x" * 1024)
    for _ in range(churn):
        with socket.create_connection((host, port), timeout=10) as c:
            c.sendall(b"y" * 10240)
"""

SAMPLER = """
import json, resource, sys, time
from hemostat.agent.sockets import SocketCollector
interval, seconds = float(sys.argv[1]), float(sys.argv[2])
c = SocketCollector("bench", interval=interval)
print("ready", len(c._conns), flush=True)
rows, costs, start = 0, [], time.monotonic()
tick = start + interval
while tick <= start + seconds + 1e-6:
    time.sleep(max(0.0, tick - time.monotonic()))
    t = time.process_time()
    rows += len(c.sample())
    costs.append(time.process_time() - t)
    tick += interval
stats = {"samples": len(costs), "rows": rows, "tracked": len(c._conns),
         "mean_ms": 1000 * sum(costs) / len(costs), "max_ms": 1000 * max(costs),
         "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
         "full_scans": c._procs.full_scans, "lost_events": c.lost_events}
print(json.dumps(stats), flush=True)
sys.stdin.read()
c.close()
"""


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


@contextmanager
def namespaces() -> Iterator[list[subprocess.Popen[str]]]:
    """The two namespaces and a list of processes to kill when leaving."""
    procs: list[subprocess.Popen[str]] = []
    try:
        ip("netns", "add", CLI)
        ip("netns", "add", SRV)
        ip("link", "add", f"{TAG}vc", "type", "veth", "peer", "name", f"{TAG}vs")
        for ns, dev, addr in ((CLI, f"{TAG}vc", CLI_IP), (SRV, f"{TAG}vs", SRV_IP)):
            ip("link", "set", dev, "netns", ns)
            ip("-n", ns, "addr", "add", f"{addr}/24", "dev", dev)
            ip("-n", ns, "link", "set", dev, "up")
            ip("-n", ns, "link", "set", "lo", "up")
        yield procs
    finally:
        for proc in reversed(procs):  # clients before the server
            proc.kill()
            proc.wait(timeout=10)
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    stream.close()
        for ns in (CLI, SRV):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10)
        subprocess.run(["ip", "link", "del", f"{TAG}vc"], capture_output=True, timeout=10)


def start(
    procs: list[subprocess.Popen[str]], ns: str, code: str, *args: str
) -> subprocess.Popen[str]:
    cmd = ["ip", "netns", "exec", ns, sys.executable, "-c", code, *args]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    procs.append(proc)
    return proc


def line(proc: subprocess.Popen[str], timeout: float) -> str:
    assert proc.stdout is not None
    if not select.select([proc.stdout], [], [], timeout)[0]:
        raise SystemExit(f"no answer from {proc.args[4:6]} within {timeout} s")
    return proc.stdout.readline().strip()


def ss_cost() -> tuple[float, int]:
    """CPU seconds and output lines of one `ss -tinpH` in the server namespace."""
    proc = subprocess.Popen(["ip", "netns", "exec", SRV, "ss", "-tinpH"], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    lines = proc.stdout.read().count(b"\n")
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    proc.stdout.close()
    return usage.ru_utime + usage.ru_stime, lines


def run(args: argparse.Namespace) -> dict[str, float]:
    with namespaces() as procs:
        server = start(procs, SRV, SERVER, SRV_IP, str(PORT))
        assert line(server, 10) == "ready"
        client = start(procs, CLI, CLIENT, SRV_IP, str(PORT), str(args.connections),
                       str(args.active), str(args.churn))  # fmt: skip
        connected = line(client, 150)
        sampler = start(procs, SRV, SAMPLER, str(args.interval), str(args.seconds))
        ready = line(sampler, 30).split()
        watch = psutil.Process(sampler.pid)
        startup, cpu0, t0 = watch.cpu_times(), watch.cpu_times(), time.monotonic()
        ss_cpu, ss_lines, rss = [], 0, watch.memory_info().rss
        next_ss = t0 + args.interval / 2
        while not select.select([sampler.stdout], [], [], 0.25)[0]:
            rss = max(rss, watch.memory_info().rss)
            if time.monotonic() >= next_ss:
                cost, ss_lines = ss_cost()
                ss_cpu.append(cost)
                next_ss += args.interval
        cpu1, t1 = watch.cpu_times(), time.monotonic()
        stats = json.loads(line(sampler, 5))
    cpu = (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)
    per_ss = sum(ss_cpu) / max(len(ss_cpu), 1)
    return {
        "connections": int(connected.split()[1]), "tracked_at_start": int(ready[1]),
        "ss_lines": ss_lines, "seconds": t1 - t0, **stats,
        "startup_cpu_s": startup.user + startup.system,
        "cpu_pct": 100 * cpu / (t1 - t0),
        "peak_rss_mb": max(rss, stats["maxrss_kb"] * 1024) / 2**20,
        "ss_cpu_ms": 1000 * per_ss, "ss_pct": 100 * per_ss / args.interval,
        "ss_ratio": (per_ss / args.interval) / max(cpu / (t1 - t0), 1e-9),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--quick", action="store_true", help="20 s instead of --seconds")
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("--interval", type=float, default=5.0)
    parser.add_argument("--active", type=int, default=20, help="connections sending 1 KB/s")
    parser.add_argument("--churn", type=int, default=5, help="short connections per second")
    args = parser.parse_args()
    if args.quick:
        args.seconds = 20.0
    if os.geteuid() != 0 or shutil.which("ip") is None or shutil.which("ss") is None:
        raise SystemExit("bench/agent.py needs root, ip and ss (it creates network namespaces)")
    r = run(args)
    print(
        f"connections held {r['connections']} (sampler tracked {r['tracked_at_start']} at start, "
        f"{r['tracked']} at end; ss prints {r['ss_lines']} lines)"
    )
    print(
        f"active {args.active} x 1 KB/s, churn {args.churn} conn/s, interval {args.interval} s, "
        f"{r['samples']} samples over {r['seconds']:.1f} s, {r['rows']} rows, "
        f"{r['lost_events']} lost destroy events, {r['full_scans']} full /proc walks"
    )
    print(
        f"sampler CPU   {r['cpu_pct']:.3f} % of one core   (goal <= 1 %)   "
        f"per sample mean {r['mean_ms']:.1f} ms, max {r['max_ms']:.1f} ms; "
        f"startup {r['startup_cpu_s']:.2f} s CPU"
    )
    print(f"sampler RSS   {r['peak_rss_mb']:.1f} MB peak   (goal <= 50 MB)")
    print(
        f"ss -tinpH     {r['ss_cpu_ms']:.1f} ms CPU per call = {r['ss_pct']:.3f} % of one core "
        f"at one call per interval; ss / sampler = {r['ss_ratio']:.1f}x"
    )
    ok = r["cpu_pct"] <= 1.0 and r["peak_rss_mb"] <= 50.0
    print("budget met" if ok else "BUDGET MISSED")


if __name__ == "__main__":
    main()

"""Collector load: simulated agents push gzip JSON batches to a real ``hemostat serve``.

A collector (plain HTTP on loopback, uvicorn, one process with its writer thread) is started
in a subprocess; CLIENTS agent processes, each with its own token, send pre-built batches
(FLOWS flows each, realistic shape, from 8,000 simulated hosts) back to back for SECONDS.
Reported: the sustained ingest rate (flows acknowledged per second, and stored per second),
acknowledgement latency, end-to-end lag (from sending a batch to its rows being in the store,
read from the collector's own counters every 0.2 s, so +-0.2 s), the collector's CPU, and a
baseline in the same run: the same rows, already decoded to Arrow, appended straight into a
fresh store (``Store.append`` in transactions of the writer's size), and the decoding alone.

    .venv/bin/python bench/collector.py [--seconds 45] [--clients 4] [--flows 5000] [--detect]

``--detect`` keeps the live detection loop on (every 10 s), as in production; by default it
is off so that the figure is the ingest path's.
"""

from __future__ import annotations

import argparse
import gzip
import json
import multiprocessing as mp
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson

LAUNCH = "import hemostat.cli.serve; from hemostat.cli import main; main()"
HOSTS = 8000
PROCESSES = np.array(["curl", "java", "postgres", "nginx", "sshd", "python3", "smbd", "chrome"])
USERS = np.array(["root", "www-data", "postgres", "svc-pacs", "j.dupont", "m.martin"])
PORTS = np.array([443, 80, 53, 445, 3389, 5432, 104, 22, 389, 8080])


def host_ips() -> list[str]:
    return [f"10.{1 + i // 4000}.{(i // 250) % 16}.{i % 250 + 1}" for i in range(HOSTS)]


def make_batch(rng: np.random.Generator, agent: str, seq: int, flows: int, t0: float) -> bytes:
    """One gzip body: flows from many of the 8,000 hosts, 70 % to internal servers."""
    ips = HOST_IPS
    src = rng.zipf(1.3, flows) % HOSTS
    internal = rng.random(flows) < 0.7
    dst_int = rng.integers(0, 200, flows)
    dst_ext = rng.integers(0, 5000, flows)
    start = t0 + rng.random(flows) * 5.0
    duration = rng.exponential(3.0, flows)
    out = rng.lognormal(7, 2, flows).astype(np.int64)
    back = rng.lognormal(8, 2, flows).astype(np.int64)
    ports = PORTS[rng.integers(0, len(PORTS), flows)]
    sport = rng.integers(32768, 61000, flows)
    udp = ports == 53
    proc = PROCESSES[rng.integers(0, len(PROCESSES), flows)]
    user = USERS[rng.integers(0, len(USERS), flows)]
    ident = f"{agent}-{seq:012d}"
    rows = [
        {"ts": _iso(s), "end_ts": _iso(s + d), "src_ip": ips[a],
         "src_port": sp, "dst_ip": ips[di] if i else f"198.51.{de // 250}.{de % 250 + 1}",
         "dst_port": p, "proto": "udp" if u else "tcp", "bytes_out": o, "bytes_in": b,
         "pkts_out": None, "pkts_in": None, "conn_state": "ESTABLISHED", "conn_id": f"{ident}/{n}",
         "host": f"h{a}", "process": pr, "user": us, "source": "agent"}
        for n, (a, i, di, de, s, d, o, b, p, sp, u, pr, us) in enumerate(zip(
            src.tolist(), internal.tolist(), dst_int.tolist(), dst_ext.tolist(), start.tolist(),
            duration.tolist(), out.tolist(), back.tolist(), ports.tolist(), sport.tolist(),
            udp.tolist(), proc.tolist(), user.tolist(), strict=True))
    ]  # fmt: skip
    body = {"agent": agent, "batch": ident, "created": _iso(t0 + 5), "flows": rows,
            "stats": {"spool_batches": 0, "spool_bytes": 0, "dropped_batches": 0,
                      "oldest_unsent": None, "cpu_seconds": 1.0, "rss_bytes": 20_000_000,
                      "version": "0.1.0"}}  # fmt: skip
    return gzip.compress(orjson.dumps(body), 6)


def _iso(t: float) -> str:
    whole = int(t)
    micros = int((t - whole) * 1e6)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{micros:06d}Z"


HOST_IPS = host_ips()


def client(url: str, agent: str, token: str, count: int, flows: int, seed: int,
           go: Any, until: Any, results: Any) -> None:  # fmt: skip
    """One simulated agent: build its batches, wait for the start, send them back to back."""
    rng = np.random.default_rng(seed)
    t0 = time.time() - 3600
    bodies = [make_batch(rng, agent, seq, flows, t0 + seq * 5) for seq in range(1, count + 1)]
    results.put(("ready", agent, sum(len(b) for b in bodies)))
    go.wait()
    head = {"Authorization": f"Bearer {token}", "Content-Encoding": "gzip",
            "Content-Type": "application/json"}  # fmt: skip
    records = []
    with httpx.Client(timeout=60) as http:
        for body in bodies:
            if time.monotonic() >= until.value:
                break
            sent, retries = time.monotonic(), 0
            answer = http.post(f"{url}/api/v1/ingest", content=body, headers=head)
            while answer.status_code in (429, 503):  # as an agent does: wait, send again
                retries += 1
                time.sleep(float(answer.headers.get("Retry-After", "1")))
                answer = http.post(f"{url}/api/v1/ingest", content=body, headers=head)
            records.append((sent, time.monotonic(), flows, answer.status_code, retries))
    results.put(("done", agent, records))


class Monitor(threading.Thread):
    """Polls /metrics: (time, flows stored, writer lag) every 0.2 s."""

    def __init__(self, url: str, token: str) -> None:
        super().__init__(daemon=True)
        self.url, self.token = url, token
        self.samples: list[tuple[float, int, float]] = []
        self.halt = threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=10) as http:
            while not self.halt.is_set():
                text = http.get(f"{self.url}/metrics",
                                headers={"Authorization": f"Bearer {self.token}"}).text  # fmt: skip
                stored = re.search(r'^hemostat_ingest_rows_total\{table="flows"\} (\d+)$', text,
                                   re.M)  # fmt: skip
                lag = re.search(r"^hemostat_writer_lag_seconds (\S+)$", text, re.M)
                self.samples.append((time.monotonic(), int(stored.group(1)) if stored else 0,
                                     float(lag.group(1)) if lag else 0.0))  # fmt: skip
                self.halt.wait(0.2)


def start_server(home: Path, detect: bool) -> tuple[subprocess.Popen[bytes], str, Path]:
    env = {**os.environ, "HEMOSTAT_SERVER__RATE": "1000", "HEMOSTAT_SERVER__BURST": "1000"}
    if not detect:
        env["HEMOSTAT_SERVER__DETECT_INTERVAL"] = "0"
    log = home.parent / "serve.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-c", LAUNCH, "--home", str(home), "serve", "--bind",
             "127.0.0.1:0", "--insecure-http"], stdout=sink, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
    for _ in range(1200):
        found = re.search(r"listening on (http://\S+?);", log.read_text())
        if found:
            return proc, found.group(1), log
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"the collector did not start:\n{log.read_text()}")


def tokens(home: Path, clients: int) -> tuple[list[tuple[str, str]], str]:
    from hemostat.server.auth import Role, Tokens

    issued = Tokens(home)
    agents = [issued.create(f"sim-{i}", Role.AGENT) for i in range(clients)]
    _, analyst = issued.create("bench", Role.ANALYST)
    return [(t.id, text) for t, text in agents], analyst


Record = tuple[float, float, int, int, int]  # sent, answered, flows, status, retries


def e2e_lags(records: list[Record], samples: list[Any]) -> list[float]:
    """Per batch: from its sending to the first sample where the store holds every flow
    acknowledged up to it (the writer stores in arrival order)."""
    lags, cumulative, i = [], 0, 0
    for sent, _, flows, _, _ in sorted(records, key=lambda r: r[1]):
        cumulative += flows
        while i < len(samples) and samples[i][1] < cumulative:
            i += 1
        if i < len(samples):
            lags.append(samples[i][0] - sent)
    return lags


def baseline(bodies_home: Path, sample: list[bytes], group_rows: int) -> dict[str, float]:
    """The same rows: decoding alone, then Arrow straight into a fresh store."""
    import duckdb
    import pyarrow as pa

    from hemostat.schema import Table
    from hemostat.server.batch import Limits, decode
    from hemostat.store import Store

    limits = Limits(1 << 30, 1 << 30, 1 << 30)
    started = time.perf_counter()
    tables = []
    for body in sample:
        agent = orjson.loads(gzip.decompress(body))["agent"]
        tables.append(decode(body, "gzip", agent, "x", limits).parts[0][1])
    decoding = time.perf_counter() - started
    rows = sum(t.num_rows for t in tables)
    with Store(bodies_home) as store:
        started = time.perf_counter()
        group: list[pa.Table] = []
        for table in [*tables, None]:
            if table is not None:
                group.append(table)
            if group and (table is None or sum(t.num_rows for t in group) >= group_rows):
                with store.transaction():
                    store.append(Table.FLOWS, pa.concat_tables(group))
                group = []
        appending = time.perf_counter() - started
        con = duckdb.connect(str(bodies_home.parent / "plain.duckdb"))
        started = time.perf_counter()
        whole = pa.concat_tables(tables)
        con.execute("CREATE TABLE flows AS SELECT * FROM whole LIMIT 0")
        for start in range(0, rows, group_rows):
            part = whole.slice(start, group_rows)  # noqa: F841  (read by DuckDB by name)
            con.execute("INSERT INTO flows SELECT * FROM part")
        plain = time.perf_counter() - started
        con.close()
    return {"rows": rows, "decode_rps": rows / decoding, "append_rps": rows / appending,
            "plain_rps": rows / plain}  # fmt: skip


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--seconds", type=float, default=45.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--flows", type=int, default=5000, help="flows per batch")
    parser.add_argument("--cap", type=float, default=90_000,
                        help="flows/s the batches built beforehand last for")  # fmt: skip
    parser.add_argument("--detect", action="store_true", help="keep live detection on")
    return parser.parse_args()


def load(args: argparse.Namespace, url: str, agents: list[tuple[str, str]], monitor: Monitor,
         ) -> tuple[list[Record], float]:  # fmt: skip
    """Build the batches in the agent processes, then let them send; their records, and
    when sending began."""
    count = int(args.cap * args.seconds / args.flows / args.clients) + 1
    ctx = mp.get_context("spawn")
    go, results, until = ctx.Event(), ctx.Queue(), ctx.Value("d", float("inf"))
    procs = [ctx.Process(target=client, args=(url, agent, token, count, args.flows, 1000 + n,
                                              go, until, results))
             for n, (agent, token) in enumerate(agents)]  # fmt: skip
    for proc in procs:
        proc.start()
    built = sum(results.get()[2] for _ in procs)
    print(
        f"{args.clients} agents x {count} batches x {args.flows} flows built "
        f"({built / 1e6:.0f} MB gzip); sending for {args.seconds:.0f} s to {url}"
    )
    monitor.start()
    started = time.monotonic()
    until.value = started + args.seconds
    go.set()
    records: list[Record] = []
    for _ in procs:
        records += results.get()[2]
    for proc in procs:
        proc.join()
    return records, started


def main() -> None:
    import psutil

    from hemostat.store import Store

    args = arguments()
    work = Path(tempfile.mkdtemp(prefix="hemostat-bench-"))
    home = work / "home"
    home.mkdir()
    agents, analyst = tokens(home, args.clients)
    proc, url, log = start_server(home, args.detect)
    try:
        server = psutil.Process(proc.pid)
        monitor = Monitor(url, analyst)
        cpu0 = server.cpu_times()
        records, started = load(args, url, agents, monitor)
        last_ack = max(r[1] for r in records)
        acked = sum(r[2] for r in records if r[3] == 200)
        while monitor.samples[-1][1] < acked and time.monotonic() - last_ack < 600:
            time.sleep(0.1)
        drained = monitor.samples[-1][0]
        cpu1 = server.cpu_times()
        monitor.halt.set()
        monitor.join()
        proc.send_signal(signal.SIGTERM)
        proc.wait(120)
    finally:
        if proc.poll() is None:
            proc.kill()
    with Store(home, read_only=True) as store:
        in_store = store.con.execute("SELECT count(*) FROM flows").fetchall()[0][0]
    cpu = (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)
    sample = [make_batch(np.random.default_rng(7), agents[0][0], seq, args.flows, time.time())
              for seq in range(1, 41)]  # fmt: skip
    base = baseline(work / "baseline", sample, 200_000)
    rate = acked / (last_ack - started)
    latency = sorted(r[1] - r[0] for r in records)
    lags = sorted(e2e_lags(records, monitor.samples))
    result = {
        "seconds": round(last_ack - started, 1), "clients": args.clients,
        "flows_per_batch": args.flows, "batches_acked": sum(r[3] == 200 for r in records),
        "retries_429_503": sum(r[4] for r in records), "flows_acked": acked,
        "flows_in_store": in_store, "ingest_flows_per_s": round(rate),
        "stored_flows_per_s": round(acked / (drained - started)),
        "ack_latency_s": {"p50": _q(latency, 0.5), "p95": _q(latency, 0.95),
                          "max": round(latency[-1], 3)},
        "e2e_lag_s": {"p50": _q(lags, 0.5), "p95": _q(lags, 0.95),
                      "max": round(lags[-1], 3) if lags else None},
        "writer_lag_max_s": max(s[2] for s in monitor.samples),
        "collector_cpu_cores": round(cpu / (drained - started), 2),
        "collector_cpu_us_per_flow": round(cpu / acked * 1e6, 2),
        "baseline_append_flows_per_s": round(base["append_rps"]),
        "baseline_plain_insert_flows_per_s": round(base["plain_rps"]),
        "decode_only_flows_per_s": round(base["decode_rps"]),
        "ratio_baseline_append_to_collector": round(base["append_rps"] / rate, 2),
        "load_average": [round(x, 2) for x in os.getloadavg()], "detect": args.detect,
        "detect_pass_s": [float(s) for s in re.findall(r"detection pass .* ([0-9.]+) s$",
                                                       log.read_text(), re.M)],
    }  # fmt: skip
    print(json.dumps(result, indent=2))
    assert in_store == acked, f"store holds {in_store} flows, {acked} acknowledged"
    shutil.rmtree(work)


def _q(values: list[float], q: float) -> float | None:
    if not values:
        return None
    return round(statistics.quantiles(values, n=100)[int(q * 100) - 1] if len(values) > 1
                 else values[0], 3)  # fmt: skip


if __name__ == "__main__":
    main()

"""Detection speed: every detector over one simulated day vs. one plain DuckDB scan.

Simulates a day of a HOSTS-host hospital with every scenario (or reuses WORK when it already
holds it), ingests it with the `hemostat` command in a child process (so its memory does not
count here), then in this process times:

* the floor: one `SELECT src_ip, count(*), sum(bytes_out) FROM flows GROUP BY src_ip`;
* `hemostat detect`'s library call over the whole day (findings saved, incidents grouped).

It prints rows, both times, their ratio, seconds per detector, and the peak memory of this
process (DuckDB runs inside it). Goal (DESIGN §9): 8,000 hosts in ≤ 5 min and ≤ 4 GB on 2 cores.

    .venv/bin/python bench/detect.py [HOSTS] [WORK]    # default 8000 /tmp/hemostat-bench-detect
"""

from __future__ import annotations

import resource
import subprocess
import sys
import time
from pathlib import Path

from hemostat import config, inventory
from hemostat.detect.runner import examine, pending
from hemostat.simulate import SCENARIOS
from hemostat.store import Store

SEED = 4242  # not a seed the detectors were tuned on


def prepare(hosts: int, work: Path) -> tuple[Path, Path]:
    sim, home = work / "sim", work / "home"
    hemostat = str(Path(sys.executable).parent / "hemostat")
    if not (home / "ready").exists():
        scenarios = [a for s in SCENARIOS for a in ("--scenario", s)]
        subprocess.run([hemostat, "simulate", "--out", str(sim), "--hosts", str(hosts),
                        "--seed", str(SEED), *scenarios], check=True)  # fmt: skip
        subprocess.run([hemostat, "--home", str(home), "ingest", str(sim)], check=True)
        (home / "ready").write_text(f"{hosts}\n")
    return sim, home


def main() -> None:
    hosts = int(sys.argv[1]) if len(sys.argv) > 1 else 8000
    work = Path(sys.argv[2]) if len(sys.argv) > 2 else Path("/tmp/hemostat-bench-detect")
    sim, home = prepare(hosts, work)
    site = inventory.load(sim / "inventory.yaml")
    with Store(home) as store:
        # start from what a fresh store holds (the rollups of earlier passes gone)
        store.con.execute("DELETE FROM findings; DELETE FROM incidents; DELETE FROM detections; "
                          "DELETE FROM pairs")  # fmt: skip
        flows = store.con.execute("SELECT count(*) FROM flows").fetchall()[0][0]
        dns = store.con.execute("SELECT count(*) FROM dns").fetchall()[0][0]
        started = time.perf_counter()
        store.con.execute(
            "SELECT src_ip, count(*), sum(bytes_out) FROM flows GROUP BY src_ip"
        ).fetchall()
        floor = time.perf_counter() - started
        window = pending(store, None, None)
        assert window is not None, "the store is empty"
        done = examine(store, site, config.Settings(), window)
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    print(f"{hosts} hosts: {flows:,} flows, {dns:,} dns rows")
    for d in done.run.detectors:
        note = f"  ERROR {d.error}" if d.error else ""
        print(f"  {d.detector:<18} {d.seconds:7.1f} s  {d.findings:4d} findings{note}")
    print(
        f"detect: {done.seconds:.1f} s; floor (GROUP BY src_ip): {floor:.2f} s; "
        f"ratio {done.seconds / floor:.0f}x; {len(done.incidents)} incident(s); "
        f"peak memory {peak_gb:.2f} GB"
    )


if __name__ == "__main__":
    main()

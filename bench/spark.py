"""Spark local mode vs DuckDB on the same lake: flows/s per core, and 1 to SITES sites.

Simulates SITES sites of HOSTS hosts (one day each, a different scenario and seed per
site), ingests each into its own home (the DuckDB engine's input) and exports it to one
Parquet lake (the Spark engine's input), then times, per site, the full detection pass
(`examine`: every detector, findings saved, incidents grouped, pairs rolled up):

* DuckDB on the site's store (2 threads);
* Spark ``local[CORES]`` on the site's partition of the lake, one session for all sites.

Sites are added one at a time, so the table shows how the total grows from 1 to SITES
sites. Flows/s per core = the site's flows / seconds / cores. Spark's session start-up is
reported apart (paid once per process).

    .venv/bin/python bench/spark.py [HOSTS] [SITES] [WORK]  # default 80 4 /tmp/hemostat-bench-spark
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

from hemostat import config, inventory
from hemostat.detect.runner import examine, pending
from hemostat.engine import spark
from hemostat.ingest import ingest
from hemostat.lake import location
from hemostat.simulate import generate
from hemostat.store import Store

CORES = 2
SCENARIOS = (["provider_bulk"], ["partial_dump", "slow_drip"], ["dns_tunnel", "c2_beacon"],
             ["mimic_backup"])  # fmt: skip


def prepare(hosts: int, sites: int, work: Path) -> list[tuple[str, int]]:
    """Each site's name and flow count; simulated, ingested and exported once per WORK."""
    out = []
    for i in range(sites):
        name, home = f"site{i + 1}", work / f"duck-site{i + 1}"
        if not (home / "ready").exists():
            sim = work / f"sim-{name}"
            generate(sim, hosts=hosts, days=1, seed=7000 + i,
                     scenarios=SCENARIOS[i % len(SCENARIOS)])  # fmt: skip
            shutil.rmtree(home, ignore_errors=True)
            home.mkdir(parents=True)
            shutil.copy(sim / "inventory.yaml", home / "inventory.yaml")
            with Store(home) as store:
                ingest(store, [sim])
                store.export(work / "lake", name)
            (home / "ready").touch()
        with Store(home, read_only=True) as store:
            out.append((name, store.counts().flows))
    return out


def fresh(home: Path, source: Path) -> None:
    """An empty home with ``source``'s inventory (detection state wiped)."""
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    shutil.copy(source / "inventory.yaml", home / "inventory.yaml")


def duckdb_pass(work: Path, name: str) -> float:
    home = work / f"duck-{name}"
    site = inventory.load(home / "inventory.yaml")
    with Store(home) as store:
        store.con.execute("DELETE FROM findings; DELETE FROM incidents; DELETE FROM detections;"
                          f"DELETE FROM pairs; SET threads = {CORES}")  # fmt: skip
        window = pending(store, None, None)
        assert window is not None
        started = time.perf_counter()
        examine(store, site, config.Settings(), window)
        return time.perf_counter() - started


def spark_pass(session: object, work: Path, name: str) -> float:
    home = work / f"spark-{name}"
    fresh(home, work / f"duck-{name}")
    site = inventory.load(home / "inventory.yaml")
    backend = spark.connect(session, location(work / "lake"), name)
    with Store(home) as store:
        started = time.perf_counter()
        window = pending(store, None, None, backend)
        assert window is not None
        examine(store, site, config.Settings(), window, backend=backend)
        return time.perf_counter() - started


def main() -> None:
    hosts = int(sys.argv[1]) if len(sys.argv) > 1 else 80
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    work = Path(sys.argv[3]) if len(sys.argv) > 3 else Path("/tmp/hemostat-bench-spark")
    sites = prepare(hosts, count, work)
    started = time.perf_counter()
    session = spark.session(f"local[{CORES}]", {"spark.sql.shuffle.partitions": str(CORES)})
    print(f"spark session start: {time.perf_counter() - started:.1f} s")
    total_duck = total_spark = 0.0
    flows = 0
    print("sites  flows      duckdb s  spark s  duck flows/s/core  spark flows/s/core  ratio")
    for i, (name, n) in enumerate(sites, start=1):
        duck, sparked = duckdb_pass(work, name), spark_pass(session, work, name)
        total_duck, total_spark, flows = total_duck + duck, total_spark + sparked, flows + n
        print(
            f"{i:5d}  {flows:9,d}  {total_duck:8.1f}  {total_spark:7.1f}  "
            f"{flows / total_duck / CORES:17,.0f}  {flows / total_spark / CORES:18,.0f}  "
            f"{total_spark / total_duck:5.1f}x"
        )
    session.stop()


if __name__ == "__main__":
    main()

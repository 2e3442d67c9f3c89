"""Ingest speed: `hemostat ingest` of a generated Zeek conn.log vs. DuckDB's own read_csv.

Both load the same file into a fresh DuckDB file in this process; the ratio is
hemostat time / DuckDB time (goal ≤ 1.3). Peak memory (RSS high-water mark) is printed too,
and the CPU time of each (all threads): on a shared machine the CPU ratio moves less than the
wall-clock one, which another process's load skews.

    .venv/bin/python bench/ingest.py [ROWS [REPEAT]]    # default 5,000,000 rows, 3 runs

Each figure is the median of REPEAT runs, baseline and hemostat alternated.
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import duckdb

from hemostat.ingest import ingest_file
from hemostat.store import Store

HEADER = """#separator \\x09
#set_separator\t,
#empty_field\t(empty)
#unset_field\t-
#path\tconn
#open\t2026-01-01-00-00-00
#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration\torig_bytes\tresp_bytes\tconn_state\tlocal_orig\tlocal_resp\tmissed_bytes\thistory\torig_pkts\torig_ip_bytes\tresp_pkts\tresp_ip_bytes\ttunnel_parents
#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tinterval\tcount\tcount\tstring\tbool\tbool\tcount\tstring\tcount\tcount\tcount\tcount\tset[string]
"""

ROWS_SQL = """
SELECT printf('%.6f', 1767225600 + i * 0.0172) AS ts,
       'C' || md5(i::VARCHAR)[:17] AS uid,
       '10.' || (i % 7 + 1) || '.' || (i // 7 % 250) || '.' || (i % 241 + 1) AS oh,
       (i * 7919) % 64000 + 1024 AS op,
       CASE WHEN i % 5 = 0 THEN '198.51.100.' || (i % 200 + 1)
            ELSE '10.1.' || (i % 3) || '.' || (i % 97 + 1) END AS rh,
       [443, 445, 53, 5432, 80][i % 5 + 1] AS rp,
       CASE WHEN i % 5 = 2 THEN 'udp' ELSE 'tcp' END AS proto,
       ['ssl', 'smb', 'dns', '-', 'http'][i % 5 + 1] AS service,
       printf('%.6f', (i % 1000) / 37.0) AS duration,
       (i * 31) % 100000 AS ob, (i * 17) % 900000 AS rb, 'SF' AS cs, 'T' AS lo,
       CASE WHEN i % 5 = 0 THEN 'F' ELSE 'T' END AS lr, 0 AS mb, 'ShADadFf' AS hist,
       i % 50 + 3 AS opk, (i * 31) % 100000 + 200 AS oipb, i % 70 + 3 AS rpk,
       (i * 17) % 900000 + 200 AS ripb, '(empty)' AS tp
FROM range({rows}) t(i)
"""

COLUMNS = {
    "ts": "DOUBLE", "uid": "VARCHAR", "id.orig_h": "VARCHAR", "id.orig_p": "USMALLINT",
    "id.resp_h": "VARCHAR", "id.resp_p": "USMALLINT", "proto": "VARCHAR", "service": "VARCHAR",
    "duration": "DOUBLE", "orig_bytes": "UBIGINT", "resp_bytes": "UBIGINT",
    "conn_state": "VARCHAR", "local_orig": "VARCHAR", "local_resp": "VARCHAR",
    "missed_bytes": "UBIGINT", "history": "VARCHAR", "orig_pkts": "UBIGINT",
    "orig_ip_bytes": "UBIGINT", "resp_pkts": "UBIGINT", "resp_ip_bytes": "UBIGINT",
    "tunnel_parents": "VARCHAR",
}  # fmt: skip


def make_log(path: Path, rows: int) -> None:
    body = path.with_suffix(".body")
    duckdb.sql(ROWS_SQL.format(rows=rows)).write_csv(
        str(body), sep="\t", header=False, quotechar=""
    )
    with path.open("wb") as out:
        out.write(HEADER.encode())
        with body.open("rb") as src:
            while chunk := src.read(1 << 24):
                out.write(chunk)
        out.write(b"#close\t2026-01-02-00-00-00\n")
    body.unlink()


def duckdb_baseline(path: Path, db: Path) -> tuple[float, float, int]:
    con = duckdb.connect(str(db))
    con.execute("SET enable_progress_bar = false")
    cpu, start = time.process_time(), time.perf_counter()
    con.execute(
        f"CREATE TABLE conn AS SELECT * FROM read_csv('{path}', delim='\t', header=false, "
        f"comment='#', quote='', escape='', columns={COLUMNS}, nullstr=['-', '(empty)'], "
        "auto_detect=false)"
    )
    con.close()
    return time.perf_counter() - start, time.process_time() - cpu, db.stat().st_size


def hemostat_ingest(path: Path, home: Path) -> tuple[float, float, int, int]:
    cpu, start = time.process_time(), time.perf_counter()
    with Store(home) as store:
        report = ingest_file(store, path)
    took = time.perf_counter() - start, time.process_time() - cpu
    return *took, report.total, sum(f.stat().st_size for f in home.iterdir())


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 5_000_000
    repeat = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    runs = []
    with tempfile.TemporaryDirectory(prefix="hemostat-bench-") as tmp:
        log = Path(tmp) / "conn.log"
        make_log(log, rows)
        size = log.stat().st_size
        for i in range(repeat):  # alternated, so that a burst of load hits both alike
            wall, cpu, base_size = duckdb_baseline(log, Path(tmp) / f"baseline{i}.duckdb")
            ours, ours_cpu, n, our_size = hemostat_ingest(log, Path(tmp) / f"home{i}")
            assert n == rows, f"ingested {n} rows of {rows}"
            runs.append(((wall, cpu), (ours, ours_cpu)))
            shutil.rmtree(Path(tmp) / f"home{i}")
            (Path(tmp) / f"baseline{i}.duckdb").unlink()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"file: {rows:,} rows, {size / 1e6:,.0f} MB; load average {os.getloadavg()[0]:.1f}")
    for (base, base_cpu), (ours, ours_cpu) in runs:
        print(
            f"  duckdb read_csv {base:6.2f} s (cpu {base_cpu:5.2f}) | hemostat ingest "
            f"{ours:6.2f} s (cpu {ours_cpu:5.2f}) | ratio {ours / base:.2f}"
        )
    base, base_cpu = (statistics.median(r[0][k] for r in runs) for k in (0, 1))
    ours, ours_cpu = (statistics.median(r[1][k] for r in runs) for k in (0, 1))
    print(f"median of {repeat}:")
    for name, wall, cpu in (
        ("duckdb read_csv", base, base_cpu),
        ("hemostat ingest", ours, ours_cpu),
    ):
        print(f"{name}: {wall:6.2f} s  ({rows / wall / 1e6:.2f} M rows/s), cpu {cpu:.2f} s")
    ratios = f"{ours / base:.2f}  (goal <= 1.30); cpu ratio {ours_cpu / base_cpu:.2f}"
    print(f"ratio hemostat/duckdb: {ratios}")
    print(f"peak RSS of this process: {peak_mb:,.0f} MB")
    print(
        f"database size: duckdb {base_size / 1e6:,.0f} MB (all 21 columns of the log), "
        f"hemostat {our_size / 1e6:,.0f} MB (the flows table, Community IDs included)"
    )


if __name__ == "__main__":
    main()

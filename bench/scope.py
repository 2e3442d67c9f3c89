"""Scoping speed: one incident over one simulated day vs. one plain DuckDB scan.

Takes the store `bench/detect.py` leaves (simulated, ingested and detected; it runs that
preparation itself when WORK is empty), makes sure the `pairs` rollup exists (a detection
pass writes it; a store detected before it existed is rolled up here, and the time printed),
then for every incident times, warm (second of two runs):

* the floor: `SELECT count(*), sum(bytes_out) FROM flows` over the incident's window
  extended by the lineage lead, for its hosts: the least any answer has to read;
* `hemostat scope`'s library call.

It prints both times and their ratio per incident. Goal (DESIGN §9): a one-day incident in
≤ 2 s on 2 cores.

    .venv/bin/python bench/scope.py [HOSTS] [WORK]    # default 8000 /tmp/hemostat-bench-detect
"""

from __future__ import annotations

import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from detect import prepare
from hemostat import config, inventory
from hemostat.detect.runner import examine, pending
from hemostat.incidents import listing
from hemostat.scope import scope
from hemostat.scope.pairs import roll
from hemostat.store import Store


def warm(run: object) -> float:
    best = float("inf")
    for _ in range(2):
        started = time.perf_counter()
        run()  # type: ignore[operator]
        best = time.perf_counter() - started
    return best


def main() -> None:
    hosts = int(sys.argv[1]) if len(sys.argv) > 1 else 8000
    work = Path(sys.argv[2]) if len(sys.argv) > 2 else Path("/tmp/hemostat-bench-detect")
    sim, home = prepare(hosts, work)
    site = inventory.load(sim / "inventory.yaml")
    settings = config.Settings()
    lead = timedelta(hours=settings.get("scope", "lead_hours"))
    with Store(home) as store:
        if not listing(store):
            window = pending(store, None, None)
            assert window is not None, "the store is empty"
            examine(store, site, settings, window)
        if store.con.execute("SELECT count(*) FROM pairs").fetchall()[0][0] == 0:
            started = time.perf_counter()
            for since, until in store.con.execute("SELECT since, until FROM detections").fetchall():
                roll(store, site.internal, since, until)
            print(f"pairs rollup (part of detection since): {time.perf_counter() - started:.1f} s")
        flows = store.con.execute("SELECT count(*) FROM flows").fetchall()[0][0]
        print(f"{hosts} hosts: {flows:,} flows")
        for listed in listing(store):
            inc = listed.incident
            floor = warm(lambda inc=inc: store.con.execute(
                "SELECT count(*), sum(bytes_out) FROM flows WHERE ts >= ? AND ts < ? "
                "AND list_contains(?, src_ip)", [inc.start - lead, inc.end, list(inc.hosts)],
            ).fetchall())  # fmt: skip
            seconds = warm(lambda inc=inc: scope(store, site, inc.id, settings))
            span = (inc.end - inc.start).total_seconds() / 3600
            print(f"  {inc.id} {inc.kind:<18} {span:5.1f} h  scope {seconds:5.2f} s  "
                  f"floor {floor:5.2f} s  ratio {seconds / floor:5.1f}x")  # fmt: skip


if __name__ == "__main__":
    main()

"""Simulation speed: one day (or more) of an N-host hospital, written to disk.

Prints rows written, wall and CPU time, flows/s (conn.log rows per second of wall time),
peak resident memory (parent and worker processes together, sampled every 0.2 s, and each
one's high-water mark) and the size of the output. Goal (issue 3): 8,000 hosts,
one day (order of 100M flows) in at most 10 minutes on 2 cores, under 8 GB.

    .venv/bin/python bench/simulate.py [HOSTS] [DAYS] [--keep DIR]   # default 8000 1
"""

from __future__ import annotations

import contextlib
import resource
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

from hemostat.simulate import SCENARIOS, generate


def _progress(done: int, total: int) -> None:
    print(f"\r  hour {done}/{total}", end="", file=sys.stderr, flush=True)


class Memory:
    """Samples the resident memory of this process and its workers (summed) every 0.2 s."""

    def __init__(self) -> None:
        self.peak = 0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = psutil.Process()
        while not self.done.wait(0.2):
            total = 0
            for proc in [me, *me.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    total += proc.memory_info().rss
            self.peak = max(self.peak, total)

    def __enter__(self) -> Memory:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.thread.join()


def main(argv: list[str]) -> None:
    keep = None
    if "--keep" in argv:
        at = argv.index("--keep")
        keep = Path(argv[at + 1])
        argv = argv[:at] + argv[at + 2 :]
    hosts = int(argv[0]) if argv else 8000
    days = int(argv[1]) if len(argv) > 1 else 1
    out = keep or Path(tempfile.mkdtemp(prefix="hemostat-sim-"))
    try:
        start = time.perf_counter()
        with Memory() as memory:
            summary = generate(
                out, hosts=hosts, days=days, scenarios=list(SCENARIOS), seed=1, progress=_progress
            )
        seconds = time.perf_counter() - start
        size = sum(p.stat().st_size for p in summary.files)
    finally:
        if keep is None:
            shutil.rmtree(out, ignore_errors=True)
    me, kids = (resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    cpu = me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime
    print(
        f"\nhosts={hosts} days={days}: {summary.flows:,} flows, {summary.dns:,} dns, "
        f"{summary.access:,} access events, {size / 1e9:.1f} GB on disk"
    )
    print(
        f"wall {seconds:.1f} s, cpu {cpu:.1f} s: {summary.flows / seconds:,.0f} flows/s; "
        f"peak RSS {memory.peak / 1e6:,.0f} MB (all processes, sampled), "
        f"{me.ru_maxrss / 1024:,.0f} MB parent, {kids.ru_maxrss / 1024:,.0f} MB largest worker"
    )


if __name__ == "__main__":
    main(sys.argv[1:])

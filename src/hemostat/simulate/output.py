"""The output directory: one ``conn`` and one ``dns`` Zeek log per hour (named as Zeek's
rotation names them, ``conn.2023-06-12-05-00-00.log``), one ``access.jsonl``, the
inventory and the truth. Files a previous run left under these names are removed first,
so the directory always holds exactly one simulation.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from hemostat.simulate import columns
from hemostat.simulate.dns import Queries
from hemostat.simulate.flows import Flows
from hemostat.simulate.writer import ZeekLog, stamp, write_conn, write_dns

PATTERNS = ("conn.*.log", "dns.*.log", "access.jsonl", "truth.json", "inventory.yaml")


def prepare(out: Path) -> None:
    """Create ``out`` and remove what an earlier simulation wrote there."""
    out.mkdir(parents=True, exist_ok=True)
    for pattern in PATTERNS:
        for old in out.glob(pattern):
            old.unlink()


class HourLogs:
    """The conn and dns logs of one hour, filled part by part: each part's rows sorted by
    start time, parts added in time order, so each file is sorted."""

    def __init__(
        self, out: Path, lo: int, hi: int, ips: pa.StringArray, internal: npt.NDArray[np.bool_]
    ) -> None:
        name = stamp(lo)
        self.paths = (out / f"conn.{name}.log", out / f"dns.{name}.log")
        self.conn = ZeekLog(self.paths[0], "conn", lo, hi)
        self.dns = ZeekLog(self.paths[1], "dns", lo, hi)
        self.ips, self.internal = ips, internal
        self.flows = self.queries = 0

    def add(self, conn: Flows, queries: Queries) -> None:
        write_conn(self.conn, columns.by_time(conn), self.ips, self.internal)
        write_dns(self.dns, columns.by_time(queries), self.ips)
        self.flows += len(conn)
        self.queries += len(queries)

    def __enter__(self) -> HourLogs:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.conn.__exit__(kind, exc, tb)
        self.dns.__exit__(kind, exc, tb)

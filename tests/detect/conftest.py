"""Helpers for detector tests: build a few canonical rows, store them, run one detector.

def test_fires(detect):
    found = detect(EgressVolume(), flows=[flow(ts=T0, src_ip="10.1.2.3", ...)],
                   start=T0, end=T0 + DAY)
    assert [f.host for f in found] == ["10.1.2.3"]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path
from typing import Any

import ibis
import pyarrow as pa
import pytest

from hemostat.config import Settings
from hemostat.detect import Detector, Window
from hemostat.detect.runner import detect as run_detectors
from hemostat.inventory import Inventory
from hemostat.schema import ACCESS, DNS, FLOWS, Finding, Table
from hemostat.store import Store

#: a Monday, 00:00 UTC
T0 = datetime(2024, 3, 4, tzinfo=UTC)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)

_ids = count()


def flow(**values: Any) -> dict[str, Any]:
    """A flow row with plausible defaults: a 1-second TCP/443 flow of 1 kB out, 4 kB in."""
    ts = values.get("ts", T0)
    row = {
        "ts": ts, "end_ts": ts + timedelta(seconds=1), "src_ip": "10.1.20.5",
        "src_port": 50000, "dst_ip": "198.51.100.20", "dst_port": 443, "proto": "tcp",
        "service": "ssl", "bytes_out": 1000, "bytes_in": 4000, "pkts_out": 10, "pkts_in": 10,
        "conn_state": "SF", "conn_id": f"C{next(_ids)}", "source": "test",
    }  # fmt: skip
    row.update(values)
    return row


def query(**values: Any) -> dict[str, Any]:
    row = {"ts": T0, "src_ip": "10.1.20.5", "query": "www.example.org", "qtype": "A",
           "rcode": "NOERROR", "answers": ["93.184.216.34"], "source": "test"}  # fmt: skip
    row.update(values)
    return row


def event(**values: Any) -> dict[str, Any]:
    row = {"ts": T0, "host": "10.1.2.10", "user": "dpi_app", "process": "postgres",
           "action": "query", "object": "postgresql://dpi/public.patients", "rows": 10,
           "bytes": 4000, "client_ip": "10.1.4.20", "source": "test"}  # fmt: skip
    row.update(values)
    return row


def arrow(schema: pa.Schema, rows: Sequence[dict[str, Any]]) -> pa.Table:
    names = [f.name for f in schema]
    return pa.Table.from_pylist([{n: r.get(n) for n in names} for r in rows], schema=schema)


Detect = Callable[..., list[Finding]]


@pytest.fixture
def detect(tmp_path: Path) -> Detect:
    """Store the given rows in a fresh store and run one detector over ``[start, end)``."""

    def run(
        detector: Detector,
        *,
        start: datetime,
        end: datetime,
        flows: Sequence[dict[str, Any]] = (),
        dns: Sequence[dict[str, Any]] = (),
        access: Sequence[dict[str, Any]] = (),
        inventory: Inventory | None = None,
        history: timedelta = timedelta(days=28),
        settings: Settings | None = None,
    ) -> list[Finding]:
        home = tmp_path / f"home{next(_ids)}"
        with Store(home) as store:
            for table, schema, rows in (
                (Table.FLOWS, FLOWS, flows), (Table.DNS, DNS, dns), (Table.ACCESS, ACCESS, access)
            ):  # fmt: skip
                if rows:
                    store.append(table, arrow(schema, rows))
            result = run_detectors(
                ibis.duckdb.from_connection(store.con),
                inventory or Inventory(site="test", timezone="Europe/Paris"),
                Window(start, end, history),
                settings or Settings(),
                [detector],
            )
        if result.errors:
            raise AssertionError(result.errors[0].error)
        return sorted(result.findings, key=lambda f: (f.ts, f.host))

    return run

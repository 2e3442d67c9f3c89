"""The two scans scoping makes of the ``flows`` table, as Ibis expressions (so they run on
DuckDB or Spark alike): every flow touching a set of hosts in a time range, and what those
flows amount to as *gifts* of data from one internal host to another.

A flow gives data both ways: the originator gives ``bytes_out`` to the responder (a push, an
upload to a file server) and the responder gives ``bytes_in`` to the originator (a pull, a
database dump read by a client). Lineage follows gifts, whichever side started the flow.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import ibis.expr.types as ir

from hemostat.detect.context import match_any

COLUMNS = (
    "ts", "end_ts", "src_ip", "src_port", "dst_ip", "dst_port", "proto", "service",
    "bytes_out", "bytes_in", "conn_id",
)  # fmt: skip


def touching(
    flows: ir.Table, hosts: list[str], lo: datetime, hi: datetime, margin: Any
) -> ir.Table:
    """Flows that overlap ``[lo, hi)`` with ``hosts`` on either side; ``margin`` is how long
    before ``lo`` a flow may have started and still overlap (keeps the ``ts`` filter cheap)."""
    f = flows.filter(
        (flows.ts >= lo - margin)
        & (flows.ts < hi)
        & (flows.end_ts >= lo)
        & (flows.src_ip.isin(hosts) | flows.dst_ip.isin(hosts))
    )
    return f.select(*COLUMNS)


def outward(
    flows: ir.Table, hosts: list[str], internal: list[str], lo: datetime, hi: datetime,
    margin: Any,
) -> ir.Table:  # fmt: skip
    """Flows from ``hosts`` to outside addresses overlapping ``[lo, hi)``."""
    f = flows.filter((flows.ts >= lo - margin) & (flows.ts < hi) & flows.src_ip.isin(hosts))
    f = f.filter((f.end_ts >= lo) & ~match_any(f.dst_ip, internal))
    return f.select("ts", "end_ts", "src_ip", "src_port", "dst_ip", "dst_port", "bytes_out")


def gifts(touched: ir.Table, internal: list[str]) -> ir.Table:
    """Per (giver, taker, port): bytes given inside the network, flows, first and last time,
    over the flows of ``touched`` (aggregated where the flows are: the engine's side)."""
    f = touched
    inside = f.filter(
        match_any(f.src_ip, internal) & match_any(f.dst_ip, internal) & (f.src_ip != f.dst_ip)
    )

    def one(giver: ir.StringValue, taker: ir.StringValue, size: ir.IntegerValue) -> ir.Table:
        return inside.select(
            giver=giver, taker=taker, port=inside.dst_port.cast("int64"),
            service=inside.service.cast("string"), bytes=size.cast("int64").fill_null(0),
            ts=inside.ts, end_ts=inside.end_ts,
        )  # fmt: skip

    given = one(inside.src_ip, inside.dst_ip, inside.bytes_out).union(
        one(inside.dst_ip, inside.src_ip, inside.bytes_in)
    )
    given = given.filter(given.bytes > 0)
    return given.group_by("giver", "taker", "port").aggregate(
        service=given.service.max(),
        bytes=given.bytes.sum(),
        flows=given.count(),
        first=given.ts.min(),
        last=given.end_ts.max(),
    )

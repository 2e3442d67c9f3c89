"""The ``pairs`` rollup: internal traffic per hour and (source, destination, port), written
by each detection pass for the whole hours its window touches (recomputed, never added to),
so that scoping follows lineage through a table a hundred times smaller than ``flows``. A
period no detection pass covered is read from ``flows`` directly (slower, same answer).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import ibis
import ibis.expr.types as ir

from hemostat.detect.context import match_any
from hemostat.hours import ceil_hour, floor_hour
from hemostat.store import Store


def roll(
    store: Store, internal: list[str], since: datetime, until: datetime, backend: Any = None
) -> None:
    """Recompute the internal pairs of the hours ``[since, until)`` touches: every bucket
    from the hour ``since`` falls in to the hour after ``until`` is replaced, from the store's
    flows or ``backend``'s (the lake, for the Spark engine: the rollup is computed there and
    only its rows come back), so a period detected again is never counted twice."""
    lo, hi = floor_hour(since), ceil_hour(until)
    stored = backend is None or getattr(backend, "con", None) is store.con
    f = (ibis.duckdb.from_connection(store.con) if stored else backend).table("flows")
    f = f.filter(
        (f.ts >= lo) & (f.ts < hi) & (f.src_ip != f.dst_ip)
        & match_any(f.src_ip, internal) & match_any(f.dst_ip, internal)
    )  # fmt: skip
    rolled = f.group_by(
        hour=f.ts.truncate("h"), src_ip=f.src_ip, dst_ip=f.dst_ip, dst_port=f.dst_port
    ).aggregate(
        service=f.service.max(), bytes_out=f.bytes_out.sum(), bytes_in=f.bytes_in.sum(),
        flows=f.count(), first=f.ts.min(), last=f.end_ts.max(),
    )  # fmt: skip
    columns = "hour, src_ip, dst_ip, dst_port, service, bytes_out, bytes_in, flows, first, last"
    rolled = rolled.select(*columns.split(", "))
    if stored:
        source = ibis.to_sql(rolled, dialect="duckdb")
    else:  # computed by the other engine; its rows are inserted from Arrow
        store.con.register("_hemostat_pairs", backend.to_pyarrow(rolled))
        source = f"SELECT {columns} FROM _hemostat_pairs"
    try:
        with store.transaction() as con:
            con.execute("DELETE FROM pairs WHERE hour >= ? AND hour < ?", [lo, hi])
            con.execute(f"INSERT INTO pairs ({columns}) {source}")
    finally:
        if not stored:
            store.con.unregister("_hemostat_pairs")


def covered(store: Store, lo: datetime, hi: datetime) -> bool:
    """Whether detection passes rolled up every flow of ``[lo, hi)``: a stretch no pass
    covered is fine when no flow starts in it (the lead period before the first data)."""
    rows = store.con.execute(
        "SELECT since, until FROM detections WHERE until > ? AND since < ? ORDER BY since",
        [lo, hi],
    ).fetchall()
    reached, gaps = lo, []
    for since, until in rows:
        if since > reached:
            gaps.append((reached, since))
        reached = max(reached, until)
    if reached < hi:
        gaps.append((reached, hi))
    return not any(_flows_in(store, a, b) for a, b in gaps)


def _flows_in(store: Store, lo: datetime, hi: datetime) -> bool:
    sql = "SELECT 1 FROM flows WHERE ts >= ? AND ts < ? LIMIT 1"
    return bool(store.con.execute(sql, [lo, hi]).fetchall())


def given(pairs: ir.Table, hosts: list[str], lo: datetime, hi: datetime, margin: Any) -> ir.Table:
    """Per host of ``hosts``: every byte it gave inside the network in the period."""
    p = _period(pairs, lo, hi, margin)
    sent = p.filter(p.src_ip.isin(hosts)).select(giver=p.src_ip, bytes=p.bytes_out)
    served = p.filter(p.dst_ip.isin(hosts)).select(giver=p.dst_ip, bytes=p.bytes_in)
    both = sent.union(served)
    return both.group_by("giver").aggregate(bytes=both.bytes.sum())


def _period(pairs: ir.Table, lo: datetime, hi: datetime, margin: Any) -> ir.Table:
    return pairs.filter((pairs.hour >= lo - margin) & (pairs.hour < hi) & (pairs.last >= lo))


def gifts(pairs: ir.Table, hosts: list[str], lo: datetime, hi: datetime, margin: Any) -> ir.Table:
    """``flows.gifts`` over the rollup, for gifts *to* ``hosts``: per (giver, taker, port)
    bytes, flows, first, last."""
    p = _period(pairs, lo, hi, margin)
    p = p.filter(p.src_ip.isin(hosts) | p.dst_ip.isin(hosts))

    def one(giver: ir.StringValue, taker: ir.StringValue, size: ir.IntegerValue) -> ir.Table:
        return p.select(
            giver=giver, taker=taker, port=p.dst_port.cast("int64"), service=p.service,
            bytes=size.cast("int64").fill_null(0), flows=p.flows, first=p.first, last=p.last,
        )  # fmt: skip

    given = one(p.src_ip, p.dst_ip, p.bytes_out).union(one(p.dst_ip, p.src_ip, p.bytes_in))
    given = given.filter((given.bytes > 0) & given.taker.isin(hosts))
    return given.group_by("giver", "taker", "port").aggregate(
        service=given.service.max(), bytes=given.bytes.sum(), flows=given.flows.sum(),
        first=given.first.min(), last=given.last.max(),
    )  # fmt: skip

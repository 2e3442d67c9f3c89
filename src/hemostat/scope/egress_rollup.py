"""The egress rollups: what the site's hosts sent to the Internet, written by each detection
pass for its window (beside the ``pairs`` rollup), so that the dashboard never scans ``flows``:

* ``egress_hours``: per hour and (internal source, external destination, port): bytes out
  and in, flows, first start and last end;
* ``egress_minutes``: per minute and internal source: bytes out and flows to the outside;
* ``egress_sources`` and ``egress_targets``: ``egress_hours`` summed per hour and source,
  per hour and destination, with how many destinations (hosts) it had in that hour: thirty
  times fewer rows, for rankings and a host's or destination's history;
* ``egress_rolls``: the periods rolled up, so that a reader can tell "nothing was sent" from
  "not rolled up" (a store detected before these tables existed).

"Internal" is the inventory's ``internal`` networks; "external" is any other routable address
(not loopback, link-local, multicast or broadcast), as the detectors' ``Context.external``.
A flow counts in the hour and the minute its ``ts`` (start) falls in.

A pass rolls up whole hours: it replaces every bucket from the hour its window starts in to
the hour after it ends, recomputed from ``flows``, so a window examined again (late rows from
an agent's spool) or a pass over an old period never counts a flow twice.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import ibis
import ibis.expr.types as ir

from hemostat.detect.context import NOT_ROUTED, match_any
from hemostat.hours import ceil_hour, floor_hour
from hemostat.schema import Table
from hemostat.store import Store

_TICK = timedelta(microseconds=1)
_HOURS = "hour, src_ip, dst_ip, dst_port, bytes_out, bytes_in, flows, first, last"
_MINUTES = "minute, src_ip, bytes_out, flows"
_TEMP = "_hemostat_egress"
_US_MINUTE, _US_HOUR = 60_000_000, 3_600_000_000
_TABLES = (("egress_hours", "hour"), ("egress_minutes", "minute"), ("egress_sources", "hour"),
           ("egress_targets", "hour"))  # fmt: skip


def outside(ip: ir.StringValue, internal: list[str]) -> ir.BooleanValue:
    """``ip`` is an Internet address: not internal, not loopback/link-local/multicast."""
    return ~match_any(ip, internal) & ~match_any(ip, NOT_ROUTED) & (ip != "255.255.255.255")


def roll(
    store: Store, internal: list[str], since: datetime, until: datetime, backend: Any = None
) -> float:
    """Recompute the egress rollups for the hours ``[since, until)`` touches from the store's
    flows (or ``backend``'s: the lake, for the Spark engine); returns the seconds it took."""
    started = time.perf_counter()
    lo, hi = floor_hour(since), ceil_hour(until)
    stored = backend is None or getattr(backend, "con", None) is store.con
    flows = (ibis.duckdb.from_connection(store.con) if stored else backend).table("flows")
    egress = _egress(flows, internal, lo, hi)
    with store.transaction() as con:
        for table, column in _TABLES:
            con.execute(f"DELETE FROM {table} WHERE {column} >= ? AND {column} < ?", [lo, hi])
        if stored:
            _aggregate_here(store, egress)
        else:
            _aggregate_there(store, backend, egress)
        _summarise(store, lo, hi)
        seconds = time.perf_counter() - started
        con.execute(
            "INSERT INTO egress_rolls (since, until, rolled_at, seconds) VALUES (?, ?, ?, ?)",
            [lo, until, datetime.now(UTC), seconds],
        )
    return seconds


def _egress(flows: ir.Table, internal: list[str], lo: datetime, hi: datetime) -> ir.Table:
    f = flows.filter(
        (flows.ts >= lo) & (flows.ts < hi) & match_any(flows.src_ip, internal)
        & outside(flows.dst_ip, internal)
    )  # fmt: skip
    return f.select(
        ts=f.ts, end_ts=f.end_ts.fill_null(f.ts), src_ip=f.src_ip, dst_ip=f.dst_ip,
        dst_port=f.dst_port, bytes_out=f.bytes_out.fill_null(0), bytes_in=f.bytes_in.fill_null(0),
    )  # fmt: skip


def _aggregate_here(store: Store, egress: ir.Table) -> None:
    """Both rollups inserted straight from the flows. Buckets are microseconds since the
    epoch divided down: ``date_trunc`` on a TIMESTAMPTZ goes through the time-zone calendar
    and costs twice as much. (One scan with GROUPING SETS is no faster: the filter is cheap,
    the grouping is not.)"""
    rows = ibis.to_sql(egress, dialect="duckdb")
    store.con.execute(f"""
        INSERT INTO egress_hours ({_HOURS})
        SELECT to_timestamp(h * 3600), src_ip, dst_ip, dst_port, sum(bytes_out), sum(bytes_in),
               count(*), min(ts), max(end_ts)
        FROM (SELECT epoch_us(ts) // {_US_HOUR} AS h, * FROM ({rows}))
        GROUP BY h, src_ip, dst_ip, dst_port
    """)  # fmt: skip
    store.con.execute(f"""
        INSERT INTO egress_minutes ({_MINUTES})
        SELECT to_timestamp(m * 60), src_ip, sum(bytes_out), count(*)
        FROM (SELECT epoch_us(ts) // {_US_MINUTE} AS m, src_ip, bytes_out FROM ({rows}))
        GROUP BY m, src_ip
    """)  # fmt: skip


def _aggregate_there(store: Store, backend: Any, egress: ir.Table) -> None:
    """Both rollups computed on another engine; only their rows come back."""
    egress = egress.mutate(hour=egress.ts.truncate("h"), minute=egress.ts.truncate("m"))
    hours = egress.group_by("hour", "src_ip", "dst_ip", "dst_port").aggregate(
        bytes_out=egress.bytes_out.sum(), bytes_in=egress.bytes_in.sum(), flows=egress.count(),
        first=egress.ts.min(), last=egress.end_ts.max(),
    )  # fmt: skip
    minutes = egress.group_by("minute", "src_ip").aggregate(
        bytes_out=egress.bytes_out.sum(), flows=egress.count()
    )
    for table, name, columns in ((hours, "egress_hours", _HOURS),
                                 (minutes, "egress_minutes", _MINUTES)):  # fmt: skip
        store.con.register(_TEMP, backend.to_pyarrow(table.select(*columns.split(", "))))
        try:
            store.con.execute(f"INSERT INTO {name} ({columns}) SELECT {columns} FROM {_TEMP}")
        finally:
            store.con.unregister(_TEMP)


def _summarise(store: Store, lo: datetime, hi: datetime) -> None:
    """``egress_sources`` and ``egress_targets`` from the hours just rolled up."""
    for table, key, other in (("egress_sources", "src_ip", "dst_ip"),
                              ("egress_targets", "dst_ip", "src_ip")):  # fmt: skip
        store.con.execute(
            f"""INSERT INTO {table} SELECT hour, {key}, sum(bytes_out), sum(bytes_in),
                       sum(flows), count(DISTINCT {other}), min(first), max(last)
                FROM egress_hours WHERE hour >= ? AND hour < ? GROUP BY hour, {key}""",
            [lo, hi],
        )


# ---- what is rolled up -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Coverage:
    """How far the rollups reach: ``until`` is the end of the latest pass (None: never
    rolled); ``missing`` are the stretches before it that hold flows no pass rolled up."""

    until: datetime | None
    missing: tuple[tuple[datetime, datetime], ...]

    @property
    def complete(self) -> bool:
        return self.until is not None and not self.missing


def coverage(store: Store, lo: datetime, hi: datetime) -> Coverage:
    """The rollups' coverage of ``[lo, hi)``; flows after the latest pass are not "missing"
    (the next pass rolls them up). The rolls that open a gap are found in SQL: a live
    collector records one every pass."""
    latest = store.con.execute("SELECT max(until) FROM egress_rolls").fetchall()[0][0]
    end = hi if latest is None else min(hi, latest)
    openers = store.con.execute(
        """SELECT reach, since FROM (
               SELECT since, max(until) OVER (ORDER BY since ROWS BETWEEN UNBOUNDED PRECEDING
                                              AND 1 PRECEDING) AS reach
               FROM egress_rolls WHERE until > ? AND since < ?)
           WHERE reach IS NULL OR since > reach ORDER BY since""",
        [lo, end],
    ).fetchall()
    gaps = [(max(reach or lo, lo), since) for reach, since in openers if since > (reach or lo)]
    reached = store.con.execute(
        "SELECT max(until) FROM egress_rolls WHERE until > ? AND since < ?", [lo, end]
    ).fetchall()[0][0]
    gaps.append((max(reached or lo, lo), end))
    found = [_flows_between(store, a, min(b, end)) for a, b in gaps if a < min(b, end)]
    return Coverage(latest, tuple(g for g in found if g is not None))


def _flows_between(store: Store, lo: datetime, hi: datetime) -> tuple[datetime, datetime] | None:
    """The first and last flow start in ``[lo, hi)``, or None when there is none."""
    row = store.con.execute(
        "SELECT min(ts), max(ts) FROM flows WHERE ts >= ? AND ts < ?", [lo, hi]
    ).fetchall()[0]
    return None if row[0] is None else (row[0], row[1])


def missing(
    store: Store, since: datetime | None = None, until: datetime | None = None
) -> list[tuple[datetime, datetime]]:
    """The stretches ``[start, end)`` of stored flows (those starting in ``[since, until)``
    when given) that no pass rolled up, the flows after the latest pass included: each from
    its first flow's start to just after its last."""
    first, last = store.time_range(Table.FLOWS)
    if first is None or last is None:
        return []
    lo = first if since is None else max(first, since)
    hi = last + _TICK if until is None else min(last + _TICK, until)
    if lo >= hi:
        return []
    found = coverage(store, lo, hi)
    gaps = list(found.missing)
    if found.until is not None and found.until < hi:  # after the latest pass
        rest = _flows_between(store, max(lo, found.until), hi)
        gaps += [rest] if rest is not None else []
    return [(a, b + _TICK) for a, b in gaps]

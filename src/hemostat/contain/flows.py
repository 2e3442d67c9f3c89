"""Which recent flows in the store a plan would stop: the second half of the dry-run.

Flows of the look-back window (ending at the newest flow in the store) are summed per
(src, dst, port, proto) in SQL; each such pair is then judged by ``Plan.stops``, the same
semantics as the rules. Agent slices of one connection count once (by ``conn_id``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from hemostat.contain.plan import Kind, Plan
from hemostat.schema import utc_text
from hemostat.store import Store


@dataclass(frozen=True, slots=True)
class StoppedFlow:
    src_ip: str
    dst_ip: str
    dst_port: int | None
    proto: str
    connections: int
    bytes_out: int
    bytes_in: int
    last: datetime


@dataclass(frozen=True, slots=True)
class Impact:
    since: datetime | None
    until: datetime | None
    connections: int
    bytes_out: int
    flows: tuple[StoppedFlow, ...]  # the largest by bytes out, at most ``limit``
    more: int  # stopped (src, dst, port, proto) groups not listed

    def as_dict(self) -> dict[str, Any]:
        def iso(t: datetime | None) -> str | None:
            return utc_text(t) if t else None

        return {"since": iso(self.since), "until": iso(self.until),
                "connections": self.connections, "bytes_out": self.bytes_out,
                "flows": [{"src_ip": f.src_ip, "dst_ip": f.dst_ip, "dst_port": f.dst_port,
                           "proto": f.proto, "connections": f.connections,
                           "bytes_out": f.bytes_out, "bytes_in": f.bytes_in,
                           "last": iso(f.last)} for f in self.flows],
                "more": self.more}  # fmt: skip


_GROUPS = """
SELECT src_ip, dst_ip, dst_port, coalesce(proto, '') AS proto,
       count(DISTINCT conn_id) + count(*) FILTER (WHERE conn_id IS NULL) AS connections,
       coalesce(sum(bytes_out), 0) AS bytes_out, coalesce(sum(bytes_in), 0) AS bytes_in,
       max(coalesce(end_ts, ts)) AS last
FROM flows WHERE ts >= ? AND ts <= ? AND src_ip IS NOT NULL AND dst_ip IS NOT NULL {where}
GROUP BY ALL
"""


def would_stop(
    store: Store, plan: Plan, lookback: timedelta, limit: int = 20, until: datetime | None = None
) -> Impact:
    """The flows of the ``lookback`` before ``until`` (default: the newest flow) that ``plan``
    stops, largest first."""
    end = until or _newest(store)
    if end is None:
        return Impact(None, None, 0, 0, (), 0)
    since = end - lookback
    where, params = _prefilter(plan)
    rows = store.con.execute(_GROUPS.format(where=where), [since, end, *params]).fetchall()
    stopped = [StoppedFlow(*r) for r in rows if plan.stops(r[0], r[1], r[2], r[3])]
    stopped.sort(key=lambda f: (-f.bytes_out, f.src_ip, f.dst_ip, f.dst_port or 0))
    return Impact(since, end, sum(f.connections for f in stopped),
                  sum(f.bytes_out for f in stopped), tuple(stopped[:limit]),
                  max(0, len(stopped) - limit))  # fmt: skip


def _newest(store: Store) -> datetime | None:
    row = store.con.execute("SELECT max(ts) FROM flows").fetchone()
    return row[0] if row else None


def _prefilter(plan: Plan) -> tuple[str, list[Any]]:
    """SQL that narrows the groups to judge (never wider than ``Plan.stops``)."""
    if plan.kind is Kind.HOST:
        return "AND (src_ip = ? OR dst_ip = ?)", [plan.target, plan.target]
    if plan.kind is Kind.DESTINATION and all(b.endswith(("/32", "/128")) for b in plan.blocked):
        addresses = [b.rsplit("/", 1)[0] for b in plan.blocked]
        return "AND (list_contains(?, src_ip) OR list_contains(?, dst_ip))", [addresses] * 2
    return "", []

"""What the overview, hosts and destinations pages read: the egress rollups
(``scope/egress_rollup.py``), never ``flows``, so that a page costs the same at 8,000 hosts
as at 300. Periods are whole minutes or hours ending with the newest rolled-up data (the
simulated hospital's data lies in the past: "the last 24 hours" are those of the data).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from hemostat.hours import ceil_hour, floor_hour
from hemostat.scope.egress_rollup import Coverage, coverage
from hemostat.store import Store

MINUTE, HOUR = timedelta(minutes=1), timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Period:
    """``[start, end)`` of data shown, with how much of it is rolled up."""

    start: datetime
    end: datetime
    covered: Coverage

    @property
    def hours(self) -> float:
        return (self.end - self.start) / HOUR


def data_end(store: Store) -> datetime | None:
    """Where the data ends: the end of the latest rollup (the newest flow then), else the
    newest flow (a store never rolled up)."""
    row = store.con.execute("SELECT max(until) FROM egress_rolls").fetchall()[0][0]
    if row is None:
        row = store.con.execute("SELECT max(ts) + INTERVAL 1 MICROSECOND FROM flows").fetchall()
        row = row[0][0]
    return None if row is None else row.astimezone(UTC)


def last_minutes(store: Store, hours: float) -> Period | None:
    """The last ``hours`` of data in whole minutes (the minute of the newest flow last)."""
    end = data_end(store)
    if end is None:
        return None
    stop = (end - timedelta(microseconds=1)).replace(second=0, microsecond=0) + MINUTE
    start = stop - timedelta(hours=hours)
    return Period(start, stop, coverage(store, start, stop))


def last_hours(store: Store, hours: float | None) -> Period | None:
    """The last ``hours`` of data in whole hours (None: everything rolled up)."""
    end = data_end(store)
    if end is None:
        return None
    stop = ceil_hour(end)
    if hours is None:
        row = store.con.execute("SELECT min(since) FROM egress_rolls").fetchall()[0][0]
        start = floor_hour(row) if row is not None else stop - HOUR
    else:
        start = stop - timedelta(hours=hours)
    return Period(start, stop, coverage(store, start, stop))


# ---- the overview's chart -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Stack:
    """Bytes sent outside per minute: the top hosts' own series and everyone else's."""

    x: list[datetime]
    top: list[tuple[str, int]]  # host, bytes in the period, largest first
    values: dict[str | None, list[int]]  # per top host; None: the others

    def total(self, since: datetime | None = None) -> int:
        keep = [i for i, t in enumerate(self.x) if since is None or t >= since]
        return sum(series[i] for series in self.values.values() for i in keep)

    def spec(self, name: Callable[[str], str], others: str) -> dict[str, Any]:
        """The chart spec ``static/dashboard.js`` draws (stacked bytes per minute)."""
        series: list[dict[str, Any]] = [
            {"name": name(ip), "ip": ip, "values": self.values[ip]} for ip, _ in self.top
        ]
        series.append({"name": others, "ip": None, "values": self.values[None],
                       "color": "#9aa5b4"})  # fmt: skip
        return {"kind": "line", "stacked": True, "unit": "bytes",
                "x": [int(t.timestamp() * 1000) for t in self.x], "series": series}  # fmt: skip


def stack(store: Store, period: Period, top: int = 8) -> Stack:
    """The chart of ``period``: its ``top`` senders (ranked over the hours it touches) each on
    their own, everyone else as the rest of the minute's total."""
    leaders = store.con.execute(
        """SELECT src_ip, sum(bytes_out) AS b FROM egress_sources WHERE hour >= ? AND hour < ?
           GROUP BY src_ip ORDER BY b DESC, src_ip LIMIT ?""",
        [floor_hour(period.start), period.end, top],
    ).fetchall()
    names = [ip for ip, _ in leaders]
    x = [period.start + i * MINUTE for i in range((period.end - period.start) // MINUTE)]
    slot = {t: i for i, t in enumerate(x)}
    values: dict[str | None, list[int]] = {ip: [0] * len(x) for ip in [*names, None]}
    window = "minute >= ? AND minute < ?"
    mine = store.con.execute(
        f"""SELECT minute, src_ip, sum(bytes_out) FROM egress_minutes
            WHERE {window} AND src_ip IN (SELECT unnest(?::VARCHAR[])) GROUP BY ALL""",
        [period.start, period.end, names],
    ).fetchall()
    for minute, ip, sent in mine:
        values[ip][slot[minute]] = int(sent)
    totals = store.con.execute(
        f"SELECT minute, sum(bytes_out) FROM egress_minutes WHERE {window} GROUP BY minute",
        [period.start, period.end],
    ).fetchall()
    for minute, sent in totals:
        i = slot[minute]
        values[None][i] = int(sent) - sum(values[ip][i] for ip in names)
    ranked = [(ip, sum(values[ip])) for ip in names]
    return Stack(x, sorted(ranked, key=lambda kv: (-kv[1], kv[0])), values)


def sent(store: Store, period: Period) -> int:
    """Bytes the site sent outside in the period (whole minutes)."""
    row = store.con.execute(
        "SELECT sum(bytes_out) FROM egress_minutes WHERE minute >= ? AND minute < ?",
        [period.start, period.end],
    ).fetchall()[0][0]
    return int(row or 0)


# ---- hosts and destinations -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Talk:
    """Traffic of one address (a host, a destination, a talker) over a period."""

    ip: str
    bytes_out: int
    bytes_in: int
    flows: int
    first: datetime
    last: datetime
    peers: int = 0  # destinations of a host, hosts of a destination
    ports: tuple[int, ...] = ()


def _talks(rows: list[tuple[Any, ...]], peers: dict[str, int] | None = None) -> list[Talk]:
    return [
        Talk(r[0], int(r[1]), int(r[2]), int(r[3]), r[4].astimezone(UTC), r[5].astimezone(UTC),
             (peers or {}).get(r[0], 0), tuple(sorted(r[6] or ())) if len(r) > 6 else ())
        for r in rows
    ]  # fmt: skip


def ranking(store: Store, period: Period, by: str, limit: int) -> tuple[list[Talk], int]:
    """The top ``limit`` sources (``by="src_ip"``) or destinations (``"dst_ip"``) by bytes
    sent in the period, and how many there are in all. ``peers`` is the most destinations
    (hosts) it had in one hour: an exact count over the period would read ``egress_hours``
    whole, ten times the ranking's cost at 8,000 hosts."""
    table, peers = _SUMMARY[by]
    rows = store.con.execute(
        f"""SELECT {by}, sum(bytes_out), sum(bytes_in), sum(flows), min(first), max(last),
                   max({peers}), count(*) OVER () FROM {table} WHERE hour >= ? AND hour < ?
            GROUP BY {by} ORDER BY 2 DESC, 1 LIMIT ?""",
        [period.start, period.end, limit],
    ).fetchall()
    total = int(rows[0][7]) if rows else 0
    return _talks([r[:6] for r in rows], {r[0]: int(r[6]) for r in rows}), total


#: per ranking key: the hourly summary to read and its distinct-peers column
_SUMMARY = {"src_ip": ("egress_sources", "destinations"), "dst_ip": ("egress_targets", "hosts")}


def hourly(store: Store, by: str, ip: str) -> dict[datetime, tuple[int, int, int]]:
    """Per hour: bytes out, bytes in and flows of ``ip`` as source (``by="src_ip"``) or
    destination (``"dst_ip"``), over everything rolled up."""
    table, _ = _SUMMARY[by]
    rows = store.con.execute(
        f"SELECT hour, bytes_out, bytes_in, flows FROM {table} WHERE {by} = ?", [ip]
    ).fetchall()
    return {r[0].astimezone(UTC): (int(r[1]), int(r[2]), int(r[3])) for r in rows}


def partners(store: Store, column: str, ip: str, limit: int = 200) -> list[Talk]:
    """Who ``ip`` talked to: its destinations (``column="src_ip"``: ``ip`` is the source) or
    its talkers (``"dst_ip"``), largest first, with the ports used."""
    if column not in ("src_ip", "dst_ip"):
        raise ValueError(column)
    other = "dst_ip" if column == "src_ip" else "src_ip"
    rows = store.con.execute(
        f"""SELECT {other}, sum(bytes_out), sum(bytes_in), sum(flows), min(first), max(last),
                   list(DISTINCT dst_port) FROM egress_hours WHERE {column} = ?
            GROUP BY {other} ORDER BY 2 DESC, 1 LIMIT ?""",
        [ip, limit],
    ).fetchall()
    return _talks(rows)


def names(
    store: Store, addr: str, talkers: list[str], lo: datetime, hi: datetime, limit: int = 10
) -> list[tuple[str, int]]:
    """DNS names that answered ``addr`` to its talkers while they talked to it (an hour
    before the first flow on), most asked first."""
    if not talkers:
        return []
    rows = store.con.execute(
        """SELECT query, count(*) FROM dns WHERE ts >= ? AND ts <= ?
             AND src_ip IN (SELECT unnest(?::VARCHAR[])) AND list_contains(answers, ?)
           GROUP BY query ORDER BY 2 DESC, 1 LIMIT ?""",
        [lo - HOUR, hi, talkers, addr, limit],
    ).fetchall()
    return [(str(q), int(n)) for q, n in rows]


def stored(store: Store) -> Period | None:
    """Everything rolled up, in whole hours (a host's or destination's history)."""
    return last_hours(store, None)

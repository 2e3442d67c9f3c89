"""A host's expected egress per hour, drawn beside what it sent on its page.

With two days of data or more, the baseline of an hour is the median of what the host sent
at the same local hour on the previous days (up to ``DAYS``); with less (one simulated day),
it is the median, at that hour, of the hosts of the same inventory role (silent ones count
as zero). A host with neither gets no baseline, and the page says so.
"""

from __future__ import annotations

import enum
import statistics
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from hemostat.inventory import Inventory
from hemostat.store import Store

DAYS = 7  # previous days a history baseline looks at
MIN_PEERS = 2


class Basis(enum.StrEnum):
    HISTORY = "history"
    PEERS = "peers"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class Baseline:
    basis: Basis
    values: list[float | None] = field(default_factory=list)  # one per hour of the series
    role: str | None = None
    peers: int = 0


def baseline(
    store: Store, site: Inventory, ip: str, hours: list[datetime], sent: list[int]
) -> Baseline:
    """The baseline of ``ip`` for each of ``hours`` (whole UTC hours, ``sent`` its bytes)."""
    if len(hours) >= 48:
        return Baseline(Basis.HISTORY, history(hours, sent, ZoneInfo(site.timezone)))
    role = next((h.role for h in site.hosts if h.ip == ip), None)
    peers = sorted({h.ip for h in site.hosts if role and h.role == role and h.ip != ip})
    if role is None or len(peers) < MIN_PEERS or not hours:
        return Baseline(Basis.NONE, [None] * len(hours), role, len(peers))
    return Baseline(Basis.PEERS, _peers(store, peers, hours), role, len(peers))


def history(hours: list[datetime], sent: list[int], zone: ZoneInfo) -> list[float | None]:
    """Median of the same local hour on up to ``DAYS`` previous days of the series."""
    by_slot: dict[tuple[date, int], int] = {}
    for t, value in zip(hours, sent, strict=True):
        local = t.astimezone(zone)
        by_slot[(local.date(), local.hour)] = value
    out: list[float | None] = []
    for t in hours:
        local = t.astimezone(zone)
        past = [by_slot.get((local.date() - timedelta(days=k), local.hour))
                for k in range(1, DAYS + 1)]  # fmt: skip
        known = [v for v in past if v is not None]
        out.append(float(statistics.median(known)) if known else None)
    return out


def _peers(store: Store, peers: list[str], hours: list[datetime]) -> list[float | None]:
    rows = store.con.execute(
        """SELECT hour, src_ip, bytes_out FROM egress_sources
           WHERE hour >= ? AND hour <= ? AND src_ip IN (SELECT unnest(?::VARCHAR[]))""",
        [hours[0], hours[-1], peers],
    ).fetchall()
    per_hour: dict[datetime, list[int]] = {}
    for hour, _, sent in rows:
        per_hour.setdefault(hour, []).append(int(sent))
    out: list[float | None] = []
    for t in hours:
        values = per_hour.get(t, [])
        values = values + [0] * (len(peers) - len(values))
        out.append(float(statistics.median(values)))
    return out

"""The incident's timeline chart: bytes its hosts sent to its outside destinations, per
minute (longer buckets for long incidents), stacked by destination, over the incident's
window and a margin; the findings and the containment moment as vertical markers.

Bytes count in the minute their flow started, as in ``hemostat scope`` (``egress.timeline``);
a DNS tunnel's bytes are the lengths of the names its hosts asked under the domain.
The result is the chart spec ``static/dashboard.js`` draws (``<canvas data-chart>``).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from hemostat.report.lang import Lang
from hemostat.server.dashboard.incident_data import Subject
from hemostat.store import Store

#: bucket lengths in minutes; the first that keeps the chart under ``MAX_BARS`` is used
STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 360, 720, 1440)
MAX_BARS = 720
MIN_MARGIN = timedelta(minutes=10)
MAX_LATE = timedelta(days=1)  # a containment later than this after the end is not drawn
SERIES = 4  # destinations drawn on their own; the others are summed
FINDING_COLOR, CONTAINMENT_COLOR = "#b88a00", "#a4001d"

_FLOWS_SQL = """
SELECT (epoch_ms(ts) // ?) * ? AS bucket, dst_ip, sum(coalesce(bytes_out, 0)) AS bytes
FROM flows
WHERE list_contains(?::VARCHAR[], src_ip) AND list_contains(?::VARCHAR[], dst_ip)
  AND ts >= ? AND ts < ?
GROUP BY ALL
"""
_DNS_SQL = """
SELECT (epoch_ms(ts) // ?) * ? AS bucket, ? AS dst, sum(length(query)) AS bytes
FROM dns
WHERE list_contains(?::VARCHAR[], src_ip) AND ts >= ? AND ts < ?
  AND (lower(query) = ? OR ends_with(lower(query), ?))
GROUP BY ALL
"""


def spec(store: Store, subject: Subject, contained: datetime | None, lang: Lang) -> dict[str, Any]:
    """The chart spec, with ``step`` (minutes per bar) for the caption."""
    lo, hi, step = frame(subject, contained)
    ms = step * 60_000
    sums = _sums(store, subject, lo, hi, ms)
    first = int(lo.timestamp() * 1000) // ms * ms
    xs = list(range(first, int(hi.timestamp() * 1000) + 1, ms))
    return {
        "kind": "bar",
        "stacked": True,
        "unit": "bytes",
        "x": xs,
        "series": _series(sums, xs, lang),
        "markers": _markers(subject, contained, ms, lang),
        "step": step,
        "total": sum(sum(per.values()) for per in sums.values()),
    }


def frame(subject: Subject, contained: datetime | None) -> tuple[datetime, datetime, int]:
    """The chart's start, end and bucket (minutes): the window, a margin each side, and the
    containment moment when it came within a day of the end."""
    start, end = subject.window
    margin = max(MIN_MARGIN, (end - start) / 10)
    lo, hi = start - margin, end + margin
    if contained is not None and end < contained <= end + MAX_LATE:
        hi = max(hi, contained + MIN_MARGIN)
    minutes = (hi - lo).total_seconds() / 60
    step = next((s for s in STEPS if minutes / s <= MAX_BARS), STEPS[-1])
    return lo, hi, step


def _sums(
    store: Store, subject: Subject, lo: datetime, hi: datetime, ms: int
) -> dict[str, dict[int, int]]:
    """destination -> bucket (epoch ms) -> bytes."""
    sums: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    hosts = list(subject.hosts)
    if not hosts:
        return sums
    rows = []
    if subject.outside:
        rows += store.con.execute(_FLOWS_SQL, [ms, ms, hosts, list(subject.outside), lo, hi]
                                  ).fetchall()  # fmt: skip
    for domain in subject.domains:
        name = domain.lower().rstrip(".")
        rows += store.con.execute(_DNS_SQL, [ms, ms, domain, hosts, lo, hi, name, "." + name]
                                  ).fetchall()  # fmt: skip
    for bucket, dst, size in rows:
        sums[dst][int(bucket)] += int(size or 0)
    return sums


def _series(sums: dict[str, dict[int, int]], xs: list[int], lang: Lang) -> list[dict[str, Any]]:
    ranked = sorted(sums, key=lambda d: (-sum(sums[d].values()), d))
    shown, rest = ranked[:SERIES], ranked[SERIES:]
    series = [{"name": d, "values": [sums[d].get(x, 0) for x in xs]} for d in shown]
    if rest:
        values = [sum(sums[d].get(x, 0) for d in rest) for x in xs]
        series.append({"name": lang.t("ui.incident.chart.others", n=len(rest)),
                       "values": values, "color": "#6b7c93"})  # fmt: skip
    return series


def _markers(
    subject: Subject, contained: datetime | None, ms: int, lang: Lang
) -> list[dict[str, Any]]:
    """One marker per bucket holding findings (at the first, naming their detectors), then
    the containment moment."""
    groups: dict[int, tuple[int, list[str]]] = {}
    for f in sorted(subject.findings, key=lambda f: f.ts):
        at = int(f.ts.timestamp() * 1000)
        _, names = groups.setdefault(at // ms, (at, []))
        if f.detector not in names:
            names.append(f.detector)
    markers = [{"at": at, "label": ", ".join(names), "color": FINDING_COLOR}
               for at, names in groups.values()]  # fmt: skip
    if contained is not None:
        label = lang.t("ui.incident.chart.contained", time=lang.clock(contained))
        markers.append({"at": int(contained.timestamp() * 1000), "label": label,
                        "color": CONTAINMENT_COLOR})  # fmt: skip
    return markers

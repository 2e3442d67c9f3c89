"""The rollups filled after the fact: the stretches of stored flows no detection pass rolled
up (a store detected before the rollups existed, or ingested and never detected) get what a
pass would have written for them, the ``pairs`` rollup and the egress rollups, over the same
whole hours.

The stretches are those the egress rollups' record of their periods (``egress_rolls``) lacks:
every pass rolls up both, so a period without egress rollups has no pairs either. Rolling
up recomputes whole hours from ``flows``, so filling a stretch again, or one that shares an
hour with a period a pass covered, never counts a flow twice (stretches never share an hour:
a pass's period starts on a whole hour). A stretch is rolled up in steps
of at most ``STEP``, for the progress display; the egress record of each step is written
last, so an interrupted fill is taken up where it stopped.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from hemostat.hours import HOUR, ceil_hour, floor_hour
from hemostat.scope import egress_rollup, pairs
from hemostat.store import Store

STEP = timedelta(hours=6)

Stretch = tuple[datetime, datetime]


@dataclass(frozen=True, slots=True)
class Filled:
    """What a fill rolled up: the stretches (first flow, just after the last), the whole
    hours recomputed, and the seconds it took."""

    periods: tuple[Stretch, ...]
    hours: int
    seconds: float


def fill(
    store: Store,
    internal: list[str],
    since: datetime | None = None,
    until: datetime | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Filled:
    """Roll up the stretches of the store's flows (those starting in ``[since, until)`` when
    given) that no pass rolled up; ``progress(hours done, hours in all)`` after each step."""
    started = time.perf_counter()
    periods = egress_rollup.missing(store, since, until)
    total = sum(_hours(a, b) for a, b in periods)
    done = 0
    for a, b in (step for period in periods for step in _steps(*period)):
        pairs.roll(store, internal, a, b)
        egress_rollup.roll(store, internal, a, b)
        done += _hours(a, b)
        if progress is not None:
            progress(done, total)
    return Filled(tuple(periods), total, time.perf_counter() - started)


def _hours(start: datetime, end: datetime) -> int:
    """The whole hours rolling up ``[start, end)`` recomputes."""
    return (ceil_hour(end) - floor_hour(start)) // HOUR


def _steps(start: datetime, end: datetime) -> list[Stretch]:
    """``[start, end)`` cut at whole hours into pieces of at most ``STEP``."""
    cuts = [start]
    while (nxt := floor_hour(cuts[-1]) + STEP) < end:
        cuts.append(nxt)
    return list(zip(cuts, [*cuts[1:], end], strict=True))

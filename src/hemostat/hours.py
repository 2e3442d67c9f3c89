"""Whole UTC hours: the buckets of the rollups a detection pass writes (``pairs``, egress)
and of the pages that read them. A bucket is ``[floor_hour(ts), floor_hour(ts) + HOUR)``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

HOUR = timedelta(hours=1)


def floor_hour(ts: datetime) -> datetime:
    """The start of the UTC hour ``ts`` falls in."""
    return ts.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def ceil_hour(ts: datetime) -> datetime:
    """The first whole UTC hour at or after ``ts``."""
    floor = floor_hour(ts)
    return floor if floor == ts else floor + HOUR

"""Time in the hospital: the local clock (Europe/Paris, daylight saving included) and the
daily and weekly rhythms that scale how busy each kind of host is.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hemostat.simulate.hospital import TIMEZONE

TZ = ZoneInfo(TIMEZONE)
HOUR = 3_600_000_000  # µs
DAY = 24 * HOUR


class Profile(enum.StrEnum):
    OFFICE = "office"  # workstations: office hours, quiet nights and weekends
    CLINICAL = "clinical"  # wards and devices: around the clock, busier by day
    SERVER = "server"  # servers: follow their users, never idle
    PUBLIC = "public"  # the public web site: evenings too
    FLAT = "flat"


# fmt: off
_HOURLY = {
    Profile.OFFICE: (.06, .05, .04, .04, .04, .06, .18, .45, .85, 1.0, 1.0, .92,
                     .70, .85, 1.0, .95, .85, .62, .38, .22, .15, .11, .09, .07),
    Profile.CLINICAL: (.45, .40, .38, .38, .40, .45, .60, .80, .95, 1.0, 1.0, .95,
                       .90, .95, 1.0, .95, .90, .85, .75, .70, .65, .58, .52, .48),
    Profile.SERVER: (.35, .32, .30, .30, .32, .36, .48, .70, .90, 1.0, 1.0, .95,
                     .85, .92, 1.0, .96, .90, .78, .62, .52, .47, .43, .40, .37),
    Profile.PUBLIC: (.15, .10, .08, .07, .08, .12, .30, .55, .80, .95, 1.0, .95,
                     .85, .90, .95, .92, .88, .85, .82, .80, .72, .55, .35, .22),
    Profile.FLAT: (1.0,) * 24,
}
_WEEKEND = {Profile.OFFICE: 0.25, Profile.CLINICAL: 0.8, Profile.SERVER: 0.7,
            Profile.PUBLIC: 0.8, Profile.FLAT: 1.0}
# fmt: on


def to_us(moment: datetime) -> int:
    """Microseconds since the epoch of an aware datetime."""
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(us: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)


def local(us: int) -> datetime:
    return from_us(us).astimezone(TZ)


def factor(profile: Profile, us: int) -> float:
    """How busy hosts of ``profile`` are at the instant ``us``, relative to a weekday peak."""
    when = local(us)
    scale = _WEEKEND[profile] if when.weekday() >= 5 else 1.0
    return _HOURLY[profile][when.hour] * scale


def local_days(start: int, end: int) -> list[datetime]:
    """Local midnights of every local day that overlaps ``[start, end)``."""
    day = local(start).replace(hour=0, minute=0, second=0, microsecond=0)
    out = []
    while to_us(day) < end:
        out.append(day)
        day = (day + timedelta(days=1, hours=3)).replace(hour=0, tzinfo=TZ)
    return out


def at(day: datetime, hour: float) -> int:
    """µs of local ``hour`` (fractional, may exceed 24) on the local day starting ``day``."""
    whole = int(hour)
    minutes = (hour - whole) * 60
    moment = datetime(day.year, day.month, day.day, tzinfo=TZ) + timedelta(
        hours=whole, minutes=minutes
    )
    return to_us(moment.astimezone(UTC))


def is_workday(day: datetime) -> bool:
    return day.weekday() < 5

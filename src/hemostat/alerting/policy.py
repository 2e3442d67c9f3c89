"""When an incident is worth an alert: new to a sink, or materially changed since that sink
last heard of it, without an alert storm.

A sink hears of an incident once it reaches ``min_severity``. It hears again (an update) when
the severity rose, at once; or, at most once per ``update_minutes``, when hosts, destinations
or detectors were added or ``bytes_out`` grew by ``update_factor``. Changes held back by the
interval are not lost: they are measured against what the sink last received, so they go out
with the next update.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from hemostat.alerting.alert import RANK, AlertKind, Change, Delta
from hemostat.errors import ConfigError
from hemostat.schema import Incident, Severity


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What one sink last received about one incident, and when."""

    severity: Severity
    hosts: tuple[str, ...]
    destinations: tuple[str, ...]
    detectors: tuple[str, ...]
    bytes_out: int
    sent: datetime

    @classmethod
    def of(cls, incident: Incident, sent: datetime) -> Snapshot:
        return cls(
            incident.severity, incident.hosts, incident.destinations, incident.detectors,
            incident.bytes_out, sent,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Policy:
    min_severity: Severity = Severity.MEDIUM
    update_factor: float = 2.0
    update_minutes: float = 15.0

    @classmethod
    def parse(cls, min_severity: str, update_factor: float, update_minutes: float) -> Policy:
        """The policy of the ``[alerting]`` settings, checked."""
        try:
            severity = Severity(min_severity)
        except ValueError:
            names = ", ".join(Severity)
            raise ConfigError(
                f"alerting.min_severity {min_severity!r}: use one of {names}"
            ) from None
        if update_factor <= 1:
            raise ConfigError(f"alerting.update_factor {update_factor}: use a factor above 1")
        if update_minutes < 0:
            raise ConfigError(f"alerting.update_minutes {update_minutes}: use 0 or more")
        return cls(severity, float(update_factor), float(update_minutes))

    def decide(
        self, incident: Incident, last: Snapshot | None, now: datetime
    ) -> tuple[AlertKind, tuple[Delta, ...]] | None:
        """The alert one sink should get about ``incident`` now, if any."""
        if RANK[incident.severity] < RANK[self.min_severity]:
            return None
        if last is None:
            return AlertKind.NEW, ()
        changes = self.changes(last, incident)
        if not changes:
            return None
        rose = changes[0].what is Change.SEVERITY
        if rose or now - last.sent >= timedelta(minutes=self.update_minutes):
            return AlertKind.UPDATE, changes
        return None

    def changes(self, last: Snapshot, incident: Incident) -> tuple[Delta, ...]:
        """Material changes since ``last``, a severity rise first."""
        out: list[Delta] = []
        if RANK[incident.severity] > RANK[last.severity]:
            out.append(Delta(Change.SEVERITY, incident.severity, last.severity))
        grew = incident.bytes_out > last.bytes_out
        if grew and incident.bytes_out >= self.update_factor * last.bytes_out:
            out.append(Delta(Change.BYTES_OUT, str(incident.bytes_out), str(last.bytes_out)))
        for what, now_, before in (
            (Change.HOSTS, incident.hosts, last.hosts),
            (Change.DESTINATIONS, incident.destinations, last.destinations),
            (Change.DETECTORS, incident.detectors, last.detectors),
        ):
            known = set(before)
            added = [x for x in now_ if x not in known]
            if added:
                out.append(Delta(what, ", ".join(added)))
        return tuple(out)

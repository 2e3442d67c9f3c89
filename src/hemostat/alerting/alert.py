"""What a sink is given to send: one alert about one incident, new or updated, and the way a
sink says it could not deliver (``DeliveryError``, caught by the ``Alerter``)."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from hemostat.errors import HemostatError
from hemostat.schema import Incident, Severity


class AlertKind(enum.StrEnum):
    NEW = "new"  # first time this sink hears of the incident
    UPDATE = "update"  # the incident changed materially since this sink last heard of it


class Change(enum.StrEnum):
    """What makes an update worth sending (the English label is the value)."""

    SEVERITY = "severity"
    BYTES_OUT = "bytes out"
    HOSTS = "hosts"
    DESTINATIONS = "destinations"
    DETECTORS = "detectors"


@dataclass(frozen=True, slots=True)
class Delta:
    """One material change: ``before -> after`` (a value), or the items ``after`` added."""

    what: Change
    after: str
    before: str | None = None  # None: ``after`` lists what is new

    def __str__(self) -> str:
        if self.before is None:
            return f"new {self.what}: {self.after}"
        return f"{self.what}: {self.before} -> {self.after}"


@dataclass(frozen=True, slots=True)
class Alert:
    incident: Incident
    kind: AlertKind
    at: datetime  # when the alert is sent (the live loop's ``now``)
    first_alerted: datetime  # when hemostat first alerted about this incident
    changes: tuple[Delta, ...] = ()  # empty for a new alert
    link: str | None = None  # the incident in the console, when ``console_url`` is set

    @property
    def headline(self) -> str:
        """``CRITICAL exfiltration on 10.1.2.3 (INC-1a2b3c4d)``."""
        inc = self.incident
        where = inc.hosts[0] if inc.hosts else "?"
        return f"{inc.severity.upper()} {inc.kind} on {where} ({inc.id})"


class Sink(Protocol):
    """A destination for alerts. ``send`` delivers them in order or raises ``DeliveryError``."""

    @property
    def name(self) -> str:
        """``syslog:tcp://siem:6514``: what logs, metrics and ``Sent`` records call it."""
        ...

    def send(self, alerts: Sequence[Alert]) -> None: ...


class DeliveryError(HemostatError):
    """A sink failed after delivering the first ``delivered`` alerts of a batch."""

    def __init__(self, delivered: int, reason: str) -> None:
        self.delivered = delivered
        self.reason = reason
        super().__init__(reason)


#: order of severities, lowest first
RANK = {severity: i for i, severity in enumerate(Severity)}


def epoch_ms(ts: datetime) -> int:
    """Milliseconds since 1970 (CEF ``rt``, OCSF ``timestamp_t``)."""
    return round(ts.astimezone(UTC).timestamp() * 1000)

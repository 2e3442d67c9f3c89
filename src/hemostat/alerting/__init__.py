"""Alerts to the SOC: syslog (RFC 5424 + CEF), an OCSF webhook and e-mail, one alert per
incident and a few updates rather than a storm (docs/alerting.md).

    alerter = Alerter.from_settings(settings, home)      # reads HOME/alerts/state.json
    sent = alerter.notify(incidents, now)                # every live-loop pass

``notify`` decides per incident and per sink (``policy.py``) what to send, sends each sink's
batch (sinks in parallel, each within ``alerting.timeout``), records what got through
(``state.py``) and returns one ``Sent`` per attempt. A sink that is down never raises: its
``Sent`` says why, it is logged once per failure streak, and since nothing was recorded for it
the next call tries it again.

Modules: ``alert`` (records, the ``Sink`` protocol), ``policy``, ``state``, ``cef`` and
``syslog``, ``ocsf`` and ``webhook``, ``mail``, ``sinks`` (settings to sinks).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hemostat.alerting.alert import Alert, AlertKind, DeliveryError, Sink
from hemostat.alerting.policy import Policy
from hemostat.alerting.sinks import configured
from hemostat.alerting.state import Ledger
from hemostat.config import Settings
from hemostat.errors import ConfigError
from hemostat.schema import Incident

__all__ = ["Alert", "AlertKind", "Alerter", "Sent", "Sink"]

log = logging.getLogger(__name__)

#: where the alert state lives, under HOME
STATE = Path("alerts") / "state.json"


@dataclass(frozen=True, slots=True)
class Sent:
    """One attempt to tell one sink about one incident."""

    incident: str
    sink: str
    kind: AlertKind
    ok: bool
    error: str | None = None


class Alerter:
    """Decides, sends and remembers. Not thread-safe: one live loop calls ``notify``."""

    def __init__(
        self, sinks: Sequence[Sink], ledger: Ledger, policy: Policy | None = None,
        console_url: str = "",
    ) -> None:  # fmt: skip
        self.sinks = list(sinks)
        self.ledger = ledger
        self.policy = policy or Policy()
        self.console_url = console_url
        self.sent_total: Counter[str] = Counter()  # alerts delivered, per sink name
        self.failed_total: Counter[str] = Counter()  # alerts not delivered, per sink name
        self._failing: dict[str, str] = {}  # sink name -> error of its current failure streak
        self._save_failing = False
        self._forgot: datetime | None = None

    @classmethod
    def from_settings(cls, settings: Settings, home: Path) -> Alerter:
        """The sinks and policy of ``[alerting]``, the state under ``home``."""
        get = settings.get
        try:
            policy = Policy.parse(
                get("alerting", "min_severity"), get("alerting", "update_factor"),
                get("alerting", "update_minutes"),
            )  # fmt: skip
            sinks = configured(settings, Path(home))
        except ConfigError as exc:
            raise ConfigError(f"{settings.path or 'settings'}: {exc}") from None
        ledger = Ledger.load(Path(home) / STATE)
        return cls(sinks, ledger, policy, get("alerting", "console_url"))

    def notify(self, incidents: Sequence[Incident], now: datetime) -> list[Sent]:
        """Send what is new or materially changed; never raises for a sink that is down."""
        now = now if now.tzinfo else now.replace(tzinfo=UTC)
        current = {inc.id: inc for inc in incidents}
        batches = {s.name: self._plan(s.name, current.values(), now) for s in self.sinks}
        work = [(s, batches[s.name]) for s in self.sinks if batches[s.name]]
        sent: list[Sent] = []
        if work:
            with ThreadPoolExecutor(max_workers=len(work)) as pool:
                outcomes = list(pool.map(lambda job: _deliver(*job), work))
            for (sink, alerts), (delivered, error) in zip(work, outcomes, strict=True):
                sent += self._settle(sink.name, alerts, delivered, error, now)
        self._forget(set(current), now)
        self._save()
        return sent

    def _plan(self, sink: str, incidents: Iterable[Incident], now: datetime) -> list[Alert]:
        alerts = []
        for inc in incidents:
            decision = self.policy.decide(inc, self.ledger.last(inc.id, sink), now)
            if decision is not None:
                kind, changes = decision
                first = self.ledger.first(inc.id) or now
                alerts.append(Alert(inc, kind, now, first, changes, self._link(inc.id)))
        return alerts

    def _settle(
        self, sink: str, alerts: list[Alert], delivered: int, error: str | None, now: datetime
    ) -> list[Sent]:
        """Record what got through, count, log a failure streak once."""
        for alert in alerts[:delivered]:
            self.ledger.record(alert.incident, sink, now)
        self.sent_total[sink] += delivered
        self.failed_total[sink] += len(alerts) - delivered
        if error is not None and sink not in self._failing:
            log.warning("alert sink %s is failing: %s (retried on every pass)", sink, error)
            self._failing[sink] = error
        elif error is None and self._failing.pop(sink, None) is not None:
            log.info("alert sink %s delivers again", sink)
        return [
            Sent(a.incident.id, sink, a.kind, i < delivered, None if i < delivered else error)
            for i, a in enumerate(alerts)
        ]

    def _link(self, incident: str) -> str | None:
        if not self.console_url:
            return None
        if "{id}" in self.console_url:
            return self.console_url.replace("{id}", incident)
        return f"{self.console_url.rstrip('/')}/incidents/{incident}"

    def _forget(self, current: set[str], now: datetime) -> None:
        """Prune the state at most once an hour."""
        if self._forgot is None or now - self._forgot >= timedelta(hours=1):
            self.ledger.forget(current, now)
            self._forgot = now

    def _save(self) -> None:
        try:
            self.ledger.save()
        except OSError as exc:
            if not self._save_failing:
                log.error("cannot write %s: %s; alerts may repeat after a restart",
                          self.ledger.path, exc.strerror or exc)  # fmt: skip
            self._save_failing = True
        else:
            self._save_failing = False


def _deliver(sink: Sink, alerts: list[Alert]) -> tuple[int, str | None]:
    """How many of ``alerts`` the sink took, and why it stopped if it did."""
    try:
        sink.send(alerts)
    except DeliveryError as exc:
        return exc.delivered, exc.reason
    except Exception as exc:  # a sink's bug must not stop the live loop
        return 0, f"{sink.name}: {type(exc).__name__}: {exc}"
    return len(alerts), None

"""Automatic response (off by default): after each live detection pass, incidents that match
a rule of ``[respond] auto`` get their internal hosts isolated, once per incident.

A rule is ``kind:min_severity:action``: ``exfiltration:critical:host`` isolates the internal
hosts of every exfiltration incident that is (or becomes) critical; ``*`` matches any kind.
``host`` is the only action: a site cut or a destination block decided by a machine would
cut too much or too little. Only incidents whose activity ended less than
``auto_recent_minutes`` ago count (turning the rules on does not act on last month's), the
incidents acted on are kept in ``HOME/respond/auto.json`` (a restart does not act twice), a
host already isolated (or being isolated) is not isolated again, a management address never.
The actor in the audit log is ``auto``, the reason names the incident.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from hemostat import durable
from hemostat.config import Settings
from hemostat.contain.plan import Kind, parse_ttl, plan_host
from hemostat.contain.site import Site, within
from hemostat.errors import ConfigError, HemostatError
from hemostat.schema import Incident, Severity
from hemostat.schema import Kind as IncidentKind
from hemostat.server import Refused

if TYPE_CHECKING:
    from hemostat.server.respond import Responder

log = logging.getLogger(__name__)
ACTOR = "auto"
ACTIONS = ("host",)
_RANK = {s: i for i, s in enumerate(Severity)}


@dataclass(frozen=True, slots=True)
class Rule:
    kind: str  # an incident kind, or "*"
    severity: Severity  # at least this
    action: str  # "host"

    @classmethod
    def parse(cls, text: str) -> Rule:
        parts = [p.strip().lower() for p in str(text).split(":")]
        kinds = ", ".join(IncidentKind)
        if len(parts) != 3:
            raise ConfigError(f"respond.auto {text!r}: expected kind:min_severity:action, "
                              "e.g. exfiltration:critical:host")  # fmt: skip
        kind, severity, action = parts
        if kind != "*" and kind not in set(IncidentKind):
            raise ConfigError(f"respond.auto {text!r}: kind must be * or one of {kinds}")
        if severity not in set(Severity):
            raise ConfigError(f"respond.auto {text!r}: severity must be one of "
                              f"{', '.join(Severity)}")  # fmt: skip
        if action not in ACTIONS:
            raise ConfigError(f"respond.auto {text!r}: the only automatic action is host "
                              "(isolate the incident's internal hosts)")  # fmt: skip
        return cls(kind, Severity(severity), action)

    def matches(self, incident: Incident) -> bool:
        kind_ok = self.kind == "*" or str(incident.kind) == self.kind
        return kind_ok and _RANK[incident.severity] >= _RANK[self.severity]


class AutoResponse:
    def __init__(self, responder: Responder, settings: Settings, home: Path) -> None:
        self.responder = responder
        self.rules = tuple(Rule.parse(r) for r in settings.get("respond", "auto"))
        ttl = str(settings.get("respond", "auto_ttl"))
        try:
            self.ttl = parse_ttl(ttl) if ttl else None
        except HemostatError as exc:
            raise ConfigError(f"respond.auto_ttl: {exc}") from None
        self.recent = timedelta(minutes=int(settings.get("respond", "auto_recent_minutes")))
        self.path = Path(home) / "respond" / "auto.json"
        self.handled: set[str] = self._load()

    @property
    def enabled(self) -> bool:
        return bool(self.rules)

    def respond(self, incidents: Sequence[Incident], now: datetime) -> list[str]:
        """Isolate the hosts of the incidents that newly match a rule; the action ids."""
        if not self.rules:
            return []
        due = [i for i in incidents if i.id not in self.handled and i.end >= now - self.recent
               and any(r.matches(i) for r in self.rules)]  # fmt: skip
        if not due:
            return []
        self.handled.update(i.id for i in due)
        self._save()
        site = Site.from_inventory(self.responder.inventory())
        busy = self._isolated()
        done: list[str] = []
        for incident in due:
            for host in self._hosts(incident.hosts, site, busy):
                action = self._isolate(site, host, incident)
                if action:
                    done.append(action)
                    busy.add(host)
        return done

    def _hosts(self, hosts: Iterable[str], site: Site, busy: set[str]) -> list[str]:
        out = []
        for host in dict.fromkeys(hosts):
            if not site.is_internal(host) or within(host, site.management):
                continue
            if host in busy:
                log.info("automatic response: %s is already isolated", host)
                continue
            out.append(host)
        return out

    def _isolate(self, site: Site, host: str, incident: Incident) -> str | None:
        reason = (
            f"automatic response to incident {incident.id} ({incident.kind}, "
            f"{incident.severity}, score {incident.score:.0f}): {incident.summary}"
        )[:500]
        try:
            plan = plan_host(site, host, reason=reason, actor=ACTOR, ttl=self.ttl)
            answer = self.responder.apply(plan, ACTOR)
        except Refused as exc:
            log.warning("automatic response to %s: %s not isolated: %s", incident.id, host,
                        exc.message)  # fmt: skip
            return None
        except HemostatError as exc:
            log.error("automatic response to %s: %s not isolated: %s", incident.id, host, exc)
            return None
        log.warning("automatic response to incident %s: isolating %s (%s)", incident.id, host,
                    answer["action"])  # fmt: skip
        return str(answer["action"])

    def _isolated(self) -> set[str]:
        from hemostat.server.respond import State

        live = (State.PENDING, State.ACTIVE, State.RELEASE_FAILED)
        now = datetime.now().astimezone()
        return {a.plan.target for a in self.responder.actions()
                if a.plan.kind is Kind.HOST and a.state(now) in live}  # fmt: skip

    def _load(self) -> set[str]:
        try:
            return {str(i) for i in json.loads(self.path.read_text(encoding="utf-8"))}
        except FileNotFoundError:
            return set()
        except (OSError, ValueError, TypeError) as exc:
            raise ConfigError(f"{self.path}: unreadable ({exc}); remove it (incidents already "
                              "answered may then be answered again)") from exc  # fmt: skip

    def _save(self) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        durable.replace(self.path, json.dumps(sorted(self.handled)).encode(), 0o644)

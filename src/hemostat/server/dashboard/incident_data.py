"""What the incident page reads about one incident: the incident itself, its findings, who
and what it names (internal hosts, outside destinations, accounts) and the moment it was
contained. Every query runs on the request's own read cursor (``views.reader``).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from hemostat.detect.runner import load
from hemostat.incidents import Listed, listing
from hemostat.inventory import Inventory
from hemostat.schema import Finding, Incident
from hemostat.scope import egress
from hemostat.scope.reads import accounts
from hemostat.store import Store

#: the first successful apply of a containment step on the incident's hosts, destinations
#: or the whole site, from the incident's start (the audit log mirrored into ``actions``)
_CONTAINED_SQL = """
SELECT min(ts) FROM actions
WHERE step = 'apply' AND (result = 'ok' OR result LIKE 'done%')
  AND (list_contains(?::VARCHAR[], target) OR kind = 'site') AND ts >= ?
"""
_PEERS_SQL = """
SELECT DISTINCT dst_ip FROM flows
WHERE list_contains(?::VARCHAR[], src_ip) AND ts < ? AND coalesce(end_ts, ts) >= ?
"""


@dataclass(frozen=True, slots=True)
class Subject:
    """Whom and what an incident names, resolved for queries on the store."""

    incident: Incident
    status: str
    updated_at: datetime
    findings: tuple[Finding, ...]
    hosts: tuple[str, ...]  # internal hosts (they can be isolated)
    destinations: tuple[str, ...]  # outside addresses, ranges and domains (they can be blocked)
    peers: tuple[str, ...]  # its hosts, and the addresses its destinations stand for
    outside: tuple[str, ...]  # outside addresses it and its findings name (the egress)
    domains: tuple[str, ...]  # outside destinations that are DNS names (a tunnel)
    accounts: tuple[str, ...]  # accounts its findings name
    names: dict[str, str]  # ip -> host name (inventory)

    @property
    def window(self) -> tuple[datetime, datetime]:
        return self.incident.start, self.incident.end


def find(store: Store, ident: str) -> Listed | None:
    """The stored incident ``ident``, or None."""
    return next((x for x in listing(store) if x.incident.id == ident), None)


def subject(store: Store, site: Inventory, listed: Listed) -> Subject:
    incident = listed.incident
    found = tuple(findings(store, incident))
    hosts, blockable = targets(site, incident)
    named = egress.destinations(incident, found, site.internal)
    domains = tuple(d for d in named if egress.is_domain(d))
    outside = _resolve(store, [d for d in named if d not in domains], hosts, incident)
    addresses = [d for d in incident.destinations if not egress.is_domain(d)]
    peers = tuple(dict.fromkeys([*_resolve(store, addresses, hosts, incident), *hosts]))
    return Subject(
        incident=incident, status=listed.status, updated_at=listed.updated_at, findings=found,
        hosts=hosts, destinations=blockable, peers=peers, outside=tuple(outside),
        domains=domains, accounts=tuple(sorted(accounts(found))),
        names={h.ip: h.name for h in site.hosts},
    )  # fmt: skip


def targets(site: Inventory, incident: Incident) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The incident's internal hosts (one can isolate them) and its outside destinations
    (one can block them)."""
    hosts = tuple(h for h in incident.hosts if _internal(site, h))
    return hosts, tuple(d for d in incident.destinations if not _internal(site, d))


def findings(store: Store, incident: Incident) -> list[Finding]:
    return load(store, incident.findings)


def contained_at(store: Store, incident: Incident) -> datetime | None:
    """When containment first took effect for this incident (None: not contained)."""
    targets = [*incident.hosts, *incident.destinations]
    rows = store.con.execute(_CONTAINED_SQL, [targets, incident.start]).fetchall()
    return rows[0][0].astimezone(UTC) if rows and rows[0][0] else None


def _resolve(
    store: Store, named: list[str], hosts: tuple[str, ...], incident: Incident
) -> list[str]:
    """Literal addresses as they are; a range becomes the addresses of it that the hosts
    talked to during the incident."""
    literal = [d for d in named if "/" not in d]
    ranges = [ipaddress.ip_network(d, strict=False) for d in named if "/" in d]
    if not ranges or not hosts:
        return literal
    rows = store.con.execute(_PEERS_SQL, [list(hosts), incident.end, incident.start]).fetchall()
    inside = [r[0] for r in rows if r[0] and _within(r[0], ranges)]
    return list(dict.fromkeys([*literal, *sorted(inside)]))


def _within(ip: str, nets: list[Any]) -> bool:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(address.version == n.version and address in n for n in nets)


def _internal(site: Inventory, value: str) -> bool:
    """An address or range inside the site's networks (a DNS name is not)."""
    try:
        net = ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False
    return any(
        net.version == n.version and net.subnet_of(n)  # type: ignore[arg-type]
        for n in (ipaddress.ip_network(i, strict=False) for i in site.internal)
    )

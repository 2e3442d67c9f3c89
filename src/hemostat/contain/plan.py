"""Containment plans (pure): what one action keeps and what it stops.

A plan is data built from the site's networks (inventory, or the agent's configuration from the
collector) and an action: isolate a host, cut the site's Internet egress, block a destination.
``rules`` turns it into nftables text; ``Plan.stops`` answers, with the same semantics as the
rules, whether a flow (originator ``src``, responder ``dst:dport``) is stopped, for the dry-run
and for the sockets to kill.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from hemostat.contain.site import (
    Site,
    display,
    ip_of,
    loopback,
    nets,
    network,
    parse_address,
    within,
)
from hemostat.errors import ContainmentError
from hemostat.schema import utc_text

DNS_PORT = 53
_NAME = re.compile(r"^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}\.?$")
#: every warning a plan may carry: its stable code -> its English text (``{value}`` fields);
#: the dashboard words it from the code (``ui.warning.<code>``)
WARNINGS = {
    "no_resolver": "no internal DNS resolver in the inventory: the isolated host resolves no name",
    "no_continuity": "no continuity rule: incoming mail and every external service stop",
    "no_ipv6_range": "no IPv6 range among the internal networks: IPv6 forwarding is not cut",
    "name_unresolved": "{name} resolves to no address now: blocked once a refresh resolves it",
    "internal_destination": "{net} is internal: traffic with it inside the site stops too",
}


class Kind(StrEnum):
    HOST = "host"  # isolate one host (carried out by its agent)
    SITE = "site"  # cut the site's Internet egress (carried out on the gateway)
    DESTINATION = "destination"  # block one address, range or name


@dataclass(frozen=True, slots=True)
class PlanWarning:
    """One warning of a plan: its code (a key of ``WARNINGS``) and the values its text names."""

    code: str
    values: tuple[tuple[str, str], ...] = ()

    @property
    def text(self) -> str:
        """The English text (the CLI's, and the API's ``warnings``)."""
        return WARNINGS[self.code].format(**dict(self.values))

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "values": dict(self.values)}


def _warning(code: str, **values: str) -> PlanWarning:
    return PlanWarning(code, tuple(values.items()))


@dataclass(frozen=True, slots=True)
class Plan:
    id: str
    kind: Kind
    target: str  # the host's IP, "site", or the destination as given (address, range, name)
    site: Site
    created: datetime
    expires: datetime | None = None
    reason: str = ""
    actor: str = ""
    blocked: tuple[str, ...] = ()  # destination: networks (a name: its addresses when planned)
    name: str | None = None  # destination given as a DNS name
    name_ttl: int = 600  # seconds a resolved address stays blocked without a refresh
    warnings: tuple[str, ...] = field(default=(), compare=False)
    #: the same warnings with their codes (not saved: only the planner's side words them)
    coded: tuple[PlanWarning, ...] = field(default=(), compare=False)

    @property
    def tag(self) -> str:
        """The action id as an nftables identifier (chains and sets are named after it)."""
        return self.id.replace("-", "_")

    def stops(self, src: str, dst: str, dport: int | None, proto: str) -> bool:
        """Whether the connection ``src -> dst:dport`` (``src`` opened it) is stopped."""
        if self.kind is Kind.DESTINATION:
            return within(src, self.blocked) or within(dst, self.blocked)
        if self.kind is Kind.SITE:
            if self.site.is_internal(src) == self.site.is_internal(dst):
                return False  # internal <-> internal is kept; transit is not ours
            return self.site.kept(src, dst, dport, proto) is None
        if ip_of(self.target) not in (ip_of(src), ip_of(dst)):
            return False
        return self.host_keeps(src, dst, dport, proto) is None

    def host_keeps(self, client: str, server: str, port: int | None, proto: str) -> str | None:
        """What keeps a connection of an isolated host (None: it is stopped)."""
        if loopback(client) or loopback(server):
            return "loopback"
        if within(server, self.site.resolvers) and port == DNS_PORT and proto in ("tcp", "udp"):
            return "dns"
        return self.site.kept(client, server, port, proto)

    def describe(self) -> str:
        """The action in English, for the CLI, the logs and the rules' comment (the dashboard
        words it in the viewer's language: ``server.dashboard.containment.describe``)."""
        if self.kind is Kind.HOST:
            return f"isolate host {self.target}"
        if self.kind is Kind.SITE:
            return "cut the site's Internet egress"
        return f"block {self.target}"

    def expired(self, now: datetime) -> bool:
        return self.expires is not None and self.expires <= now

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": str(self.kind), "target": self.target,
                "site": self.site.as_dict(), "created": utc_text(self.created),
                "expires": utc_text(self.expires) if self.expires else None, "reason": self.reason,
                "actor": self.actor, "blocked": list(self.blocked), "name": self.name,
                "name_ttl": self.name_ttl, "warnings": list(self.warnings)}  # fmt: skip

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Plan:
        """A plan saved by :meth:`as_dict` (state file, or a command's arguments)."""
        try:
            return cls(
                id=_action_id(str(data["id"])), kind=Kind(data["kind"]),
                target=str(data["target"]), site=Site.from_mapping(data["site"]),
                created=_when(data["created"]),
                expires=_when(data["expires"]) if data.get("expires") else None,
                reason=str(data.get("reason") or ""), actor=str(data.get("actor") or ""),
                blocked=nets(data.get("blocked") or (), "blocked"),
                name=_hostname(data["name"]) if data.get("name") else None,
                name_ttl=int(data.get("name_ttl") or 600),
                warnings=tuple(data.get("warnings") or ()),
            )  # fmt: skip
        except (KeyError, TypeError, ValueError) as exc:
            raise ContainmentError(f"not a containment plan ({type(exc).__name__}: {exc})") from exc


# ---- planning -------------------------------------------------------------------------------


def new_id() -> str:
    return f"act-{secrets.token_hex(6)}"


def plan_host(site: Site, ip: str, **common: Any) -> Plan:
    """Isolate ``ip``: only loopback, management, internal DNS and continuity remain."""
    host = parse_address(ip, "host")
    if not site.management:
        raise ContainmentError(
            "the inventory has no management address: isolating a host would cut its agent "
            "from the collector; add `management: [COLLECTOR_IP]` to the inventory"
        )
    if within(host, site.management):
        raise ContainmentError(
            f"{host} is a management address (the collector): isolating it would cut "
            "every agent; block destinations instead"
        )
    warnings = [] if site.resolvers else [_warning("no_resolver")]
    return _plan(Kind.HOST, host, site, warnings=warnings, **common)


def plan_site(site: Site, **common: Any) -> Plan:
    """Cut forwarding between internal and external networks, except management and continuity."""
    warnings = []
    if not site.continuity:
        warnings.append(_warning("no_continuity"))
    if not any(network(n).version == 6 for n in site.internal):
        warnings.append(_warning("no_ipv6_range"))
    return _plan(Kind.SITE, "site", site, warnings=warnings, **common)


def plan_destination(
    site: Site, target: str, addresses: Iterable[str] | None = None, **common: Any
) -> Plan:
    """Block ``target`` (an address, a range or a name; ``addresses``: what the name resolves
    to now) to and from this node and what it forwards."""
    name = None
    try:
        blocked: tuple[str, ...] = (str(network(target)),)
    except ValueError:
        name = _hostname(target)
        blocked = nets(addresses or (), f"addresses of {name}")
    warnings = []
    if name and not blocked:
        warnings.append(_warning("name_unresolved", name=name))
    for net in blocked:
        if network(net).prefixlen == 0:
            raise ContainmentError(f"{target}: blocking every address is a site cut; use `site`")
        if any(network(net).overlaps(network(m)) for m in site.management):
            raise ContainmentError(
                f"{target} ({net}) covers a management address: it would cut the collector"
            )
        if any(network(net).overlaps(network(n)) for n in site.internal):
            warnings.append(_warning("internal_destination", net=net))
    return _plan(Kind.DESTINATION, name or display(blocked[0]), site, blocked=blocked, name=name,
                 warnings=warnings, **common)  # fmt: skip


def _plan(
    kind: Kind, target: str, site: Site, *, warnings: list[PlanWarning], reason: str = "",
    actor: str = "", ttl: timedelta | None = None, now: datetime | None = None,
    action_id: str | None = None, **extra: Any,
) -> Plan:  # fmt: skip
    created = (now or datetime.now(UTC)).astimezone(UTC)
    if ttl is not None and ttl <= timedelta(0):
        raise ContainmentError(f"--ttl {ttl}: a time to live must be positive")
    plan = Plan(_action_id(action_id or new_id()), kind, target, site, created,
                expires=created + ttl if ttl else None, reason=reason, actor=actor,
                warnings=tuple(w.text for w in warnings), coded=tuple(warnings))  # fmt: skip
    return replace(plan, **extra) if extra else plan


def parse_ttl(text: str) -> timedelta:
    """``90s``, ``30m``, ``12h``, ``2d`` -> a duration."""
    match = re.fullmatch(r"\s*(\d+)\s*([smhd])\s*", text)
    if not match or int(match[1]) == 0:
        raise ContainmentError(f"bad time to live {text!r}: use e.g. 90s, 30m, 12h or 2d")
    unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[match[2]]
    return timedelta(**{unit: int(match[1])})


def _hostname(text: str) -> str:
    name = text.strip().lower().rstrip(".")
    if not _NAME.match(name):
        raise ContainmentError(f"{text!r} is neither an IP address, a range nor a DNS name")
    return name


def _action_id(text: str) -> str:
    if not re.fullmatch(r"act-[0-9a-z]{4,32}", text):
        raise ContainmentError(f"bad action id {text!r}: expected act- and 4-32 letters or digits")
    return text


def _when(text: str) -> datetime:
    return datetime.fromisoformat(str(text).replace("Z", "+00:00")).astimezone(UTC)

"""The site's networks as containment needs them: what is internal, the management
(collector) addresses never cut, the internal DNS resolvers an isolated host keeps, and the
continuity rules that keep working during a cut; plus the address arithmetic (pure)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from hemostat.errors import ContainmentError

if TYPE_CHECKING:
    from hemostat.inventory import Inventory

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
DEFAULT_INTERNAL = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
#: inventory host roles whose address is an internal DNS resolver
RESOLVER_ROLES = frozenset({"dns", "resolver"})


class Direction(StrEnum):
    """Who opens the connections a continuity rule keeps, relative to the site."""

    OUTBOUND = "outbound"  # from an internal client
    INBOUND = "inbound"  # from an external client
    BOTH = "both"


@dataclass(frozen=True, slots=True)
class Allow:
    """One continuity rule: connections to ``dst`` on ``ports`` (any when empty) are kept."""

    name: str
    dst: str
    ports: tuple[int, ...] = ()
    direction: Direction = Direction.OUTBOUND

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "dst": self.dst, "ports": list(self.ports),
                "direction": str(self.direction)}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Site:
    """The networks a plan needs: what is internal, never cut, resolving, to keep working."""

    internal: tuple[str, ...] = DEFAULT_INTERNAL
    management: tuple[str, ...] = ()
    resolvers: tuple[str, ...] = ()
    continuity: tuple[Allow, ...] = ()

    @classmethod
    def from_inventory(cls, inv: Inventory) -> Site:
        resolvers = [h.ip for h in inv.hosts if (h.role or "").lower() in RESOLVER_ROLES]
        return cls.from_mapping({
            "internal": inv.internal, "management": inv.management,
            "resolvers": [*resolvers, *inv.resolvers],
            "continuity": [c.model_dump() for c in inv.continuity],
        })  # fmt: skip

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> Site:
        """From plain data: the agent's configuration (contract §4) or a saved plan."""
        return cls(
            internal=nets(data.get("internal") or DEFAULT_INTERNAL, "internal"),
            management=nets(data.get("management") or (), "management"),
            resolvers=nets(data.get("resolvers") or (), "resolvers"),
            continuity=tuple(allow(c) for c in data.get("continuity") or ()),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "internal": list(self.internal),
            "management": list(self.management),
            "resolvers": list(self.resolvers),
            "continuity": [a.as_dict() for a in self.continuity],
        }

    def is_internal(self, ip: str) -> bool:
        return within(ip, self.internal)

    def kept(self, client: str, server: str, port: int | None, proto: str) -> str | None:
        """The rule that keeps a connection ``client -> server:port`` (None: not kept).
        Management and continuity only; loopback and DNS belong to host isolation."""
        if within(client, self.management) or within(server, self.management):
            return "management"
        for a in self.continuity:
            if not within(server, (a.dst,)):
                continue
            if a.ports and (port not in a.ports or proto not in ("tcp", "udp")):
                continue
            inside = self.is_internal(client)
            if a.direction is Direction.BOTH or inside == (a.direction is Direction.OUTBOUND):
                return f"continuity {a.name}"
        return None


# ---- addresses --------------------------------------------------------------------------


@lru_cache(maxsize=4096)
def network(text: str) -> Network:
    return ipaddress.ip_network(text.strip(), strict=False)


@lru_cache(maxsize=65536)
def ip_of(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped or address


def display(net: str) -> str:
    """A network as people write it: a single address without its /32 or /128."""
    parsed = network(net)
    return str(parsed.network_address) if parsed.prefixlen == parsed.max_prefixlen else str(parsed)


def within(ip: str, nets: Iterable[str]) -> bool:
    address = ip_of(ip)
    return address is not None and any(address in network(n) for n in nets)


def loopback(ip: str) -> bool:
    address = ip_of(ip)
    return address is not None and address.is_loopback


def parse_address(text: str, what: str) -> str:
    address = ip_of(text.strip())
    if address is None:
        raise ContainmentError(f"{what} {text!r}: not an IP address")
    return str(address)


def nets(values: Iterable[str], what: str) -> tuple[str, ...]:
    out = []
    for value in values:
        try:
            out.append(str(network(str(value))))
        except ValueError:
            raise ContainmentError(f"{what}: {value!r} is not an address or range") from None
    return tuple(out)


def allow(data: Mapping[str, Any]) -> Allow:
    name = str(data.get("name") or "unnamed")
    try:
        dst = str(network(str(data["dst"])))
        ports = tuple(sorted({int(p) for p in data.get("ports") or ()}))
        direction = Direction(data.get("direction") or "outbound")
    except (KeyError, ValueError) as exc:
        raise ContainmentError(
            f"continuity rule {name!r}: dst must be an address or range, ports integers, "
            f"direction inbound|outbound|both ({exc})"
        ) from None
    if any(not 0 < p < 65536 for p in ports):
        raise ContainmentError(f"continuity rule {name!r}: ports must be 1-65535")
    return Allow(name, dst, ports, direction)

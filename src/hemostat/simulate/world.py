"""The outside world the hospital talks to: web sites, Internet clients, cloud and update
services, the off-site backup range, the partner hospital, partner labs, booking SaaS,
DNS forwarders, and the suppliers who reach in through the VPN.

Fixed ranges are documentation-like or illustrative; the rest are public addresses drawn
from the seed (never private, never reserved, never two alike).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from hemostat.simulate.addresses import Addresses

I32 = npt.NDArray[np.int32]
F64 = npt.NDArray[np.float64]

CLOUD_RANGE = "20.190.128.0/18"  # the big cloud provider (office sync, and slow_drip)
UPDATE_RANGE = "13.107.4.0/24"  # OS and antivirus updates
BACKUP_RANGE = "198.51.100.0/28"  # off-site backup (also what mimic_backup hides in)
PARTNER_RANGE = "192.0.2.0/26"  # partner hospital (PACS exchange)
LAB_PARTNER = "192.0.2.80"  # reference laboratory (HL7 results, polled)
FORWARDERS = ("80.67.169.12", "80.67.169.40")  # upstream DNS resolvers


@dataclass(frozen=True, slots=True)
class Provider:
    """A supplier with remote access: where it comes from, as whom, to what, and when."""

    name: str
    external: str  # the supplier's own public range (VPN clients)
    pool: str  # the VPN address pool its sessions come from inside
    accounts: tuple[str, ...]
    hosts: tuple[str, ...]  # internal ranges it may reach
    ports: tuple[int, ...]
    hours: tuple[int, int]  # local office hours it may work in, [start, end)

    @property
    def sources(self) -> list[str]:
        return [self.external, self.pool]

    @property
    def hours_text(self) -> str:
        return f"{self.hours[0]:02d}:00-{self.hours[1]:02d}:00"


PROVIDERS = (
    Provider(
        "biomed-vendor",
        "203.0.113.0/26",
        "10.99.0.0/27",
        ("vx-support", "vx-maint"),
        ("10.1.3.0/24", "10.30.0.0/16"),
        (3389, 22, 443),
        (8, 19),
    ),
    Provider(
        "it-outsourcer",
        "203.0.113.64/26",
        "10.99.0.32/27",
        ("ext-infog",),
        ("10.1.16.0/20",),
        (3389, 22),
        (7, 20),
    ),
)


@dataclass(frozen=True, slots=True)
class Population:
    """Addresses with cumulative weights, to draw many at once."""

    index: I32
    cum: F64

    def draw(self, rng: np.random.Generator, n: int) -> I32:
        pick = np.searchsorted(self.cum, rng.random(n) * self.cum[-1], side="right")
        out: I32 = self.index[np.minimum(pick, len(self.index) - 1)]
        return out


def zipf(index: I32, s: float = 1.1) -> Population:
    weights = 1.0 / np.arange(1, len(index) + 1) ** s
    return Population(index, np.cumsum(weights))


def uniform(index: I32, weights: F64 | None = None) -> Population:
    w = np.ones(len(index)) if weights is None else weights
    return Population(index, np.cumsum(w))


@dataclass(frozen=True, slots=True)
class World:
    web: Population  # sites browsed, by popularity
    clients: Population  # Internet clients of the public web site and mail
    cloud: I32  # office sync endpoints of the big cloud provider
    updates: I32
    backup: I32  # off-site backup endpoints
    partner: I32
    lab_partner: int
    booking: int  # appointment booking SaaS
    forwarders: I32
    provider_ips: dict[str, I32]  # per provider: its public addresses (in ``external``)
    provider_pool: dict[str, I32]  # per provider: the VPN pool addresses its sessions get


def build(hosts: int, addresses: Addresses, rng: np.random.Generator) -> World:
    """Register the world's addresses (fixed ones first, then drawn ones, sizes growing with
    the hospital)."""
    backup = addresses.add_all(["198.51.100.2", "198.51.100.3", "198.51.100.4"])
    partner = addresses.add_all(["192.0.2.10", "192.0.2.11"])
    lab_partner = addresses.add(LAB_PARTNER)
    forwarders = addresses.add_all(list(FORWARDERS))
    providers = {
        p.name: addresses.add_all(addresses.draw_in(rng, p.external, 4)) for p in PROVIDERS
    }
    pools = {p.name: addresses.add_all(addresses.draw_in(rng, p.pool, 6)) for p in PROVIDERS}
    return World(
        web=zipf(addresses.add_all(addresses.draw_public(rng, 1500 + hosts))),
        clients=zipf(addresses.add_all(addresses.draw_public(rng, 2000 + 2 * hosts)), 0.8),
        cloud=addresses.add_all(addresses.draw_in(rng, CLOUD_RANGE, 16)),
        updates=addresses.add_all(addresses.draw_in(rng, UPDATE_RANGE, 8)),
        backup=backup,
        partner=partner,
        lab_partner=lab_partner,
        booking=addresses.add(addresses.draw_public(rng, 1)[0]),
        forwarders=forwarders,
        provider_ips=providers,
        provider_pool=pools,
    )

"""The hospital: its hosts by role, their names and addresses.

One site, laid out like a French university hospital: core services in ``10.1.0.0/24``,
databases in ``10.1.2.0/24``, imaging and lab interfaces (the biomedical vendor's reach) in
``10.1.3.0/24``, application servers from ``10.1.4.0``, file servers in ``10.1.8.0/24``, the
backup server at ``10.1.9.5``, other servers in ``10.1.16.0/20``, the DMZ in ``172.16.1.0/24``,
workstations from ``10.20.0.0`` and biomedical devices from ``10.30.0.0``. Server counts grow
with the size (about one server for seven workstations, as in DESIGN §1).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from hemostat.simulate.addresses import Addresses

I32 = npt.NDArray[np.int32]

#: the smallest hospital that still has every role and some workstations
MIN_HOSTS = 40
SITE = "CHU Simulé"
TIMEZONE = "Europe/Paris"
DOMAIN = "chu.local"


class Role(enum.StrEnum):
    GATEWAY = "gateway"
    MANAGEMENT = "management"
    DC = "dc"
    DNS = "dns"
    MAIL = "mail"
    MESSAGING = "messaging"
    MONITORING = "monitoring"
    JUMP = "jump"
    DATABASE = "database"
    PACS = "pacs"
    LAB = "lab"
    APP = "app"
    FILESERVER = "fileserver"
    BACKUP = "backup"
    WEB = "web"
    VPN = "vpn"
    SERVER = "server"
    WORKSTATION = "workstation"
    BIOMED = "biomed"


@dataclass(frozen=True, slots=True)
class Group:
    """Hosts of one role: names ``{prefix}-{n}`` from ``first`` upwards in a /16."""

    role: Role
    prefix: str
    count: int
    first: str  # address of the first host
    digits: int = 2


@dataclass
class Hospital:
    """Every host of the site; ``by_role`` gives address-table indices per role."""

    names: list[str] = field(default_factory=list)
    ips: list[str] = field(default_factory=list)
    roles: list[Role] = field(default_factory=list)
    by_role: dict[Role, I32] = field(default_factory=dict)
    by_name: dict[str, int] = field(default_factory=dict)  # name -> address index

    @property
    def size(self) -> int:
        return len(self.names)

    def ip(self, name: str) -> str:
        return self.ips[self.names.index(name)]

    def hosts(self, *roles: Role) -> I32:
        """Address indices of every host with one of ``roles``."""
        return np.concatenate([self.by_role.get(r, np.zeros(0, np.int32)) for r in roles])

    def servers(self) -> I32:
        return self.hosts(*(r for r in Role if r not in (Role.WORKSTATION, Role.BIOMED)))


def groups(hosts: int) -> list[Group]:
    """The hosts of a hospital of ``hosts`` hosts, by role."""
    if hosts < MIN_HOSTS:
        raise ValueError(f"a simulated hospital needs at least {MIN_HOSTS} hosts, got {hosts}")
    fixed = [
        Group(Role.GATEWAY, "gw", 1, "10.1.0.1"),
        Group(Role.MANAGEMENT, "hemostat", 1, "10.1.0.5"),
        Group(Role.DC, "dc", 2 if hosts >= 100 else 1, "10.1.0.10"),
        Group(Role.MAIL, "mail", 1, "10.1.0.25"),
        Group(Role.MESSAGING, "msg", 1, "10.1.0.40"),
        Group(Role.DNS, "dns", 2, "10.1.0.53"),
        Group(Role.MONITORING, "mon", 1, "10.1.0.60"),
        Group(Role.JUMP, "jump", 1, "10.1.0.70"),
        Group(Role.DATABASE, "dpi-db", 1, "10.1.2.10"),
        Group(Role.DATABASE, "lab-db", 1, "10.1.2.20"),
        Group(Role.DATABASE, "edsr-db", 1, "10.1.2.30"),
        Group(Role.PACS, "pacs", max(1, hosts // 2000), "10.1.3.10"),
        Group(Role.LAB, "lab-hl7", 1, "10.1.3.20"),
        Group(Role.APP, "dpi-app", max(2, hosts // 400), "10.1.4.10"),
        Group(Role.FILESERVER, "fs", max(2, hosts // 1000), "10.1.8.10"),
        Group(Role.BACKUP, "bkp", 1, "10.1.9.5"),
        Group(Role.VPN, "vpn", 1, "172.16.1.2"),
        Group(Role.WEB, "web", max(1, hosts // 2000), "172.16.1.10"),
    ]
    biomed = max(2, round(hosts * 0.04))
    other = max(0, round(hosts / 8) - sum(g.count for g in fixed))
    workstations = hosts - biomed - other - sum(g.count for g in fixed)
    return [
        *fixed,
        Group(Role.SERVER, "srv", other, "10.1.16.10", 4),
        Group(Role.WORKSTATION, "ws", workstations, "10.20.0.10", 5),
        Group(Role.BIOMED, "bio", biomed, "10.30.0.10", 4),
    ]


def build(hosts: int, addresses: Addresses) -> Hospital:
    """Register every host of the hospital in ``addresses``."""
    hospital = Hospital()
    for group in groups(hosts):
        names = [f"{group.prefix}-{i + 1:0{group.digits}d}" for i in range(group.count)]
        ips = _sequence(group.first, group.count)
        index = addresses.add_all(ips)
        hospital.names += names
        hospital.ips += ips
        hospital.roles += [group.role] * group.count
        hospital.by_name.update(zip(names, (int(i) for i in index), strict=True))
        previous = hospital.by_role.get(group.role, np.zeros(0, np.int32))
        hospital.by_role[group.role] = np.concatenate([previous, index])
    return hospital


def _sequence(first: str, count: int) -> list[str]:
    """``count`` addresses from ``first``, skipping .0 and .255 of every /24."""
    a, b, c, d = (int(x) for x in first.split("."))
    start = c * 254 + d - 1
    out = []
    for i in range(start, start + count):
        third, fourth = divmod(i, 254)
        out.append(f"{a}.{b}.{third}.{fourth + 1}")
    return out

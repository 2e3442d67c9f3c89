"""Planned traffic: the context scenarios and look-alikes draw from, the plan they return,
and the building blocks of their rows (a bulk transfer, a series of small posts, a remote
session through the VPN, a start time that fits the span).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from hemostat.schema import Action
from hemostat.simulate import access, columns, flows
from hemostat.simulate.access import Events
from hemostat.simulate.addresses import Addresses
from hemostat.simulate.datastores import Datastore
from hemostat.simulate.dns import Names, Queries
from hemostat.simulate.flows import SECOND, SERVICE, Flows, Uids
from hemostat.simulate.hospital import Hospital, Role
from hemostat.simulate.rhythm import HOUR, at, local_days
from hemostat.simulate.truth import Episode
from hemostat.simulate.world import World

I64 = npt.NDArray[np.int64]


@dataclass
class Context:
    """Everything a scenario may draw from; ``rng`` is its own stream."""

    hospital: Hospital
    addresses: Addresses
    stores: dict[str, Datastore]
    names: Names
    world: World
    start: int  # µs, beginning of the simulated span
    end: int  # µs, end of the span (exclusive)
    rng: np.random.Generator
    uids: Uids

    def ip(self, index: int) -> str:
        return self.addresses.ips[index]

    def host(self, name: str) -> int:
        return self.hospital.by_name[name]


@dataclass
class Plan:
    """Rows and episodes one scenario or look-alike adds to the simulation."""

    flows: list[Flows] = field(default_factory=list)
    queries: list[Queries] = field(default_factory=list)
    events: list[Events] = field(default_factory=list)
    episodes: list[Episode] = field(default_factory=list)

    def extend(self, other: Plan) -> None:
        self.flows += other.flows
        self.queries += other.queries
        self.events += other.events
        self.episodes += other.episodes


def transfer(
    ctx: Context,
    src: int,
    dst: int,
    dport: int,
    service: str,
    start: int,
    size: int,
    rate: float,
    reply: float = 0.002,
    streams: int = 1,
    download: bool = False,
) -> Flows:
    """A bulk upload of ``size`` bytes from ``src`` (``download``: to ``src``) at ``rate``
    bytes/s over ``streams`` parallel connections, cut into active-timeout slices."""
    share = np.full(streams, size // streams, np.int64)
    share[0] += size - int(share.sum())
    small = np.maximum(1, share * reply).astype(np.int64)
    dur = (share / (rate / streams) * SECOND).astype(np.int64) + SECOND
    batch = flows.make(
        streams,
        ts=start + np.arange(streams) * 2 * SECOND,
        dur=dur,
        src=src,
        sport=ctx.rng.integers(49152, 65536, streams),
        dst=dst,
        dport=dport,
        proto=flows.TCP,
        service=SERVICE[service],
        ob=small if download else share,
        rb=share if download else small,
        uid=ctx.uids.take(streams),
    )
    return flows.sliced(batch)


def posts(
    ctx: Context,
    src: int,
    dsts: npt.NDArray[np.int32],
    dport: int,
    service: str,
    ts: I64,
    sizes: I64,
    reply: I64 | int,
    seconds: float = 1.5,
) -> Flows:
    """Short connections, one per entry of ``ts`` (destinations cycling through ``dsts``)."""
    n = len(ts)
    dur = (ctx.rng.lognormal(np.log(seconds), 0.5, n) * SECOND).astype(np.int64)
    return flows.make(
        n,
        ts=ts,
        dur=np.minimum(dur, 299 * SECOND),
        src=src,
        sport=ctx.rng.integers(49152, 65536, n),
        dst=dsts[np.arange(n) % len(dsts)],
        dport=dport,
        proto=flows.TCP,
        service=SERVICE[service],
        ob=sizes,
        rb=reply,
        uid=ctx.uids.take(n),
    )


def split(rng: np.random.Generator, total: int, n: int, spread: float = 0.5) -> I64:
    """``n`` positive integers of random sizes (lognormal ``spread``) adding up to ``total``."""
    weights = rng.lognormal(0, spread, n)
    parts: I64 = np.floor(weights / weights.sum() * (total - n)).astype(np.int64) + 1
    parts[: total - int(parts.sum())] += 1
    return parts


def when(ctx: Context, hours: tuple[float, float], length: int, workday: bool | None = None) -> int:
    """A start (µs) at a random local time within ``hours`` on a random day of the span,
    such that ``length`` µs still fit before its end when possible; ``workday`` restricts
    the day (True: Monday-Friday, False: any day, None: any day)."""
    days = local_days(ctx.start, ctx.end)
    if workday:
        days = [d for d in days if d.weekday() < 5] or days
    order = ctx.rng.permutation(len(days))
    for i in order:
        lo = max(at(days[i], hours[0]), ctx.start)
        hi = min(at(days[i], hours[1]), ctx.end - length)
        if hi > lo:
            return int(ctx.rng.integers(lo, hi))
    return max(ctx.start, min(ctx.end - length, ctx.start + HOUR))


def fits(ctx: Context, start: int, length: int) -> int:
    """``length`` shortened so that it ends before the span does."""
    return max(SECOND, min(length, ctx.end - start - SECOND))


@dataclass(frozen=True, slots=True)
class Session:
    """A remote session through the VPN: who, from where, to what, when."""

    account: str
    external: int  # address index of the VPN client on the Internet
    pool: int  # address index the VPN gives the session inside
    target: int
    port: int
    start: int
    length: int
    upload: int = 0  # bytes pushed to the target (e.g. a firmware image)


_SESSION_SERVICE = {3389: "rdp", 22: "ssh", 443: "ssl"}


def session(ctx: Context, s: Session) -> tuple[Flows, Flows, Events]:
    """The VPN tunnel, the inner session and the two logins (VPN, target) of ``s``."""
    minutes = s.length / (60 * SECOND)
    ob = int(minutes * ctx.rng.uniform(80_000, 250_000)) + s.upload
    rb = int(minutes * ctx.rng.uniform(1_000_000, 3_000_000))
    vpn = ctx.hospital.by_role[Role.VPN][0]
    tunnel = flows.sliced(
        flows.make(
            1,
            ts=s.start,
            dur=s.length,
            src=s.external,
            sport=ctx.rng.integers(49152, 65536),
            dst=vpn,
            dport=443,
            proto=flows.TCP,
            service=SERVICE["ssl"],
            ob=int(ob * 1.06) + 4_000,
            rb=int(rb * 1.06) + 9_000,
            uid=ctx.uids.take(1),
        )
    )
    inner = flows.sliced(
        flows.make(
            1,
            ts=s.start + 20 * SECOND,
            dur=s.length - 40 * SECOND,
            src=s.pool,
            sport=ctx.rng.integers(49152, 65536),
            dst=s.target,
            dport=s.port,
            proto=flows.TCP,
            service=SERVICE[_SESSION_SERVICE.get(s.port, "-")],
            ob=ob,
            rb=rb,
            uid=ctx.uids.take(1),
        )
    )
    scheme = {3389: "rdp", 22: "ssh"}.get(s.port, "https")
    target = ctx.hospital.names[s.target]
    logins = columns.concat(
        [
            access.events(
                s.start + SECOND,
                vpn,
                s.account,
                "openvpn",
                Action.LOGIN,
                f"vpn://{ctx.hospital.names[vpn]}/",
                access.NONE,
                access.NONE,
                s.external,
            ),
            access.events(
                s.start + 25 * SECOND,
                s.target,
                s.account,
                "sshd" if s.port == 22 else "winlogon",
                Action.LOGIN,
                f"{scheme}://{target}/",
                access.NONE,
                access.NONE,
                s.pool,
            ),
        ]
    )
    return tunnel, inner, logins

"""Everyday traffic, one hour at a time: browsing, intranet, file shares, directory, mail,
database queries, monitoring, Internet clients of the public web site, DNS — plus the
everyday look-alikes (cloud office sync uploads, OS and antivirus update downloads,
CDN-style DNS names). Every activity is one line of ``ACTIVITIES``; one hour of it is a few
numpy draws, never a loop over flows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from hemostat.schema import Action
from hemostat.simulate import access, columns, dns, flows
from hemostat.simulate.access import Events
from hemostat.simulate.activities import ACTIVITIES, DNS_RATES, LOOKALIKES, UPSTREAM, Activity
from hemostat.simulate.datastores import Datastore
from hemostat.simulate.dns import Names, Queries
from hemostat.simulate.flows import SECOND, SERVICE, STATE, TCP, UDP, Flows, Uids
from hemostat.simulate.hospital import Hospital, Role
from hemostat.simulate.rhythm import HOUR, factor
from hemostat.simulate.truth import Episode
from hemostat.simulate.world import Population, World, uniform

I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]


@dataclass(frozen=True, slots=True)
class Everyday:
    """What ``hour`` needs, prepared once per simulation."""

    populations: dict[str, Population]
    names: Names
    users: pa.Array  # per address index of a host: its user account ("-" for servers)
    dpi: Datastore
    shares: dict[int, pa.Array]  # file server address index -> paths on it


def prepare(
    hospital: Hospital, world: World, names: Names, dpi: Datastore, rng: np.random.Generator
) -> Everyday:
    h = hospital.by_role
    pops = {
        "ws": uniform(h[Role.WORKSTATION], rng.lognormal(0, 0.7, len(h[Role.WORKSTATION]))),
        "servers": uniform(hospital.servers()),
        "generic": uniform(h[Role.SERVER]) if len(h[Role.SERVER]) else uniform(h[Role.APP]),
        "internet": world.web,
        "clients": world.clients,
        "cloud": uniform(world.cloud),
        "updates": uniform(world.updates),
        "forwarders": uniform(world.forwarders),
        "dpi-db": uniform(h[Role.DATABASE][:1]),
        "lab-db": uniform(h[Role.DATABASE][1:2]),
        "radiology": uniform(h[Role.WORKSTATION][::30]),
        "admins": uniform(h[Role.WORKSTATION][5::97]),
    }
    for role in Role:
        pops.setdefault(str(role), uniform(h[role]))
    return Everyday(pops, names, _users(hospital), dpi, _shares(hospital))


def _users(hospital: Hospital) -> pa.Array:
    return pa.array(
        [f"u{i:05d}" if r == Role.WORKSTATION else "-" for i, r in enumerate(hospital.roles)]
    )


def _shares(hospital: Hospital) -> dict[int, pa.Array]:
    folders = ("Services/Cardiologie", "Services/Urgences", "Qualite", "Direction", "Pharmacie")
    out = {}
    for ip_index in hospital.by_role[Role.FILESERVER]:
        name = hospital.names[int(ip_index)]
        out[int(ip_index)] = pa.array(
            [f"smb://{name}/{folders[i % len(folders)]}/doc-{i:04d}.docx" for i in range(300)]
        )
    return out


@dataclass
class Tally:
    """Running totals of one look-alike activity (for its benign episode in truth.json)."""

    rows: int = 0
    bytes_out: int = 0
    bytes_in: int = 0
    start: int | None = None
    end: int | None = None

    def episode(self, name: str) -> Episode:
        kind, hosts, destinations = LOOKALIKES[name]
        return Episode(
            id=name.replace("_", "-"),
            scenario=None,
            kind=kind,
            malicious=False,
            hosts=hosts,
            destinations=destinations,
            start=self.start or 0,
            end=self.end or 0,
            bytes_out=self.bytes_out,
            bytes_in=self.bytes_in,
            rows=self.rows,
            note="everyday look-alike, totals over the span",
        )

    def merge(self, other: Tally) -> None:
        self.rows += other.rows
        self.bytes_out += other.bytes_out
        self.bytes_in += other.bytes_in
        for bound in (other.start, other.end):
            if bound is not None:
                self.start = bound if self.start is None else min(self.start, bound)
                self.end = bound if self.end is None else max(self.end, bound)

    def add(self, batch: Flows) -> None:
        if not len(batch):
            return
        self.rows += len(batch)
        self.bytes_out += int(batch.ob.sum())
        self.bytes_in += int(batch.rb.sum())
        first, last = int(batch.ts.min()), int((batch.ts + batch.dur).max())
        self.start = first if self.start is None else min(self.start, first)
        self.end = last if self.end is None else max(self.end, last)


def slot(
    day: Everyday,
    lo: int,
    hi: int,
    rng: np.random.Generator,
    uids: Uids,
    tallies: dict[str, Tally],
) -> tuple[Flows, Queries, Events]:
    """Everyday traffic starting in ``[lo, hi)`` (µs, within one hour), in no particular order."""
    parts, events = [], []
    for activity in ACTIVITIES:
        batch = _activity(day, activity, lo, hi, rng, uids)
        parts.append(batch)
        if activity.name in LOOKALIKES:
            tallies.setdefault(activity.name, Tally()).add(batch)
        if activity.name == "dpi_queries":
            events.append(_queries(day, batch, rng))
        elif activity.name == "file_share":
            events.append(_reads(day, batch, rng))
    conn, queries, cdn = _dns(day, lo, hi, rng, uids)
    tallies.setdefault("cdn_dns", Tally()).add(cdn)
    return columns.concat([*parts, conn]), queries, columns.concat([access.empty(), *events])


def _activity(
    day: Everyday, a: Activity, lo: int, hi: int, rng: np.random.Generator, uids: Uids
) -> Flows:
    clients, servers = day.populations[a.clients], day.populations[a.servers]
    per = clients if a.per == "clients" else servers
    n = int(rng.poisson(a.rate * len(per.index) * factor(a.profile, lo) * (hi - lo) / HOUR))
    src, dst = clients.draw(rng, n), servers.draw(rng, n)
    share = np.cumsum([p[2] for p in a.ports])
    pick = np.minimum(np.searchsorted(share, rng.random(n) * share[-1]), len(a.ports) - 1)
    dport = np.array([p[0] for p in a.ports], np.int32)[pick]
    service = np.array([SERVICE[p[1]] for p in a.ports], np.uint8)[pick]
    ob = _lognormal(rng, a.ob, n)
    rb = _lognormal(rng, a.rb, n)
    dur = np.minimum(rng.lognormal(np.log(a.dur[0]), a.dur[1], n) * SECOND, 299 * SECOND)
    failed = rng.random(n) < a.fail
    state = np.where(failed, STATE["S0"] if a.proto == UDP else STATE["REJ"], STATE["SF"])
    rb = np.where(failed, 0, rb)
    if a.proto == TCP:
        ob, dur = np.where(failed, 0, ob), np.where(failed, 0, dur)
    return flows.make(
        n,
        ts=rng.integers(lo, hi, n),
        dur=dur.astype(np.int64),
        src=src,
        sport=rng.integers(49152, 65536, n),
        dst=dst,
        dport=dport,
        proto=a.proto,
        service=service,
        state=state,
        ob=ob,
        rb=rb,
        uid=uids.take(n),
    )


def _lognormal(rng: np.random.Generator, spec: tuple[float, float], n: int) -> I64:
    median, sigma = spec
    return np.maximum(1, rng.lognormal(np.log(median), sigma, n)).astype(np.int64)


def _dns(
    day: Everyday, lo: int, hi: int, rng: np.random.Generator, uids: Uids
) -> tuple[Flows, Queries, Flows]:
    """Client lookups to the resolvers, what the resolvers forward upstream, and (third) the
    conn rows of lookups of CDN-style names."""
    resolvers, forwarders = day.populations["dns"], day.populations["forwarders"]
    calls: list[tuple[I64, I32, I32, I32]] = []  # ts, src, dst, name index
    for pop, rate, profile, internal_share in DNS_RATES:
        clients = day.populations[pop]
        n = int(rng.poisson(rate * len(clients.index) * factor(profile, lo) * (hi - lo) / HOUR))
        inside = rng.random(n) < internal_share
        which = np.where(inside, day.names.internal.draw(rng, n), day.names.external.draw(rng, n))
        src = clients.draw(rng, n)
        dst = np.where(src % 10 < 7, resolvers.index[0], resolvers.index[-1]).astype(np.int32)
        calls.append((rng.integers(lo, hi, n), src, dst, which))
        up = which[~inside & (rng.random(n) < UPSTREAM)]
        ts = rng.integers(lo, hi, len(up))
        calls.append((ts, resolvers.draw(rng, len(up)), forwarders.draw(rng, len(up)), up))
    ts, src, dst, which = (np.concatenate(c) for c in zip(*calls, strict=True))
    conn, queries = dns.lookups(rng, uids, ts, src, dst, which.astype(np.int32), day.names)
    return conn, queries, columns.take(conn, which >= day.names.cdn.index[0])


def _queries(day: Everyday, batch: Flows, rng: np.random.Generator) -> Events:
    """Query events on the patient-record database for a sample of application queries."""
    rows = columns.take(batch, (rng.random(len(batch)) < 0.05) & (batch.state == STATE["SF"]))
    parts = day.dpi.parts
    pick = rng.choice(len(parts), size=len(rows), p=[0.5, 0.3, 0.15, 0.05])
    objects = pa.array([p.object for p in parts]).take(pa.array(pick))
    row_bytes = np.array([p.bytes // max(1, p.rows) for p in parts], np.int64)[pick]
    count = rng.geometric(0.15, len(rows)).astype(np.int64)
    return access.events(
        rows.ts,
        rows.dst,
        "dpi_app",
        "postgres",
        Action.QUERY,
        objects,
        count,
        count * row_bytes,
        rows.src,
    )


def _reads(day: Everyday, batch: Flows, rng: np.random.Generator) -> Events:
    """File-read events on the file servers for a sample of workstation SMB flows."""
    rows = columns.take(batch, (rng.random(len(batch)) < 0.1) & (batch.state == STATE["SF"]))
    parts = []
    for server, paths in day.shares.items():
        mine = columns.take(rows, rows.dst == server)
        pick = pa.array(rng.integers(0, len(paths), len(mine)))
        users = day.users.take(pa.array(mine.src))
        parts.append(
            access.events(
                mine.ts,
                server,
                users,
                "System",
                Action.READ,
                paths.take(pick),
                access.NONE,
                mine.rb,
                mine.src,
            )
        )
    return columns.concat([access.empty(), *parts])

"""The unit of work: one hour of output. Everyday traffic generated for the hour, merged with
the planned rows (look-alikes, scenarios) that start in it, written as that hour's Zeek logs.

A ``Site`` is built from the run's parameters alone (setup and planning are deterministic),
so the parent process and every worker of the pool compute the very same plan, and any hour
can be produced in any process: output does not depend on the number of workers.
"""

from __future__ import annotations

import multiprocessing
import zlib
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hemostat.errors import HemostatError
from hemostat.simulate import access, columns, datastores, dns, flows, hospital, normal, world
from hemostat.simulate.addresses import Addresses
from hemostat.simulate.lookalikes import LOOKALIKES
from hemostat.simulate.output import HourLogs
from hemostat.simulate.plan import Context, Plan
from hemostat.simulate.rhythm import HOUR
from hemostat.simulate.scenarios import SCENARIOS
from hemostat.simulate.writer import access_lines, text_bytes

#: an hour is generated and written in this many consecutive parts
PARTS = 6


@dataclass(frozen=True, slots=True)
class Spec:
    """The parameters of one run (all a worker needs to rebuild the site)."""

    out: Path
    hosts: int
    days: int
    scenarios: tuple[str, ...]
    seed: int
    begin: int  # µs

    @property
    def hours(self) -> int:
        return 24 * self.days

    @property
    def end(self) -> int:
        return self.begin + self.hours * HOUR


@dataclass(frozen=True, slots=True)
class Hour:
    """What writing one hour produced, sent back to the parent."""

    index: int
    files: tuple[Path, ...]
    flows: int
    dns: int
    access: bytes  # the hour's access.jsonl lines (the parent appends them in order)
    events: int
    tallies: dict[str, normal.Tally]


def rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=key)))


def _key(name: str) -> int:
    return zlib.crc32(name.encode())


def setup(spec: Spec) -> Context:
    """The site, its world and data stores, as a context for planning."""
    r = rng(spec.seed, 0)
    addresses = Addresses()
    site = hospital.build(spec.hosts, addresses)
    outside = world.build(spec.hosts, addresses, r)
    names = dns.build(site, outside, addresses.ips, r)
    stores = datastores.catalogue(spec.hosts)
    uids = flows.Uids(spec.seed, 0)
    return Context(site, addresses, stores, names, outside, spec.begin, spec.end, r, uids)


def plan(ctx: Context, seed: int, scenarios: Sequence[str]) -> Plan:
    """Look-alikes then scenarios, each with its own random stream (so adding a scenario
    leaves the others' timing alone)."""
    out = Plan()
    for lookalike in LOOKALIKES:
        ctx.rng = rng(seed, 1, _key(lookalike.__name__))
        out.extend(lookalike(ctx))
    for name in dict.fromkeys(scenarios):
        ctx.rng = rng(seed, 2, _key(name))
        out.extend(SCENARIOS[name]().plan(ctx))
    return out


class Site:
    """The planned simulation, ready to produce any hour."""

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.ctx = setup(spec)
        self.plan = plan(self.ctx, spec.seed, spec.scenarios)
        self.flows = columns.by_time(columns.concat([flows.empty(), *self.plan.flows]))
        self.queries = columns.by_time(columns.concat([dns.empty(), *self.plan.queries]))
        self.events = columns.by_time(columns.concat([access.empty(), *self.plan.events]))
        if len(self.flows) and (self.flows.ts[0] < spec.begin or self.flows.ts[-1] >= spec.end):
            raise AssertionError("a planned row starts outside the simulated span")
        c = self.ctx
        self.everyday = normal.prepare(
            c.hospital, c.world, c.names, c.stores["dpi"], rng(spec.seed, 4)
        )
        self.ips = c.addresses.arrow()
        self.internal = c.addresses.internal()

    def hour(self, h: int) -> Hour:
        """Write hour ``h`` in ``PARTS`` consecutive parts (memory stays bounded by a part)."""
        lo = self.spec.begin + h * HOUR
        tallies: dict[str, normal.Tally] = {}
        uids = flows.Uids(self.spec.seed, 1 + h)
        events = []
        with HourLogs(self.spec.out, lo, lo + HOUR, self.ips, self.internal) as logs:
            for part in range(PARTS):
                a, b = lo + part * HOUR // PARTS, lo + (part + 1) * HOUR // PARTS
                r = rng(self.spec.seed, 3, h, part)
                conn, q, ev = normal.slot(self.everyday, a, b, r, uids, tallies)
                logs.add(
                    columns.concat([conn, columns.between(self.flows, a, b)]),
                    columns.concat([q, columns.between(self.queries, a, b)]),
                )
                events += [ev, columns.between(self.events, a, b)]
        ev = columns.by_time(columns.concat(events))
        lines = text_bytes(access_lines(ev, self.ips))
        return Hour(h, logs.paths, logs.flows, logs.queries, lines, len(ev), tallies)

    def hours(self, workers: int) -> Iterator[Hour]:
        """Every hour, in order, produced by ``workers`` processes (1: this one)."""
        if workers <= 1:
            yield from (self.hour(h) for h in range(self.spec.hours))
            return
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(
            workers, context, initializer=_start, initargs=(self.spec,)
        ) as pool:
            try:
                yield from pool.map(_work, range(self.spec.hours))
            except BrokenProcessPool as exc:
                raise HemostatError(
                    "the simulator's worker processes died; if generate() is called from a "
                    "script, call it under `if __name__ == '__main__':` (or pass workers=1)"
                ) from exc


_SITE: list[Site] = []  # this worker's site, built once by the pool's initializer


def _start(spec: Spec) -> None:
    _SITE.append(Site(spec))


def _work(h: int) -> Hour:
    return _SITE[0].hour(h)

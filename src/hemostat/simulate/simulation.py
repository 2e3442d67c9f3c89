"""The simulation run: check the arguments, plan the site (look-alikes and scenarios for the
whole span), produce the hours (in parallel for large hospitals), then write the inventory
and the ground truth.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from hemostat.errors import ConfigError
from hemostat.simulate import hospital, normal
from hemostat.simulate import inventory as site_inventory
from hemostat.simulate.hourly import Site, Spec
from hemostat.simulate.output import prepare
from hemostat.simulate.rhythm import TZ, to_us
from hemostat.simulate.scenarios import SCENARIOS
from hemostat.simulate.truth import Episode, document
from hemostat.simulate.writer import iso, write_json, write_yaml

#: Monday 12 June 2023, midnight in Paris: the week of the case in DESIGN §1
DEFAULT_START = datetime(2023, 6, 12, tzinfo=TZ)
#: from this size on, hours are produced by a pool of processes (one per core, at most 4)
PARALLEL_HOSTS = 500
MAX_WORKERS = 4


@dataclass(frozen=True, slots=True)
class Summary:
    """What ``generate`` wrote."""

    out: Path
    files: tuple[Path, ...]
    flows: int  # conn.log rows
    dns: int  # dns.log rows
    access: int  # access.jsonl lines
    episodes: tuple[Episode, ...]  # malicious
    benign: tuple[Episode, ...]  # look-alikes
    seconds: float


def _check(hosts: int, days: int, scenarios: Sequence[str], start: datetime | None) -> None:
    unknown = [s for s in scenarios if s not in SCENARIOS]
    if unknown:
        raise ConfigError(f"unknown scenario {unknown[0]!r}; known: {', '.join(SCENARIOS)}")
    if hosts < hospital.MIN_HOSTS:
        raise ConfigError(f"--hosts must be at least {hospital.MIN_HOSTS}, got {hosts}")
    if days < 1:
        raise ConfigError(f"--days must be at least 1, got {days}")
    if start is not None and start.tzinfo is None:
        raise ConfigError("start must be timezone-aware (e.g. 2023-06-12T00:00:00+02:00)")


def _workers(hosts: int, workers: int | None) -> int:
    if workers is not None:
        return max(1, workers)
    if hosts < PARALLEL_HOSTS:
        return 1
    return min(MAX_WORKERS, len(os.sched_getaffinity(0)))


def generate(
    out: Path,
    hosts: int = 300,
    days: int = 1,
    scenarios: Sequence[str] = (),
    seed: int = 0,
    start: datetime | None = None,
    progress: Callable[[int, int], None] | None = None,
    *,
    workers: int | None = None,
) -> Summary:
    """Simulate ``days`` days of a hospital of ``hosts`` hosts into ``out`` (formats in
    docs/simulate.md). Deterministic for given arguments, whatever ``workers`` (processes
    producing hours; default: 1 below ``PARALLEL_HOSTS`` hosts, else one per core, at most 4).
    """
    _check(hosts, days, scenarios, start)
    clock = time.perf_counter()
    begin = to_us((start or DEFAULT_START).astimezone(UTC))
    spec = Spec(out, hosts, days, tuple(dict.fromkeys(scenarios)), seed, begin)
    site = Site(spec)
    prepare(out)
    files: list[Path] = [out / "access.jsonl"]
    flows = dns = events = 0
    tallies: dict[str, normal.Tally] = {}
    with files[0].open("wb") as lines:
        for hour in site.hours(_workers(hosts, workers)):
            lines.write(hour.access)
            files += hour.files
            flows, dns, events = flows + hour.flows, dns + hour.dns, events + hour.events
            for name, tally in hour.tallies.items():
                tallies.setdefault(name, normal.Tally()).merge(tally)
            if progress:
                progress(hour.index + 1, spec.hours)
    episodes = site.plan.episodes + [t.episode(n) for n, t in tallies.items() if t.rows]
    _finish(site, episodes)
    return Summary(
        out=out,
        files=(*files, out / "inventory.yaml", out / "truth.json"),
        flows=flows,
        dns=dns,
        access=events,
        episodes=tuple(e for e in episodes if e.malicious),
        benign=tuple(e for e in episodes if not e.malicious),
        seconds=time.perf_counter() - clock,
    )


def _finish(site: Site, episodes: list[Episode]) -> None:
    ctx, spec = site.ctx, site.spec
    inventory = site_inventory.document(ctx.hospital, ctx.world, ctx.stores, ctx.addresses)
    write_yaml(spec.out / "inventory.yaml", inventory)
    meta = {
        "site": hospital.SITE,
        "timezone": hospital.TIMEZONE,
        "seed": spec.seed,
        "hosts": ctx.hospital.size,
        "days": spec.days,
        "start": iso(spec.begin),
        "end": iso(spec.end),
        "scenarios": list(spec.scenarios),
    }
    write_json(spec.out / "truth.json", document(meta, episodes))

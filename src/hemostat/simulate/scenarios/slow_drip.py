"""A staff-data share (HR) read in full by a compromised workstation, then leaked over 12-24 h
in small HTTPS posts to several addresses of the big cloud provider the hospital already
uses, each hour's volume kept under the usual per-hour thresholds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from hemostat.schema import Action
from hemostat.simulate import access, columns, flows
from hemostat.simulate.datastores import whole
from hemostat.simulate.flows import SECOND, SERVICE
from hemostat.simulate.hospital import Role
from hemostat.simulate.plan import Context, Plan, fits, posts, split, when
from hemostat.simulate.rhythm import HOUR
from hemostat.simulate.scenarios.base import Scenario
from hemostat.simulate.world import CLOUD_RANGE


@dataclass(frozen=True)
class SlowDrip(Scenario):
    id: ClassVar[str] = "slow_drip"
    kind: ClassVar[str] = "exfiltration"
    attack: ClassVar[tuple[str, ...]] = ("T1039", "T1030", "T1567.002")
    hours: tuple[float, float] = (12, 24)  # how long the leak lasts (shortened to fit the span)
    destinations: tuple[int, int] = (3, 7)  # addresses of the cloud provider, [low, high)
    post_bytes: float = 1_500_000  # median size of one post

    def plan(self, ctx: Context) -> Plan:
        rng, store = ctx.rng, ctx.stores["rh"]
        ws = int(rng.choice(ctx.hospital.by_role[Role.WORKSTATION]))
        user = f"u{ws:05d}"
        length = int(rng.uniform(*self.hours) * HOUR)
        t0 = when(ctx, (8.5, 11), min(length, 13 * HOUR), workday=True)
        plan = Plan()
        self._read(ctx, plan, ws, user, t0)
        start = t0 + 30 * 60 * SECOND
        length = fits(ctx, start, length) - 5 * 60 * SECOND
        total = store.bytes
        n = max(20, int(total / self.post_bytes))
        ts = np.sort(start + rng.integers(0, length, n)).astype(np.int64)
        k = int(rng.integers(*self.destinations))
        dsts = ctx.addresses.add_all(ctx.addresses.draw_in(rng, CLOUD_RANGE, k))
        sizes = split(rng, total, n, spread=0.6)
        reply = rng.integers(300, 900, n)
        leak = posts(ctx, ws, dsts, 443, "ssl", ts, sizes, reply)
        plan.flows.append(leak)
        plan.episodes.append(
            self.episode(
                ctx,
                leak,
                leaks=(whole(store),),
                note=f"{n} posts over {length / HOUR:.1f} h to {k} cloud addresses",
            )
        )
        return plan

    def _read(self, ctx: Context, plan: Plan, ws: int, user: str, t0: int) -> None:
        store = ctx.stores["rh"]
        fs = ctx.host(store.host)
        n = len(store.parts)
        ts = t0 + np.arange(n, dtype=np.int64) * 40 * SECOND
        sizes = np.array([p.bytes for p in store.parts], np.int64)
        plan.flows.append(
            flows.make(
                n,
                ts=ts,
                dur=np.maximum(SECOND, sizes // 50),
                src=ws,
                sport=ctx.rng.integers(49152, 65536, n),
                dst=fs,
                dport=445,
                proto=flows.TCP,
                service=SERVICE["smb"],
                ob=2_000 + sizes // 500,
                rb=sizes,
                uid=ctx.uids.take(n),
            )
        )
        plan.events.append(
            columns.concat(
                [
                    access.events(
                        int(t), fs, user, "System", Action.READ, p.object, access.NONE, p.bytes, ws
                    )
                    for t, p in zip(ts, store.parts, strict=True)
                ]
            )
        )

"""A server calls home every N seconds ± jitter with small fixed-size HTTPS posts, from early
in the span to its end (for days when the span is days long).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from hemostat.simulate.flows import SECOND
from hemostat.simulate.hospital import Role
from hemostat.simulate.plan import Context, Plan, posts
from hemostat.simulate.scenarios.base import Scenario


@dataclass(frozen=True)
class C2Beacon(Scenario):
    id: ClassVar[str] = "c2_beacon"
    kind: ClassVar[str] = "c2"
    attack: ClassVar[tuple[str, ...]] = ("T1071.001", "T1573.002", "T1029")
    periods: tuple[int, ...] = (30, 60, 120, 300)  # seconds between calls
    jitter: tuple[float, float] = (0.05, 0.2)  # ± share of the period
    tasking: float = 0.01  # share of calls whose answer carries a task (larger)

    def plan(self, ctx: Context) -> Plan:
        rng = ctx.rng
        pool = np.concatenate([ctx.hospital.by_role[Role.SERVER], ctx.hospital.by_role[Role.APP]])
        host = int(rng.choice(pool))
        c2 = ctx.addresses.add(ctx.addresses.draw_public(rng, 1)[0])
        period = int(rng.choice(self.periods)) * SECOND
        jitter = rng.uniform(*self.jitter)
        first = ctx.start + int(rng.integers(0, max(1, (ctx.end - ctx.start) // 4)))
        n = max(2, int((ctx.end - first) / period) - 2)
        gaps = period * (1 + rng.uniform(-jitter, jitter, n))
        ts = (first + np.cumsum(gaps)).astype(np.int64)
        ts = ts[ts < ctx.end - 5 * 60 * SECOND]
        size = int(rng.integers(300, 1_500))
        reply = np.where(
            rng.random(len(ts)) < self.tasking,
            rng.integers(5_000, 50_000, len(ts)),
            int(rng.integers(150, 600)),
        )
        port = int(rng.choice([443, 8443]))
        batch = posts(
            ctx,
            host,
            np.array([c2], np.int32),
            port,
            "ssl",
            ts,
            np.full(len(ts), size, np.int64),
            reply,
            seconds=0.3,
        )
        plan = Plan(flows=[batch])
        plan.episodes.append(
            self.episode(
                ctx,
                batch,
                note=f"every {period // SECOND} s ± {jitter:.0%}, {size}-byte posts",
                extra={"period_s": period // SECOND, "jitter": round(jitter, 3)},
            )
        )
        return plan

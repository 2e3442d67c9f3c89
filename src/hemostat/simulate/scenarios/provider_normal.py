"""Supplier sessions that stay inside their envelope (sources, account, hosts, office hours),
including sessions that hug the edges of the hours and a firmware upload: benign episodes a
detector must *not* flag.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from hemostat.simulate.lookalikes import supplier_sessions
from hemostat.simulate.plan import Context, Plan
from hemostat.simulate.rhythm import is_workday, local_days
from hemostat.simulate.scenarios.base import Scenario
from hemostat.simulate.world import PROVIDERS


@dataclass(frozen=True)
class ProviderNormal(Scenario):
    id: ClassVar[str] = "provider_normal"
    kind: ClassVar[str] = "third_party_access"
    malicious: ClassVar[bool] = False
    per_day: tuple[int, int] = (2, 5)  # sessions per provider and working day, [low, high)
    upload: tuple[int, int] = (50_000_000, 300_000_000)  # firmware pushed in the last one

    def plan(self, ctx: Context) -> Plan:
        plan = Plan()
        for day in local_days(ctx.start, ctx.end):
            if not is_workday(day):
                continue
            for provider in PROVIDERS:
                count = int(ctx.rng.integers(*self.per_day))
                upload = int(ctx.rng.integers(*self.upload))
                plan.extend(
                    supplier_sessions(ctx, provider, day, count, self.id, edges=True, upload=upload)
                )
        return plan

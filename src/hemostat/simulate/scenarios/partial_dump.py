"""Only part of a store leaks: a subset of the patients (a few per cent) or one secondary
table in full, queried from an application server and uploaded, so scoping must not answer
"everything".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from hemostat.schema import Action
from hemostat.simulate import access
from hemostat.simulate.datastores import Leak
from hemostat.simulate.flows import SECOND
from hemostat.simulate.hospital import Role
from hemostat.simulate.plan import Context, Plan, transfer, when
from hemostat.simulate.scenarios.base import Scenario

MB = 1e6


@dataclass(frozen=True)
class PartialDump(Scenario):
    id: ClassVar[str] = "partial_dump"
    kind: ClassVar[str] = "exfiltration"
    attack: ClassVar[tuple[str, ...]] = ("T1213", "T1005", "T1041")
    subset: tuple[float, float] = (0.02, 0.10)  # share of the patients table
    one_table: float = 0.4  # chance to take one secondary table in full instead
    rate: tuple[float, float] = (5 * MB, 20 * MB)

    def plan(self, ctx: Context) -> Plan:
        rng, store = ctx.rng, ctx.stores["dpi"]
        if rng.random() < self.one_table:
            part, share = store.parts[int(rng.integers(1, 3))], 1.0
        else:
            part, share = store.parts[0], round(float(rng.uniform(*self.subset)), 4)
        leak = Leak(store, ((part, share),))
        app = int(rng.choice(ctx.hospital.by_role[Role.APP]))
        db = ctx.host(store.host)
        rate = rng.uniform(*self.rate)
        size = leak.bytes
        start = when(ctx, (10, 16), int(size / rate * SECOND) + 20 * 60 * SECOND, workday=True)
        pulled = transfer(ctx, app, db, 5432, "-", start, size, 80 * MB, reply=0.001, download=True)
        dst = ctx.addresses.add(ctx.addresses.draw_public(rng, 1)[0])
        t_push = start + int(size / (80 * MB) * SECOND) + int(rng.integers(2, 10)) * 60 * SECOND
        batch = transfer(ctx, app, dst, 443, "ssl", t_push, size, rate)
        query = access.events(
            start, db, "dpi_app", "postgres", Action.QUERY, part.object, leak.records, size, app
        )
        plan = Plan(flows=[pulled, batch], events=[query])
        what = "all of" if share == 1.0 else f"{share:.1%} of"
        plan.episodes.append(
            self.episode(
                ctx,
                batch,
                leaks=(leak,),
                note=f"{what} {part.object} from {ctx.ip(app)}",
            )
        )
        return plan

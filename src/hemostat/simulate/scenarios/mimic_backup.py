"""Exfiltration dressed as the backup: at night, during the backup window, a server that is
not the backup server uploads a dump of its database to the off-site backup's cloud range.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from hemostat.simulate import access
from hemostat.simulate.datastores import whole
from hemostat.simulate.flows import SECOND
from hemostat.simulate.plan import Context, Plan, transfer, when
from hemostat.simulate.scenarios.base import Scenario
from hemostat.simulate.world import BACKUP_RANGE

MB = 1e6


@dataclass(frozen=True)
class MimicBackup(Scenario):
    id: ClassVar[str] = "mimic_backup"
    kind: ClassVar[str] = "exfiltration"
    attack: ClassVar[tuple[str, ...]] = ("T1005", "T1048.002", "T1029")
    store: str = "edsr"  # the research warehouse, on a database server
    night: tuple[float, float] = (1.0, 4.0)  # local hours, inside the backup window
    rate: tuple[float, float] = (30 * MB, 80 * MB)
    compression: tuple[float, float] = (0.4, 0.7)

    def plan(self, ctx: Context) -> Plan:
        rng, store = ctx.rng, ctx.stores[self.store]
        host = ctx.host(store.host)
        size = int(store.bytes * rng.uniform(*self.compression))
        rate = rng.uniform(*self.rate)
        start = when(ctx, self.night, int(size / rate * SECOND) + 10 * 60 * SECOND)
        dst = ctx.addresses.add(ctx.addresses.draw_in(rng, BACKUP_RANGE, 1)[0])
        batch = transfer(ctx, host, dst, 443, "ssl", start, size, rate, reply=0.004, streams=2)
        dumps = access.exports(
            start - 60 * SECOND, host, "edsr_etl", "pg_dump", store.parts, access.NONE
        )
        plan = Plan(flows=[batch], events=[dumps])
        plan.episodes.append(
            self.episode(
                ctx,
                batch,
                leaks=(whole(store),),
                note=f"{size:,} bytes to the off-site backup range from {store.host}",
            )
        )
        return plan

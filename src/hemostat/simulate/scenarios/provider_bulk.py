"""The case of DESIGN §1: a supplier's VPN account used at night, RDP to the jump server, a
dump of the patient-record database staged on a file server, compressed and pushed over
HTTPS to a never-seen cloud address at tens of MB/s.

Episodes: ``third_party_access`` (VPN tunnel and RDP session), ``staging`` (the dump pulled
from the database and written to the file server), ``exfiltration`` (the upload).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from hemostat.schema import Action
from hemostat.simulate import access, columns
from hemostat.simulate.datastores import Datastore, whole
from hemostat.simulate.flows import SECOND
from hemostat.simulate.hospital import Role
from hemostat.simulate.plan import Context, Plan, Session, session, transfer, when
from hemostat.simulate.scenarios.base import Scenario
from hemostat.simulate.world import PROVIDERS

MINUTE = 60 * SECOND
MB = 1e6


@dataclass(frozen=True)
class ProviderBulk(Scenario):
    id: ClassVar[str] = "provider_bulk"
    kind: ClassVar[str] = "exfiltration"
    attack: ClassVar[tuple[str, ...]] = (
        "T1133",
        "T1078",
        "T1021.001",
        "T1005",
        "T1074.002",
        "T1560.001",
        "T1567.002",
    )
    night: tuple[float, float] = (0.5, 4.0)  # local hours the VPN login happens in
    pull_rate: tuple[float, float] = (60 * MB, 120 * MB)  # database dump, bytes/s
    stage_rate: tuple[float, float] = (80 * MB, 150 * MB)  # copy to the file server
    push_rate: tuple[float, float] = (20 * MB, 60 * MB)  # upload to the cloud
    compression: tuple[float, float] = (0.35, 0.6)  # archive size / dump size

    def plan(self, ctx: Context) -> Plan:
        rng, store = ctx.rng, ctx.stores["dpi"]
        dump = store.bytes
        packed = int(dump * rng.uniform(*self.compression))
        pull = int(dump / rng.uniform(*self.pull_rate) * SECOND)
        stage = int(dump / rng.uniform(*self.stage_rate) * SECOND)
        pack = int(dump / (80 * MB) * SECOND)
        push_rate = rng.uniform(*self.push_rate)
        push = int(packed / push_rate * SECOND)
        length = pull + stage + pack + push + 40 * MINUTE
        t0 = when(ctx, self.night, length)
        t_pull = t0 + int(rng.integers(5, 15)) * MINUTE
        t_stage = t_pull + pull + int(rng.integers(1, 5)) * MINUTE
        t_push = t_stage + stage + pack + int(rng.integers(1, 5)) * MINUTE
        t_end = t_push + push + int(rng.integers(3, 10)) * MINUTE
        jump = ctx.hospital.by_role[Role.JUMP][0]
        fs = int(rng.choice(ctx.hospital.by_role[Role.FILESERVER]))
        cloud = ctx.addresses.add(ctx.addresses.draw_public(rng, 1)[0])
        plan = Plan()
        self._access(ctx, plan, t0, t_end - t0)
        self._staging(ctx, plan, store, int(jump), fs, (t_pull, pull), (t_stage, stage))
        streams = int(rng.integers(1, 4))
        exfil = transfer(ctx, fs, cloud, 443, "ssl", t_push, packed, push_rate, streams=streams)
        plan.flows.append(exfil)
        plan.episodes.append(
            self.episode(
                ctx,
                exfil,
                leaks=(whole(store),),
                note=f"{streams} HTTPS upload(s) of a {packed:,}-byte archive",
            )
        )
        return plan

    def _access(self, ctx: Context, plan: Plan, t0: int, length: int) -> None:
        provider = PROVIDERS[0]
        external = ctx.addresses.add(ctx.addresses.draw_public(ctx.rng, 1)[0])
        pool = ctx.addresses.add(ctx.addresses.draw_in(ctx.rng, provider.pool, 1)[0])
        jump = int(ctx.hospital.by_role[Role.JUMP][0])
        s = Session(provider.accounts[0], external, pool, jump, 3389, t0, length)
        tunnel, rdp, logins = session(ctx, s)
        batch = columns.concat([tunnel, rdp])
        plan.flows.append(batch)
        plan.events.append(logins)
        plan.episodes.append(
            self.episode(
                ctx,
                batch,
                "third_party_access",
                attack=("T1133", "T1078", "T1021.001"),
                note=f"{provider.name} account {s.account} at night from an unknown address",
                extra={"provider": provider.name, "account": s.account},
            )
        )

    def _staging(
        self,
        ctx: Context,
        plan: Plan,
        store: Datastore,
        jump: int,
        fs: int,
        pull: tuple[int, int],
        stage: tuple[int, int],
    ) -> None:
        db = ctx.host(store.host)
        rate = store.bytes / (pull[1] / SECOND)
        pulled = transfer(ctx, jump, db, 5432, "-", pull[0], store.bytes, rate, download=True)
        copy = transfer(
            ctx, jump, fs, 445, "smb", stage[0], store.bytes, store.bytes / (stage[1] / SECOND)
        )
        batch = columns.concat([pulled, copy])
        plan.flows.append(batch)
        share = ctx.hospital.names[fs]
        dump = access.exports(pull[0], db, "postgres", "pg_dump", store.parts, jump)
        account = PROVIDERS[0].accounts[0]
        path = f"smb://{share}/Temp/dpi.sql"
        copied = access.events(
            stage[0], fs, account, "System", Action.COPY, path, access.NONE, store.bytes, jump
        )
        plan.events.append(columns.concat([dump, copied]))
        plan.episodes.append(
            self.episode(
                ctx,
                batch,
                "staging",
                attack=("T1005", "T1074.002"),
                note="database dump pulled to the jump server and copied to a file server",
            )
        )

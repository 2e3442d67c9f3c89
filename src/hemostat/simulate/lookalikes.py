"""Benign episodes that look like attacks, planned for the whole span: nightly internal
backups (with the database exports they start from), the off-site backup upload, PACS
exchange with the partner hospital, interfaces that poll on a schedule, and suppliers'
maintenance sessions inside their envelope. Each is a benign episode in truth.json.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from datetime import datetime

import numpy as np

from hemostat.simulate import access, columns, flows
from hemostat.simulate.flows import SECOND, SERVICE, Flows
from hemostat.simulate.hospital import Role
from hemostat.simulate.plan import Context, Plan, Session, session, transfer
from hemostat.simulate.rhythm import HOUR, at, is_workday, local_days
from hemostat.simulate.truth import measure
from hemostat.simulate.world import PROVIDERS, Provider

MINUTE = 60 * SECOND
#: internal backups start in this local window (hours), the off-site upload after them
BACKUP_WINDOW = (0.5, 3.5)
OFFSITE_START = 2.0
BACKUP_PORT = 10000
PACS_PORT = 2762  # DICOM over TLS
#: mean size of the nightly off-site upload per host of the hospital
OFFSITE_BYTES_PER_HOST = 50_000_000


def internal_backup(ctx: Context) -> Plan:
    plan = Plan()
    bkp = int(ctx.hospital.by_role[Role.BACKUP][0])
    servers = np.setdiff1d(ctx.hospital.servers(), [bkp]).astype(np.int32)
    size = ctx.rng.lognormal(np.log(1.5e9), 1.0, len(servers)).astype(np.int64)
    for store in ctx.stores.values():  # database hosts send a compressed dump of their store
        if store.host.endswith("-db-01"):
            size[servers == ctx.host(store.host)] = store.bytes // 2
    for day in local_days(ctx.start, ctx.end):
        span = int((BACKUP_WINDOW[1] - BACKUP_WINDOW[0]) * HOUR)
        ts = at(day, BACKUP_WINDOW[0]) + ctx.rng.integers(0, span, len(servers))
        dur = (size / ctx.rng.uniform(80e6, 200e6, len(servers)) * SECOND).astype(np.int64)
        keep = (ts >= ctx.start) & (ts + dur < ctx.end)
        n = int(keep.sum())
        batch = flows.sliced(
            flows.make(
                n,
                ts=ts[keep],
                dur=dur[keep],
                src=servers[keep],
                sport=ctx.rng.integers(49152, 65536, n),
                dst=bkp,
                dport=BACKUP_PORT,
                proto=flows.TCP,
                ob=size[keep],
                rb=size[keep] // 1000,
                uid=ctx.uids.take(n),
            )
        )
        if n:
            plan.flows.append(batch)
            plan.events.append(_exports(ctx, ts[keep], servers[keep]))
            plan.episodes.append(
                measure(
                    batch,
                    ctx.addresses.ips,
                    id=f"internal-backup/{day:%Y-%m-%d}",
                    scenario=None,
                    kind="backup",
                    malicious=False,
                    note="nightly backup of every server",
                )
            )
    return plan


def _exports(ctx: Context, ts: np.ndarray, src: np.ndarray) -> access.Events:
    """The database dumps the nightly backup starts from (a look-alike for scoping)."""
    parts = [access.empty()]
    for store in ctx.stores.values():
        host = ctx.host(store.host)
        if store.host.endswith("-db-01") and host in src:
            when = max(ctx.start, int(ts[src == host][0]) - 10 * MINUTE)
            process = "sqlservr" if store.prefixes[0].startswith("mssql") else "pg_dump"
            parts.append(access.exports(when, host, "backup", process, store.parts, access.NONE))
    return columns.concat(parts)


def offsite_backup(ctx: Context) -> Plan:
    plan = Plan()
    bkp = int(ctx.hospital.by_role[Role.BACKUP][0])
    for day in local_days(ctx.start, ctx.end):
        start = at(day, OFFSITE_START) + int(ctx.rng.integers(0, 30 * MINUTE))
        size = int(OFFSITE_BYTES_PER_HOST * ctx.hospital.size * ctx.rng.uniform(0.8, 1.2))
        rate = ctx.rng.uniform(100e6, 150e6)
        if start < ctx.start or start + size / rate * SECOND + MINUTE >= ctx.end:
            continue
        streams = [
            transfer(
                ctx, bkp, int(dst), 443, "ssl", start + i * SECOND, size // 3, rate / 3, reply=0.004
            )
            for i, dst in enumerate(ctx.world.backup)
        ]
        batch = columns.concat(streams)
        plan.flows.append(batch)
        plan.episodes.append(
            measure(
                batch,
                ctx.addresses.ips,
                id=f"offsite-backup/{day:%Y-%m-%d}",
                scenario=None,
                kind="backup",
                malicious=False,
                note="nightly upload to the off-site backup range",
            )
        )
    return plan


def pacs_partner(ctx: Context) -> Plan:
    plan = Plan()
    pacs = ctx.hospital.by_role[Role.PACS]
    partner = ctx.world.partner
    for day in local_days(ctx.start, ctx.end):
        count = max(3, ctx.hospital.size // (150 if is_workday(day) else 600))
        for way, (src, dst) in {"out": (pacs, partner), "in": (partner, pacs)}.items():
            batch = _studies(ctx, day, src, dst, count)
            if len(batch):
                plan.flows.append(batch)
                plan.episodes.append(
                    measure(
                        batch,
                        ctx.addresses.ips,
                        id=f"pacs-partner/{day:%Y-%m-%d}/{way}",
                        scenario=None,
                        kind="imaging",
                        malicious=False,
                        note=f"imaging studies exchanged with the partner hospital ({way})",
                    )
                )
    return plan


def _studies(ctx: Context, day: datetime, src: np.ndarray, dst: np.ndarray, n: int) -> Flows:
    ts = at(day, 8) + ctx.rng.integers(0, 12 * HOUR, n)
    size = ctx.rng.lognormal(np.log(250e6), 1.0, n).astype(np.int64)
    dur = (size / ctx.rng.uniform(20e6, 60e6, n) * SECOND).astype(np.int64)
    keep = (ts >= ctx.start) & (ts + dur < ctx.end)
    k = int(keep.sum())
    return flows.sliced(
        flows.make(
            k,
            ts=ts[keep],
            dur=dur[keep],
            src=ctx.rng.choice(src, k),
            sport=ctx.rng.integers(49152, 65536, k),
            dst=ctx.rng.choice(dst, k),
            dport=PACS_PORT,
            proto=flows.TCP,
            service=SERVICE["ssl"],
            ob=size[keep],
            rb=size[keep] // 200,
            uid=ctx.uids.take(k),
        )
    )


def polling(ctx: Context) -> Plan:
    """The booking API (every 60 s) and the reference lab's results (every 300 s)."""
    plan = Plan()
    web = int(ctx.hospital.by_role[Role.WEB][0])
    lab = int(ctx.hospital.by_role[Role.LAB][0])
    for name, src, dst, period in (
        ("booking-api-poll", web, ctx.world.booking, 60),
        ("lab-results-poll", lab, ctx.world.lab_partner, 300),
    ):
        ts = np.arange(ctx.start + 7 * SECOND, ctx.end - 10 * SECOND, period * SECOND)
        ts = ts + ctx.rng.integers(0, 2 * SECOND, len(ts))
        n = len(ts)
        batch = flows.make(
            n,
            ts=ts,
            dur=ctx.rng.integers(80_000, 400_000, n),
            src=src,
            sport=ctx.rng.integers(49152, 65536, n),
            dst=dst,
            dport=443,
            proto=flows.TCP,
            service=SERVICE["ssl"],
            ob=640 + ctx.rng.integers(0, 24, n),
            rb=ctx.rng.lognormal(np.log(1_500), 0.8, n).astype(np.int64),
            uid=ctx.uids.take(n),
        )
        plan.flows.append(batch)
        plan.episodes.append(
            measure(
                batch,
                ctx.addresses.ips,
                id=name,
                scenario=None,
                kind="polling",
                malicious=False,
                note=f"interface polling every {period} s",
            )
        )
    return plan


def supplier_maintenance(ctx: Context) -> Plan:
    """One maintenance session of the biomedical vendor per working day."""
    plan = Plan()
    for day in local_days(ctx.start, ctx.end):
        if is_workday(day):
            plan.extend(supplier_sessions(ctx, PROVIDERS[0], day, 1, None))
    return plan


def supplier_sessions(
    ctx: Context,
    provider: Provider,
    day: datetime,
    count: int,
    scenario: str | None,
    edges: bool = False,
    upload: int = 0,
) -> Plan:
    """``count`` sessions of ``provider`` inside its envelope on ``day`` (with ``edges``,
    the first starts just after its hours open and the second ends just before they close)."""
    plan = Plan()
    targets = _reachable(ctx, provider)
    for i in range(count if len(targets) else 0):
        length = int(ctx.rng.integers(20, 90)) * MINUTE
        lo = at(day, provider.hours[0]) + 2 * MINUTE
        hi = at(day, provider.hours[1]) - length - 2 * MINUTE
        start = int(ctx.rng.integers(lo, hi))
        if edges and i < 2:
            start = (
                lo + int(ctx.rng.integers(0, 8 * MINUTE))
                if i == 0
                else hi - int(ctx.rng.integers(0, 8 * MINUTE))
            )
        if start < ctx.start or start + length >= ctx.end:
            continue
        s = Session(
            str(ctx.rng.choice(provider.accounts)),
            int(ctx.rng.choice(ctx.world.provider_ips[provider.name])),
            int(ctx.rng.choice(ctx.world.provider_pool[provider.name])),
            int(ctx.rng.choice(targets)),
            int(ctx.rng.choice(provider.ports)),
            start,
            length,
            upload if i == count - 1 else 0,
        )
        tunnel, inner, logins = session(ctx, s)
        batch = columns.concat([tunnel, inner])
        plan.flows.append(batch)
        plan.events.append(logins)
        prefix = scenario or "supplier-maintenance"
        plan.episodes.append(
            measure(
                batch,
                ctx.addresses.ips,
                id=f"{prefix}/{day:%Y-%m-%d}/{provider.name}/{i + 1}",
                scenario=scenario,
                kind="third_party_access",
                malicious=False,
                note="supplier session inside its envelope (sources, account, hosts, hours)",
                extra={"provider": provider.name, "account": s.account},
            )
        )
    return plan


def _reachable(ctx: Context, provider: Provider) -> np.ndarray:
    nets = [ipaddress.ip_network(n) for n in provider.hosts]
    return np.array(
        [
            i
            for i, ip in enumerate(ctx.hospital.ips)
            if any(ipaddress.ip_address(ip) in n for n in nets)
        ],
        np.int32,
    )


#: every benign look-alike planned for the whole span, in planning order
LOOKALIKES: tuple[Callable[[Context], Plan], ...] = (
    internal_backup,
    offsite_backup,
    pacs_partner,
    polling,
    supplier_maintenance,
)

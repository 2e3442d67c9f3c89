"""Internal staging (Vectra's "data smuggler"): a host pulls far more than usual from the
site's data stores, then sends far more than usual somewhere else — outside, or onward to
another internal host (a file server that will upload it, a host of the attacker's choice).

A *pull* is a flow the host originates towards a data store (inventory ``datastores[].host``
and ``ports``, plus file servers by role) whose answer (``bytes_in``) is large: a database
dump, or SMB reads. A *push* is a flow the host originates whose ``bytes_out`` is large,
to any other address, outside or inside, except the stores it pulled from and the inventory's
expected transfers (the nightly backup to the backup server is the main look-alike).

Both sides are judged per hour against the larger of the host's own history (its busiest
hour for that store, for that destination) and its peers' (the 90th percentile of the
busiest hours of the store's clients, of the destination's senders, the busiest one left
out; with fewer than ``min_peers`` of them, the busiest hour of any *other* one, so that a
host is never its own peer): application servers
that query the database all day and workstations that read large files do not count as
pulls, and a copy to a file server stands out against the workstations' writes to it. A host
that had never read from that store before (in history or the rest of the window) and a push
that follows within minutes weigh most.

One finding per staging host: ``hosts`` = the host, the stores it pulled from and the
internal hosts it pushed to, so that the incident chains it with what those hosts do next.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, ClassVar

import ibis
import ibis.expr.types as ir

from hemostat.detect.context import Context, match_any
from hemostat.detect.words import PLAIN, Words, say
from hemostat.schema import Kind

#: SMB and NFS: how a host reads from a file server
FILE_PORTS = (445, 139, 2049)


@dataclass(frozen=True)
class Staging:
    id: ClassVar[str] = "staging"
    kind: ClassVar[Kind] = Kind.STAGING
    attack: ClassVar[tuple[str, ...]] = ("T1074.002", "T1039", "T1005", "T1560")

    min_pull_bytes: int = field(
        default=100_000_000,
        metadata={"help": "Bytes a host must pull from one data store in one hour to count."},
    )
    pull_factor: float = field(
        default=5.0,
        metadata={
            "help": "An hour's pull must exceed this many times the larger of the host's own "
            "busiest hour for that store (history) and its peers' (see min_peers)."
        },
    )
    min_push_bytes: int = field(
        default=50_000_000,
        metadata={"help": "Bytes the host must then send to one destination to count."},
    )
    push_factor: float = field(
        default=10.0,
        metadata={
            "help": "The push's busiest hour must exceed this many times the larger of the "
            "host's own busiest hour to that destination (history) and its peers' (other "
            "senders to it, see min_peers)."
        },
    )
    push_floor: int = field(
        default=1_000_000,
        metadata={"help": "Smallest hourly baseline a push is compared with (bytes)."},
    )
    push_share: float = field(
        default=0.2,
        metadata={"help": "What was pushed must be at least this share of what was pulled."},
    )
    max_gap_hours: float = field(
        default=12.0,
        metadata={"help": "Longest time from the pull's start to a push that follows it."},
    )
    peer_quantile: float = field(
        default=0.9,
        metadata={
            "help": "Which quantile of the peers' busiest hours is their baseline (the "
            "busiest peer left out)."
        },
    )
    min_peers: int = field(
        default=5,
        metadata={
            "help": "With at least this many peers (clients of a store, senders to a "
            "destination) the peer baseline is a quantile of their busiest hours; with "
            "fewer, the busiest hour of any other peer."
        },
    )
    file_server_roles: tuple[str, ...] = field(
        default=("fileserver", "file_server", "nas"),
        metadata={"help": "Inventory host roles whose SMB/NFS reads count as pulls."},
    )
    other_source_factor: float = field(
        default=0.85,
        metadata={
            "help": "Score multiplier when nothing was pulled from an inventory data store "
            "(only from file servers by role)."
        },
    )
    min_score: float = field(
        default=30.0, metadata={"help": "Findings scoring below this are not reported."}
    )

    # ---- the expression -------------------------------------------------------------------

    def run(self, ctx: Context) -> ir.Table:
        span = timedelta(hours=self.max_gap_hours)
        start = ctx.window.start - span
        pulls = self._pulls(ctx, start)
        pushes = self._pushes(ctx, pulls, start)
        return self._findings(pulls, pushes, ctx.datastore_hosts())

    @staticmethod
    def _flows(ctx: Context, start: Any, *predicates: ir.BooleanValue) -> ir.Table:
        """History and window in one scan (told apart by ``ts >= start``). Each use builds
        its own filter: a shared sub-query over every flow would be materialised."""
        f = ctx.flows
        return f.filter((f.ts >= start - ctx.window.history) & (f.ts < ctx.window.end), *predicates)

    def _stores(self, ctx: Context) -> list[tuple[str, tuple[int, ...]]]:
        """(address, ports — empty for any) of every place a pull comes from."""
        out = {d.host: tuple(d.ports) for d in ctx.inventory.datastores if d.host}
        for host in ctx.inventory.hosts:
            if host.role in self.file_server_roles and host.ip not in out:
                out[host.ip] = FILE_PORTS
        return sorted(out.items())

    def _pulls(self, ctx: Context, start: Any) -> ir.Table:
        """Per host: the hours it pulled far more than usual from a store, with baselines."""
        stores, f = self._stores(ctx), ctx.flows
        tests = [
            (f.dst_ip == ip) & (f.dst_port.isin(ports) if ports else ibis.literal(True))
            for ip, ports in stores
        ]
        t = self._flows(
            ctx, start, f.dst_ip.isin([ip for ip, _ in stores] or [""]),
            ibis.or_(*tests) if tests else ibis.literal(False),
        )  # fmt: skip
        hours = t.group_by(
            host=t.src_ip, store=t.dst_ip, hour=_hour(t.ts), cur=t.ts >= start
        ).aggregate(bytes=t.bytes_in.sum(), ts=t.ts.min(), end_ts=t.end_ts.max())
        # the address test is tied to an aggregate, so that it runs on these rows and is
        # not pushed down onto every flow
        inside = ibis.ifelse(ctx.internal(hours.host), hours.bytes, 0) > 0
        hours = hours.filter(hours.host != hours.store, inside)
        clients = hours.group_by("host", "store").aggregate(
            most=hours.bytes.max(), own=hours.bytes.max(where=~hours.cur), active=hours.count()
        )
        own = _peers(clients, "host", "store", self.min_peers, self.peer_quantile)
        h = hours.filter(hours.cur).join(own, ["host", "store"])
        base = ibis.greatest(h.peer, h.own.fill_null(0), 1).cast("float64")
        big = (h.bytes >= self.min_pull_bytes) & (h.bytes >= self.pull_factor * base)
        h = h.mutate(base=base, big=big)
        per_store = h.group_by("host", "store").aggregate(
            bytes=h.bytes.sum(where=h.big), peak=h.bytes.max(), base=h.base.max(),
            own=h.own.max(), peer=h.peer.max(), ts=h.ts.min(where=h.big),
            end_ts=h.end_ts.max(where=h.big), big_hours=h.big.sum(), active=h.active.max(),
        )  # fmt: skip
        # a new client: every hour it ever pulled from this store is one of the big ones
        per_store = per_store.filter(per_store.big_hours > 0).mutate(
            new=per_store.active == per_store.big_hours, ratio=per_store.peak / per_store.base
        )
        s = per_store
        return s.group_by("host").aggregate(
            pulled=s.bytes.sum(), pull_ts=s.ts.min(), pull_end=s.end_ts.max(),
            pull_ratio=s.ratio.max(), pull_new=s.new.any(), stores=s.store.collect(),
            pulled_from=ibis.struct(
                {"store": s.store, "bytes": s.bytes, "peak_hour": s.peak,
                 "own_peak": s.own.fill_null(0), "peer_peak": s.peer, "new_client": s.new}
            ).collect(),
        )  # fmt: skip

    def _pushes(self, ctx: Context, pulls: ir.Table, start: Any) -> ir.Table:
        """What each pulling host then sent, per destination, that is unusual for it."""
        gap = ibis.interval(seconds=int(self.max_gap_hours * 3600))
        who = pulls.select("host", "pull_ts", "stores")
        f = ctx.flows
        t = self._flows(ctx, start, f.src_ip.isin(who.host), f.bytes_out > 0)
        t = t.join(who, t.src_ip == who.host)
        cur = t.ts >= start
        t = t.filter(
            ~t.stores.contains(t.dst_ip), ~cur | ((t.ts >= t.pull_ts) & (t.ts <= t.pull_ts + gap))
        )
        hours = t.group_by(host=t.src_ip, dst=t.dst_ip, hour=_hour(t.ts), cur=cur)
        hours = hours.aggregate(
            bytes=t.bytes_out.sum(), ts=t.ts.min(), end_ts=t.end_ts.max(), port=t.dst_port.max()
        )
        # after the aggregation (the port is an aggregate): the address tests of the expected
        # transfers then run on a few rows instead of being pushed down onto every flow
        hours = hours.filter(
            hours.host != hours.dst, ~self._expected(ctx, hours.host, hours.dst, hours.port)
        )
        per = hours.group_by("host", "dst").aggregate(
            bytes=hours.bytes.sum(where=hours.cur), peak=hours.bytes.max(where=hours.cur),
            own=hours.bytes.max(where=~hours.cur), ts=hours.ts.min(where=hours.cur),
            end_ts=hours.end_ts.max(where=hours.cur), port=hours.port.max(where=hours.cur),
        )  # fmt: skip
        per = per.filter(
            (per.bytes >= self.min_push_bytes)
            & (per.peak >= self.push_factor * ibis.greatest(per.own.fill_null(0), self.push_floor))
        )
        per = per.join(self._receivers(ctx, per, start), ["host", "dst"])
        base = ibis.greatest(per.own.fill_null(0), per.peer, self.push_floor).cast("float64")
        per = per.mutate(base=base, ratio=per.peak / base, external=ctx.external(per.dst))
        per = per.filter(per.ratio >= self.push_factor)
        ranked = per.mutate(rank=ibis.row_number().over(group_by="host", order_by=-per.bytes))
        top = ranked.filter(ranked["rank"] == 0).select(
            "host", destination=ranked.dst, dst_port=ranked.port
        )
        agg = per.group_by("host").aggregate(
            pushed=per.bytes.sum(), pushed_out=per.bytes.sum(where=per.external),
            push_ts=per.ts.min(), push_end=per.end_ts.max(), push_ratio=per.ratio.max(),
            inside=per.dst.collect(where=~per.external),
            pushed_to=ibis.struct(
                {"destination": per.dst, "port": per.port, "bytes": per.bytes,
                 "peak_hour": per.peak, "own_peak": per.own.fill_null(0),
                 "peer_peak": per.peer, "external": per.external}
            ).collect(),
        )  # fmt: skip
        return agg.join(top, "host")

    def _receivers(self, ctx: Context, pushes: ir.Table, start: Any) -> ir.Table:
        """Per candidate push: the typical busiest hour of the destination's other senders."""
        f = ctx.flows
        t = self._flows(ctx, start, f.dst_ip.isin(pushes.dst), f.bytes_out > 0)
        hours = t.group_by(host=t.src_ip, dst=t.dst_ip, hour=_hour(t.ts)).aggregate(
            bytes=t.bytes_out.sum()
        )
        senders = hours.group_by("host", "dst").aggregate(most=hours.bytes.max())
        peers = _peers(senders, "host", "dst", self.min_peers, self.peer_quantile)
        return peers.select("host", "dst", "peer")

    @staticmethod
    def _expected(
        ctx: Context, src: ir.StringValue, dst: ir.StringValue, port: ir.IntegerValue
    ) -> ir.BooleanValue:
        tests = []
        for x in ctx.inventory.expected_transfers:
            test = match_any(src, x.sources)
            if x.dst:
                test &= match_any(dst, x.dst)
            if x.ports:
                test &= port.isin(x.ports)
            tests.append(test)
        return ibis.or_(*tests) if tests else ibis.literal(False)

    def _findings(self, pulls: ir.Table, pushes: ir.Table, personal: tuple[str, ...]) -> ir.Table:
        j = pulls.join(pushes, "host")
        j = j.filter(j.pushed >= self.push_share * j.pulled)
        gap = _seconds(j.push_ts) - _seconds(j.pull_ts)
        score = (
            30.0
            + 15.0 * _part(j.pull_ratio / self.pull_factor, 1.5)
            + 15.0 * _part(j.push_ratio / self.push_factor, 2.0)
            + 15.0 / (1.0 + ibis.greatest(gap, 0).cast("float64") / 3600.0)
            + 10.0 * _part(j.pushed / self.min_push_bytes, 2.0)
            + ibis.ifelse(j.pull_new, 15.0, 0.0)
        )
        # pulls from a store of personal data (inventory datastores) weigh more than pulls
        # from any file server: workstations syncing shared files to the cloud look alike
        from_store = j.stores.filter(lambda h: h.isin(list(personal) or [""])).length() > 0
        score = score * ibis.ifelse(from_store, 1.0, self.other_source_factor)
        out = j.select(
            host=j.host,
            ts=j.pull_ts,
            end_ts=ibis.greatest(j.pull_end, j.push_end),
            score=ibis.least(score, 100.0),
            bytes_out=j.pushed.cast("int64"),
            destination=j.destination,
            dst_port=j.dst_port,
            hosts=ibis.array([j.host])
            .concat(j.stores)
            .concat(j.inside.fill_null(ibis.literal([], type="array<string>"))),
            pulled=j.pulled.cast("int64"),
            pushed=j.pushed.cast("int64"),
            pushed_outside=j.pushed_out.fill_null(0).cast("int64"),
            pull_ratio=j.pull_ratio,
            push_ratio=j.push_ratio,
            new_client=j.pull_new,
            gap_s=gap,
            pulled_from=j.pulled_from,
            pushed_to=j.pushed_to,
        )
        return out.filter(out.score >= self.min_score)

    # ---- the sentence ---------------------------------------------------------------------

    def explain(self, row: Mapping[str, Any], words: Words | None = None) -> str:
        pulled = [_source(s, words) for s in row.get("pulled_from") or []]
        pushed = sorted(row.get("pushed_to") or [], key=lambda p: -p["bytes"])
        return say(
            words, "staging.sentence",
            host=row["host"], sources=", ".join(pulled), pull=row["pull_ratio"],
            after=_after(int(row.get("gap_s") or 0), words),
            targets=", ".join(_target(p, words) for p in pushed), push=row["push_ratio"],
        )  # fmt: skip


def _source(source: Mapping[str, Any], words: Words | None) -> str:
    key = "staging.source_new" if source.get("new_client") else "staging.source"
    return say(words, key, size=(words or PLAIN).size(source["bytes"]), store=source["store"])


def _target(target: Mapping[str, Any], words: Words | None) -> str:
    key = "staging.target_outside" if target.get("external") else "staging.target"
    size = (words or PLAIN).size(target["bytes"])
    return say(words, key, size=size, destination=target["destination"], port=target["port"])


def _peers(t: ir.Table, actor: str, group: str, min_peers: int, quantile: float) -> ir.Table:
    """``t`` (one row per actor and group, with its busiest hour ``most``) plus ``peer``:
    with ``min_peers`` actors or more, the ``quantile`` of their busiest hours leaving out the
    busiest actor (so that an outlier is never its own peer); with fewer, the busiest hour of
    any *other* actor (0 if none)."""
    ranked = t.mutate(rank=ibis.row_number().over(group_by=group, order_by=ibis.desc(t.most)))
    rest = ranked.most.cast("float64")
    stats = ranked.group_by(group).aggregate(
        n=ranked.count(),
        typical=rest.quantile(quantile, where=ranked["rank"] > 0),
        top=ranked.most.max(where=ranked["rank"] == 0),
        top_actor=ranked[actor].max(where=ranked["rank"] == 0),
        second=ranked.most.max(where=ranked["rank"] == 1),
    )
    j = t.join(stats, group)
    other = ibis.ifelse(j[actor] == j.top_actor, j.second, j.top).fill_null(0)
    peer = ibis.ifelse(j.n >= min_peers, j.typical, other.cast("float64"))
    return j.select(*t.columns, peer=peer)


def _seconds(ts: ir.TimestampValue) -> ir.IntegerValue:
    """Whole seconds since the epoch (DuckDB's epoch() has fractions; cast them away)."""
    return ts.epoch_seconds().cast("float64").floor().cast("int64")


def _hour(ts: ir.TimestampValue) -> ir.IntegerValue:
    """Hours since the epoch: an hour bucket without the engine's (time-zone aware, slow)
    timestamp truncation."""
    return (ts.epoch_seconds().cast("float64") / 3600.0).floor().cast("int64")


def _part(ratio: ir.NumericValue, decades: float) -> ir.FloatingValue:
    """0 at ``ratio`` 1, 1 at ``ratio`` 10^decades, log-linear between (and clipped)."""
    value = ibis.greatest(ratio.cast("float64"), 1.0).log10() / decades
    return ibis.least(value, 1.0)


def _after(seconds: int, words: Words | None) -> str:
    if seconds < 60:
        return say(words, "staging.at_once")
    if seconds < 3600:
        return say(words, "staging.minutes", minutes=seconds // 60)
    return say(words, "staging.hours", hours=seconds / 3600)

"""Rare destination: a host uploads to an address (or a range) the site never or rarely talks to.

The unit is one host's uploads to one *destination group*: the /24 of a rare address, or,
when the address lies in a range the site knows well (a /24 above the rarity bar, a /16 most
hosts use, a registered domain many hosts resolve), that whole /16 — so a leak spread over
several fresh addresses of the cloud provider everybody syncs to adds up, as "rare but known".

Rarity and novelty follow RITA: an address is rare when at most ``rare_fraction`` of the
internal hosts (never fewer than ``rare_min_hosts``) talked to it, in the window and in
history; novelty fades linearly over ``new_days`` from its first sighting by the site (or,
outside well-known ranges, from this host's first contact with the /24: a backup server that
rotates addresses in its own range is not news). The score grows with the upload on a log
scale and is lowered for well-known ranges, for hosts that contact many rare destinations
(mail relays, resolvers: novelty is their habit) and for traffic that is not an upload.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, ClassVar

import ibis
import ibis.expr.types as ir

from hemostat.detect.context import Context, match_any, tiebreak
from hemostat.detect.words import PLAIN, Words, moment, say
from hemostat.schema import Kind

_DAY = 86_400.0


@dataclass(frozen=True)
class RareDestination:
    id: ClassVar[str] = "rare_destination"
    kind: ClassVar[Kind] = Kind.EXFILTRATION
    attack: ClassVar[tuple[str, ...]] = ("T1048", "T1567.002", "T1041")

    min_bytes: int = field(
        default=100_000,
        metadata={"help": "Bytes a host must upload to a rare destination group to be judged."},
    )
    large_bytes: int = field(
        default=500_000_000,
        metadata={"help": "Upload that earns the full volume score (log scale from min_bytes)."},
    )
    rare_fraction: float = field(
        default=0.02,
        metadata={"help": "An address is rare when at most this share of internal hosts "
                  "talked to it (window and history; RITA uses 2 %)."},
    )  # fmt: skip
    rare_min_hosts: int = field(
        default=2, metadata={"help": "Floor of the rarity bar, in hosts, for small sites."}
    )
    known_fraction: float = field(
        default=0.10,
        metadata={"help": "A /16 used by at least this share of internal hosts is well known "
                  "(a /24 or registered domain is well known above the rarity bar)."},
    )  # fmt: skip
    known_factor: float = field(
        default=0.6,
        metadata={"help": "Score multiplier for a rare address inside a well-known range."},
    )
    new_days: float = field(
        default=7.0,
        metadata={"help": "Days over which novelty fades to half (RITA: first seen ≤ 7 days)."},
    )
    lookback_hours: float = field(
        default=12.0,
        metadata={"help": "Uploads are summed over the window plus this look-back (slow leaks)."},
    )
    min_upload_ratio: float = field(
        default=0.0,
        metadata={"help": "Least producer-consumer ratio (sent-received)/(sent+received): "
                  "0 keeps uploads, drops downloads such as browsing."},
    )  # fmt: skip
    fanout_free: int = field(
        default=50,
        metadata={"help": "Rare addresses a host may contact in the window before its "
                  "novelty counts less (mail relays, resolvers)."},
    )  # fmt: skip
    fanout_floor: float = field(
        default=0.25, metadata={"help": "Lowest score multiplier of the fan-out discount."}
    )
    min_score: float = field(
        default=30.0, metadata={"help": "Findings scoring below this are not emitted."}
    )

    # ---- expression --------------------------------------------------------------------------

    def run(self, ctx: Context) -> ir.Table:
        span = timedelta(hours=self.lookback_hours)
        egress = ctx.egress(span)
        history = ctx.history(ctx.flows, span)
        history = history.filter(ctx.internal(history.src_ip) & ctx.external(history.dst_ip))
        current, past = _pairs(egress), _pairs(history)
        seen = _sightings(current, past)
        dests = self._destinations(seen)
        rare = self._rare(current, past, dests)
        rare = self._known(rare, seen, dests, _names(ctx, span, rare))
        groups = self._groups(rare, past)
        scored = self._score(groups).filter(lambda t: t.score >= self.min_score)
        flows = ctx.current(ctx.flows, span)
        return _with_flows(scored, flows).mutate(
            expected_range=_expected_range(ctx, scored.destination, scored.host)
        )

    def _destinations(self, seen: ir.Table) -> ir.Table:
        """Per external address: how many internal hosts talked to it (window, history, both),
        first sighting, its /24 and /16 and the most hosts any address of those ranges has."""
        per = seen.group_by("dst").aggregate(
            dst_hosts=seen.count(),
            dst_hosts_window=seen.now.sum(),
            dst_hosts_history=seen.before.sum(),
            dst_first=seen.pair_first.min(),
        )
        sites = seen.aggregate(active_hosts=seen.host.nunique())
        rare_max = ibis.greatest(
            self.rare_min_hosts, (sites.active_hosts * self.rare_fraction).floor().cast("int64")
        )
        per = per.cross_join(sites.mutate(rare_max=rare_max))
        per = per.mutate(net24=_prefix(per.dst, 3), net16=_prefix(per.dst, 2))
        return per.mutate(
            net24_peak=per.dst_hosts.max().over(group_by="net24"),
            net16_peak=per.dst_hosts.max().over(group_by="net16"),
        )

    def _rare(self, current: ir.Table, past: ir.Table, dests: ir.Table) -> ir.Table:
        """Current pairs to rare addresses, with the host's first contact (history included)
        and its count of rare addresses (fan-out)."""
        pairs = current.join(dests.filter(dests.dst_hosts <= dests.rare_max), "dst")
        prior = past.select("host", "dst", prior=past.first)
        pairs = pairs.left_join(prior, ["host", "dst"]).drop("host_right", "dst_right")
        return pairs.mutate(
            pair_first=ibis.least(pairs.first, pairs.prior.fill_null(pairs.first)),
            fanout=pairs.dst.count().over(group_by="host"),
        ).drop("prior")

    def _known(self, rare: ir.Table, seen: ir.Table, dests: ir.Table, names: ir.Table) -> ir.Table:
        """Adds the host's first contact with the /24, the DNS name and the group each pair
        falls in: its /16 when the range is well known, else its /24."""
        near = dests.select("dst", "net24").join(
            rare.select("net24").distinct(), "net24", how="semi"
        )
        mine = seen.select("host", "dst", "pair_first").join(near, "dst")
        h24 = mine.group_by(["host", "net24"]).aggregate(host_net24_first=mine.pair_first.min())
        rare = rare.left_join(h24, ["host", "net24"]).drop("host_right", "net24_right")
        rare = rare.left_join(names, rare.dst == names.ans).drop("ans")
        known24 = rare.net24_peak > rare.rare_max
        known16 = rare.net16_peak >= rare.active_hosts * self.known_fraction
        known_name = rare.domain_hosts.fill_null(0) > rare.rare_max
        known_by = ibis.cases(
            (known24, "/24"), (known16, "/16"), (known_name, "domain"), else_=ibis.null("string")
        )
        group = ibis.cases((known_by.notnull(), _range(rare.net16, 2)), else_=_range(rare.net24, 3))
        return rare.mutate(known_by=known_by, group=group)

    def _groups(self, rare: ir.Table, past: ir.Table) -> ir.Table:
        """One row per (host, destination group), the address carrying most bytes named."""
        r = rare
        top = tiebreak(r.bytes_out, r.dst)  # the same address named in every column
        groups = r.group_by(["host", "group"]).aggregate(
            destination=r.dst.argmax(top), name=r.name.argmax(top), domain=r.domain.argmax(top),
            domain_hosts=r.domain_hosts.max(), known_by=r.known_by.max(),
            ts=r.first.min(), end_ts=r.last.max(), bytes_out=r.bytes_out.sum(),
            bytes_in=r.bytes_in.sum(), flows=r.flows.sum(), addresses=r.dst.collect(distinct=True),
            dst_hosts=r.dst_hosts.max(), dst_hosts_window=r.dst_hosts_window.max(),
            dst_hosts_history=r.dst_hosts_history.max(), first_seen=r.dst_first.argmax(top),
            newest_seen=r.dst_first.max(),
            host_first_seen=r.host_net24_first.min(), pair_first=r.pair_first.min(),
            net24_peak=r.net24_peak.max(), net16_peak=r.net16_peak.max(),
            fanout=r.fanout.max(), active_hosts=r.active_hosts.max(), rare_max=r.rare_max.max(),
        )  # fmt: skip
        sent = past.group_by("host").aggregate(host_sent_before=past.bytes_out.sum())
        has_history = past.aggregate(history=past.count() > 0)
        groups = groups.left_join(sent, "host").drop("host_right").cross_join(has_history)
        familiar = ibis.cases(  # outside well-known ranges, the host's own habit counts too
            (groups.known_by.isnull(), ibis.least(groups.newest_seen, groups.host_first_seen)),
            else_=groups.newest_seen,
        )
        return groups.mutate(
            n_addresses=groups.addresses.length(),
            age_days=_days(groups.ts, familiar),
            host_sent_before=groups.host_sent_before.fill_null(0),
            key=groups.group + "|" + groups.pair_first.date().cast("string"),
        )

    def _score(self, g: ir.Table) -> ir.Table:
        """Volume (log scale) times novelty, known range, fan-out and upload factors."""
        g = g.filter(g.bytes_out >= self.min_bytes)
        total = g.bytes_out + g.bytes_in.fill_null(0)
        ratio = ((g.bytes_out - g.bytes_in.fill_null(0)) / total).cast("float64")
        g = g.mutate(upload_ratio=ratio).filter(lambda t: t.upload_ratio >= self.min_upload_ratio)
        span = math.log10(max(self.large_bytes, self.min_bytes + 1) / self.min_bytes)
        volume = _clip((g.bytes_out / self.min_bytes).cast("float64").log10() / span, 0.0, 1.0)
        novelty = 1.0 - 0.5 * _clip(g.age_days / self.new_days, 0.0, 1.0)
        known = ibis.cases((g.known_by.notnull(), self.known_factor), else_=1.0)
        fanout = _clip(self.fanout_free / g.fanout.cast("float64"), self.fanout_floor, 1.0)
        upload = 0.85 + 0.15 * g.upload_ratio
        score = (30.0 + 65.0 * volume) * novelty * known * fanout * upload
        return g.mutate(score=score.round(1), novelty=novelty.round(3))

    # ---- explanation -------------------------------------------------------------------------

    def explain(self, row: Mapping[str, Any], words: Words | None = None) -> str:
        more = int(row.get("n_addresses") or 1) - 1
        first = row["first_seen"]
        return say(
            words, "rare_destination.sentence",
            host=row["host"], size=(words or PLAIN).size(row["bytes_out"]), flows=row["flows"],
            destination=row["destination"],
            name=say(words, "rare_destination.name", name=row["name"]) if row.get("name") else "",
            also=(
                say(words, "rare_destination.also", n=more, group=row["group"]) if more else ""
            ),
            reaching=row["dst_hosts"], active=row["active_hosts"],
            first=(
                say(words, "rare_destination.in_window") if first is None
                else say(words, "rare_destination.first", when=moment(words, first))
            ),
            notes="".join(self._notes(row, words)),
        )  # fmt: skip

    def _notes(self, row: Mapping[str, Any], words: Words | None) -> list[str]:
        """What tempers or sharpens the novelty, each a clause of its own."""
        notes = []
        if row.get("known_by") == "domain":
            hosts, domain = row["domain_hosts"], row["domain"]
            notes.append(say(words, "rare_destination.known_domain", hosts=hosts, domain=domain))
        elif row.get("known_by"):
            hosts, group = row["net16_peak"], row["group"]
            notes.append(say(words, "rare_destination.known_network", hosts=hosts, group=group))
        if row.get("expected_range"):
            notes.append(say(words, "rare_destination.expected_range", name=row["expected_range"]))
        before = row.get("host_sent_before") or 0
        if row.get("history") and before * 100 < (row["bytes_out"] or 0):
            size = (words or PLAIN).size(before)
            notes.append(say(words, "rare_destination.quiet_before", size=size))
        if (row.get("fanout") or 0) > self.fanout_free:
            notes.append(say(words, "rare_destination.fanout", n=row["fanout"]))
        return notes


# ---- building blocks --------------------------------------------------------------------------


def _pairs(flows: ir.Table) -> ir.Table:
    """Flows summed per (internal host, external address)."""
    return flows.group_by(host=flows.src_ip, dst=flows.dst_ip).aggregate(
        first=flows.ts.min(), last=flows.end_ts.max(), bytes_out=flows.bytes_out.sum(),
        bytes_in=flows.bytes_in.sum(), flows=flows.count(),
    )  # fmt: skip


def _sightings(current: ir.Table, past: ir.Table) -> ir.Table:
    """One row per (host, address) ever seen: first contact, seen now and/or before."""
    both = current.select("host", "dst", "first", now=True).union(
        past.select("host", "dst", "first", now=False)
    )
    return both.group_by(["host", "dst"]).aggregate(
        pair_first=both.first.min(),
        now=both.now.cast("int64").max(),
        before=(~both.now).cast("int64").max(),
    )


def _prefix(ip: ir.StringValue, parts: int) -> ir.StringValue:
    """The first ``parts`` octets of an IPv4 address (IPv6: the first ``parts`` groups)."""
    v4 = ip.re_extract(rf"^((?:\d+\.){{{parts - 1}}}\d+)\.", 1)
    v6 = ip.lower().re_extract(rf"^((?:[0-9a-f]*:){{{parts - 1}}}[0-9a-f]*):", 1)
    return ibis.cases((ip.contains(":"), v6), else_=v4)


def _range(prefix: ir.StringValue, parts: int) -> ir.StringValue:
    """``10.1.2`` → ``10.1.2.0/24``; IPv6 prefixes get ``::/48`` or ``::/32``."""
    v4 = prefix + ".0" * (4 - parts) + f"/{8 * parts}"
    return ibis.cases((prefix.contains(":"), prefix + f"::/{16 * parts}"), else_=v4)


def _names(ctx: Context, span: timedelta, rare: ir.Table) -> ir.Table:
    """For each rare address a DNS name answering with it, and how many internal hosts
    resolved names of that registered domain (the window's DNS)."""
    dns = ctx.current(ctx.dns, span)
    dns = dns.filter(ctx.internal(dns.src_ip))
    answers = dns.filter(dns.answers.length() > 0)
    answers = answers.select(
        src_ip=answers.src_ip, query=answers.query.lower(), ans=answers.answers.unnest()
    )
    targets = rare.select(ans=rare.dst).distinct()
    answers = answers.join(targets, "ans", how="semi")
    named = answers.group_by(["ans", "query"]).aggregate(clients=answers.src_ip.nunique())
    best = named.group_by("ans").aggregate(
        name=named.query.argmax(tiebreak(named.clients, named.query))
    )
    best = best.mutate(domain=_registered(best.name))
    wanted = best.select("domain").distinct()
    queries = dns.select(query=dns.query.lower()).distinct()
    queries = queries.mutate(domain=_registered(queries.query))
    queries = queries.join(wanted, "domain", how="semi")
    lookups = dns.select(src_ip=dns.src_ip, query=dns.query.lower()).join(queries, "query")
    counts = lookups.group_by("domain").aggregate(domain_hosts=lookups.src_ip.nunique())
    return best.left_join(counts, "domain").drop("domain_right")


def _registered(name: ir.StringValue) -> ir.StringValue:
    """The registered domain of a DNS name (last two labels; three under co.uk and the like)."""
    return name.re_extract(
        r"([^.]+\.(?:(?:co|com|ac|gov|gouv|org|net|edu|or|ne|go)\.[a-z]{2}|[^.]+))\.?$", 1
    )


def _with_flows(scored: ir.Table, flows: ir.Table) -> ir.Table:
    """Adds the ports and conn ids of the findings' flows (a second, filtered pass)."""
    members = scored.select(
        src_ip=scored.host, dst_ip=scored.addresses.unnest(), group=scored.group
    )
    flows = flows.select("src_ip", "dst_ip", "dst_port", "bytes_out", "conn_id")
    # the addresses as one list unnested: a build side the engine knows to be small, so the
    # semi-join becomes a filter inside the scan instead of a hash table of the whole window
    one = members.aggregate(wanted=members.dst_ip.collect(distinct=True))
    flows = flows.join(one.select(dst_ip=one.wanted.unnest()), "dst_ip", how="semi")
    flows = flows.join(members, ["src_ip", "dst_ip"])
    per = flows.group_by(host=flows.src_ip, group=flows.group).aggregate(
        dst_port=flows.dst_port.argmax(tiebreak(flows.bytes_out, flows.dst_port)),
        ports=flows.dst_port.collect(distinct=True),
        conn_ids=flows.conn_id.collect(distinct=True),
    )
    return scored.join(per, ["host", "group"])


def _expected_range(ctx: Context, dst: ir.StringValue, host: ir.StringValue) -> ir.StringValue:
    """Name of an expected transfer whose destinations contain ``dst`` but whose source is not
    ``host`` (the runner only discounts exact matches; this is said, never discounted)."""
    cases = [
        (match_any(dst, t.dst) & ~match_any(host, t.sources), ibis.literal(t.name))
        for t in ctx.inventory.expected_transfers
        if t.dst
    ]
    return ibis.cases(*cases, else_=ibis.null("string")) if cases else ibis.null("string")


def _days(later: ir.TimestampValue, then: ir.TimestampValue) -> ir.FloatingValue:
    seconds = later.delta(then, unit="microsecond") / 1e6  # exact on every engine
    return (seconds / _DAY).cast("float64")


def _clip(value: ir.NumericValue, low: float, high: float) -> ir.FloatingValue:
    return ibis.least(ibis.greatest(value, low), high).cast("float64")

"""Beaconing: an internal host calls the same outside address and port on a clock.

In the style of RITA's beacon score (REFERENCES.md), per (source, destination, port) pair,
from the gaps between its connections (a ``lag`` over the pair's timestamps), their sizes
and their spread over the hours, four sub-scores from 0 to 1:

* timing: Bowley skew and median absolute deviation (relative to the period) of the gaps;
* size: the share of the most common ``bytes_out``, or Bowley skew and relative MAD of sizes;
* hours: coverage (hours with a connection / hours the site was observed) and evenness of
  the hourly counts between the pair's first and last hour;
* count: how many connections back the figures (log scale).

Beacon score = 100 * timing * mean(size, hours, count): timing gates the rest (see ``_base``).
Modifiers then add what a SOC knows beyond timing: a destination reached by at most 2 % of
the site's hosts adds, a pair absent from a history that exists adds; a destination the
inventory knows (expected transfers, continuity, suppliers' ranges), one whose DNS name most
of the site looks up, or a pair seen on several days of history lowers. Destinations most of
the site talks to are not scored at all. Interface polls (booking API, lab results) are as
periodic as any beacon: only these modifiers, and the runner's expected-transfer discount,
tell them apart. Slices of one long connection (same ``conn_id``) count once, as the first.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, ClassVar

import ibis
import ibis.expr.types as ir

from hemostat.detect.context import Context, Window, match_any, tiebreak
from hemostat.detect.words import PLAIN, Words, say
from hemostat.schema import Kind

PAIR = ("host", "destination", "dst_port")
#: more candidate pairs than any site has; only there to guide join planning
MAX_PAIRS = 1_000_000


def _opt(default: Any, help: str) -> Any:
    """A threshold: a dataclass field with its help text (listed by ``hemostat config``)."""
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class Beaconing:
    id: ClassVar[str] = "beaconing"
    kind: ClassVar[Kind] = Kind.C2
    attack: ClassVar[tuple[str, ...]] = ("T1071.001", "T1573", "T1041")

    # fmt: off
    lookback_hours: float = _opt(24.0, "Hours of flows every run looks at, at least: a "
                                 "shorter window is extended back to this much.")
    min_connections: int = _opt(12, "Connections (distinct conn_id) a source-destination-port "
                                "pair needs to be scored.")
    min_period_seconds: float = _opt(1.0, "Median gap between connections below which a pair "
                                     "is a burst, not a beacon.")
    timing_mad_scale: float = _opt(0.4, "MAD of the gaps, relative to the period, at which "
                                   "timing regularity falls to 0 (±20 % uniform jitter: ~0.1).")
    size_mad_scale: float = _opt(0.25, "MAD of bytes_out, relative to its median, at which "
                                 "size regularity falls to 0.")
    full_connections: int = _opt(500, "Connections at which the count sub-score reaches 1 "
                                 "(log scale).")
    rare_share: float = _opt(0.02, "A destination reached (or looked up by name) by at most "
                             "this share of the site's active hosts is rare.")
    rare_bonus: float = _opt(10.0, "Points added for a rare destination.")
    common_share: float = _opt(0.10, "A destination reached by at least this share of the "
                               "site's hosts is common and not scored; one whose DNS name that "
                               "many hosts look up loses common_penalty.")
    common_min_hosts: int = _opt(5, "Hosts a destination needs before it can count as common.")
    common_penalty: float = _opt(60.0, "Points removed for a destination whose name most of "
                                 "the site looks up (its own public services, telemetry).")
    known_penalty: float = _opt(30.0, "Points removed when the inventory knows the "
                                "destination (expected transfer, continuity, supplier range).")
    new_bonus: float = _opt(5.0, "Points added when a day or more of history exists and the "
                            "pair is not in it.")
    history_days: int = _opt(7, "Days of history searched for the pair.")
    established_days: int = _opt(3, "Distinct local days of history on which the pair was "
                                 "seen that make it established.")
    established_penalty: float = _opt(60.0, "Points removed for an established pair: it has "
                                      "been polling for days, and was reported when new.")
    min_score: float = _opt(40.0, "Findings scoring below this are not emitted.")
    max_ids: int = _opt(20, "First conn_ids of the pair kept as evidence.")
    # fmt: on

    def run(self, ctx: Context) -> ir.Table:
        span = self.span(ctx.window)
        # The candidates (tens of pairs) and their flows (a few percent of the day's) are
        # computed once and kept: every figure below reads them several times, and as one
        # statement DuckDB 2.0 ran it into a state where every thread waits and none works
        # (seen on a day of 8,000 hosts, any thread count or memory limit).
        pairs = ctx.keep(self._candidates(ctx, self._egress_pairs(ctx, _flows(ctx, span))))
        rows = ctx.keep(self._candidate_flows(_flows(ctx, span, full=True), pairs))
        totals = rows.group_by(PAIR).aggregate(
            end_ts=rows.end_ts.max(), bytes_out=rows.bytes_out.sum()
        )
        pairs = pairs.join(totals, list(PAIR))
        pairs = _base(pairs.join(self._regularity(self._connections(rows)), list(PAIR)))
        least = self.min_score - self.rare_bonus - self.new_bonus
        pairs = self._names(ctx, pairs.filter(pairs.beacon_score >= least), span)
        return self._score(ctx, self._history(ctx, pairs, span))

    def span(self, window: Window) -> timedelta:
        """How far before the window start flows are looked at (cumulative look-back)."""
        return max(timedelta(0), timedelta(hours=self.lookback_hours) - (window.end - window.start))

    # ---- candidate pairs -----------------------------------------------------------------

    def _egress_pairs(self, ctx: Context, flows: ir.Table) -> ir.Table:
        """Pairs from a site address to an address outside the site, with their counts.

        Only the cheap prefix tests run per flow; the full ``external`` test (multicast,
        link-local…) runs once per pair, in ``_candidates``.
        """
        flows = flows.filter(ctx.internal(flows.host) & ~ctx.internal(flows.destination))
        return flows.group_by(PAIR).aggregate(
            rows=flows.count(), ts=flows.ts.min(), last_ts=flows.ts.max()
        )

    def _candidates(self, ctx: Context, pairs: ir.Table) -> ir.Table:
        """Egress pairs with enough connections to a destination not common on the site."""
        reach = pairs.group_by("destination").aggregate(dst_hosts=pairs.host.nunique())
        first, last = pairs.ts.min().truncate("h"), pairs.last_ts.max().truncate("h")
        busy = pairs.filter(pairs.rows >= self.min_connections).drop("rows", "last_ts")
        busy = busy.filter(ctx.external(busy.destination)).join(reach, "destination")
        busy = busy.mutate(  # scalar subqueries, not a cross join: keeps row estimates sane
            site_hosts=pairs.aggregate(n=pairs.host.nunique()).as_scalar(),
            observed_hours=pairs.aggregate(n=last.delta(first, unit="hour") + 1).as_scalar(),
        )
        return busy.filter(~self._common(busy.dst_hosts, busy.site_hosts))

    def _common(self, reach: ir.IntegerValue, site: ir.IntegerValue) -> ir.BooleanValue:
        return (reach >= self.common_share * site) & (reach >= self.common_min_hosts)

    # ---- per-connection rows -------------------------------------------------------------

    def _candidate_flows(self, flows: ir.Table, pairs: ir.Table) -> ir.Table:
        """The flows of the candidate pairs (every slice)."""
        # The LIMIT (never reached) caps the planner's guess of how many pairs there are,
        # so the hash table is built on the pairs, not on the day's flows.
        keys = pairs.select(*PAIR).limit(MAX_PAIRS)
        rows = flows.filter(flows.destination.isin(keys.destination))
        return rows.semi_join(keys, list(PAIR))

    def _connections(self, rows: ir.Table) -> ir.Table:
        """One row per connection (its first slice), with the gap since the previous one."""
        first = ibis.row_number().over(group_by=[*PAIR, "conn_id"], order_by="ts")
        rows = rows.mutate(slice=first)
        rows = rows.filter(rows.conn_id.isnull() | (rows.slice == 0))
        order = ibis.window(group_by=list(PAIR), order_by=[rows.ts, rows.conn_id])
        gap = rows.ts.delta(rows.ts.lag().over(order), unit="microsecond")  # exact everywhere
        return rows.mutate(
            gap=gap.cast("float64") / 1e6,
            rank=ibis.row_number().over(order),
            hour=rows.ts.truncate("h"),
        )

    # ---- regularity sub-scores -----------------------------------------------------------

    def _regularity(self, conns: ir.Table) -> ir.Table:
        """Per pair: timing, size, hours and count figures and sub-scores, base score."""
        quart = conns.group_by(PAIR).aggregate(
            connections=conns.count(),
            gap_q1=conns.gap.quantile(0.25), period_s=conns.gap.median(),
            gap_q3=conns.gap.quantile(0.75), size_q1=conns.bytes_out.quantile(0.25),
            size_median=conns.bytes_out.median(), size_q3=conns.bytes_out.quantile(0.75),
        )  # fmt: skip
        quart = quart.filter(
            (quart.connections >= self.min_connections)
            & (quart.period_s >= self.min_period_seconds)
        )
        dev = conns.join(quart.select(*PAIR, "period_s", "size_median"), list(PAIR))
        mad = dev.group_by(PAIR).aggregate(
            gap_mad_s=(dev.gap - dev.period_s).abs().median(),
            size_mad=(dev.bytes_out - dev.size_median).abs().median(),
        )
        per_size = conns.group_by([*PAIR, "bytes_out"]).aggregate(same=conns.count())
        mode = per_size.group_by(PAIR).aggregate(
            size_mode=per_size.bytes_out.argmax(tiebreak(per_size.same, per_size.bytes_out)),
            mode_count=per_size.same.max(),
        )
        per_hour = conns.group_by([*PAIR, "hour"]).aggregate(c=conns.count())
        hours = per_hour.group_by(PAIR).aggregate(
            active_hours=per_hour.count(), sum_sq=(per_hour.c * per_hour.c).sum(),
            span_hours=per_hour.hour.max().delta(per_hour.hour.min(), unit="hour") + 1,
        )  # fmt: skip
        first = conns.filter(conns.rank < self.max_ids)
        ids = first.group_by(PAIR).aggregate(conn_ids=first.conn_id.collect())
        pairs = quart
        for part in (mad, mode, hours, ids):
            pairs = pairs.join(part, list(PAIR))
        return self._subscores(pairs)

    def _subscores(self, p: ir.Table) -> ir.Table:
        gap_skew = _bowley(p.gap_q1, p.period_s, p.gap_q3)
        size_skew = _bowley(p.size_q1.cast("float64"), p.size_median, p.size_q3.cast("float64"))
        gap_rel = p.gap_mad_s / p.period_s
        size_rel = p.size_mad / ibis.greatest(p.size_median, 1.0)
        mode_share = p.mode_count / p.connections
        timing = (1 - gap_skew.abs() + _clip(1 - gap_rel / self.timing_mad_scale)) / 2
        spread = (1 - size_skew.abs() + _clip(1 - size_rel / self.size_mad_scale)) / 2
        size = ibis.greatest(mode_share, spread)
        mean = p.connections / p.span_hours
        variance = ibis.greatest(p.sum_sq / p.span_hours - mean * mean, 0.0)
        evenness = _clip(1 - variance.sqrt() / mean)
        count = _clip(
            p.connections.cast("float64").log10() / math.log10(max(self.full_connections, 2))
        )
        p = p.mutate(
            timing_skew=gap_skew, size_skew=size_skew, gap_mad_ratio=gap_rel,
            size_mode_share=mode_share, hour_evenness=evenness,
            timing_score=timing, size_score=size, count_score=count,
        )  # fmt: skip
        return p.drop("gap_q1", "gap_q3", "size_q1", "size_q3", "mode_count", "sum_sq")

    # ---- modifiers -----------------------------------------------------------------------

    def _names(self, ctx: Context, pairs: ir.Table, span: timedelta) -> ir.Table:
        """A DNS name answering each candidate destination, and how many hosts looked it up."""
        dns = ctx.current(ctx.dns, span)
        answers = dns.select(src_ip=dns.src_ip, query=dns.query, destination=dns.answers.unnest())
        answers = answers.semi_join(pairs.select("destination").limit(MAX_PAIRS), "destination")
        names = answers.group_by("destination").aggregate(
            name=answers.query.min(), name_hosts=answers.src_ip.nunique()
        )
        pairs = pairs.left_join(names, "destination").drop("destination_right")
        return pairs.mutate(name_hosts=pairs.name_hosts.fill_null(0))

    def _history(self, ctx: Context, pairs: ir.Table, span: timedelta) -> ir.Table:
        """First seen and days seen of each candidate pair in the history before the span."""
        past = ctx.history(ctx.flows, span)
        since = ctx.window.start - span - timedelta(days=self.history_days)
        past = past.filter(past.ts >= since)
        past = past.select(
            host=past.src_ip,
            destination=past.dst_ip,
            dst_port=past.dst_port.fill_null(0),
            ts=past.ts,
        )
        keys = pairs.select(*PAIR).limit(MAX_PAIRS)
        known = past.filter(past.destination.isin(keys.destination))
        known = known.semi_join(keys, list(PAIR))
        seen = known.group_by(PAIR).aggregate(
            first_seen=known.ts.min(), days_seen=ctx.local(known.ts).date().nunique()
        )
        pairs = pairs.left_join(seen, list(PAIR))
        pairs = pairs.drop("host_right", "destination_right", "dst_port_right")
        return pairs.mutate(history_start=past.aggregate(t=past.ts.min()).as_scalar())

    def _score(self, ctx: Context, p: ir.Table) -> ir.Table:
        reach = ibis.greatest(p.dst_hosts, p.name_hosts)
        share = reach / p.site_hosts
        rare = (share <= self.rare_share) & (p.site_hosts > 1)
        common = self._common(reach, p.site_hosts)
        known = match_any(p.destination, _known_networks(ctx))
        start = ctx.window.start - self.span(ctx.window)
        deep = p.history_start.notnull() & (p.history_start <= start - timedelta(days=1))
        new = deep & p.first_seen.isnull()
        established = p.days_seen.fill_null(0) >= self.established_days
        score = (
            p.beacon_score + rare.ifelse(self.rare_bonus, 0.0) + new.ifelse(self.new_bonus, 0.0)
            - common.ifelse(self.common_penalty, 0.0) - known.ifelse(self.known_penalty, 0.0)
            - established.ifelse(self.established_penalty, 0.0)
        )  # fmt: skip
        p = p.mutate(
            dst_share=share,
            rare_destination=rare, common_destination=common, known_destination=known,
            new_pair=new, established_pair=established, days_seen=p.days_seen.fill_null(0),
            first_seen=p.first_seen.fill_null(p.ts),
            score=ibis.greatest(ibis.least(score, 100.0), 0.0),
            hosts=ibis.array([p.host]),
            key=p.dst_port.cast("string").concat("@", p.ts.date().cast("string")),
        )  # fmt: skip
        p = p.drop("history_start", "span_hours")
        return p.filter(p.score >= self.min_score)

    # ---- explanation ---------------------------------------------------------------------

    def explain(self, row: Mapping[str, Any], words: Words | None = None) -> str:
        period, mad = float(row["period_s"]), float(row["gap_mad_s"])
        share = float(row["size_mode_share"])
        how = (
            say(words, "beaconing.always")
            if share >= 0.99
            else say(words, "beaconing.share", share=100 * share)
        )
        name = (
            say(words, "beaconing.name", name=row["name"], hosts=row["name_hosts"])
            if row.get("name")
            else ""
        )
        seen = (
            say(words, "beaconing.seen", days=row["days_seen"]) if row["days_seen"]
            else say(words, "beaconing.new") if row["new_pair"]
            else say(words, "beaconing.no_history")
        )  # fmt: skip
        return say(
            words, "beaconing.sentence",
            host=row["host"], destination=row["destination"], port=row["dst_port"], name=name,
            connections=row["connections"], period=_duration(period, words),
            mad=_duration(mad, words), how=how, size=(words or PLAIN).size(row["size_mode"]),
            active=row["active_hours"], observed=row["observed_hours"],
            reaching=row["dst_hosts"], site=row["site_hosts"],
            known=say(words, "beaconing.known") if row["known_destination"] else "",
            seen=seen, score=row["beacon_score"], timing=row["timing_score"],
            sizes=row["size_score"], hours=row["hours_score"], count=row["count_score"],
        )  # fmt: skip


def _flows(ctx: Context, span: timedelta, full: bool = False) -> ir.Table:
    """Flows of the analysed span under the pair's names: the few columns counting needs,
    or (``full``) every column the candidates' connections need. Two distinct projections,
    so no engine materialises a day of flows to share them."""
    flows = ctx.current(ctx.flows, span)
    columns = {
        "host": flows.src_ip, "destination": flows.dst_ip,
        "dst_port": flows.dst_port.fill_null(0), "ts": flows.ts,
    }  # fmt: skip
    if full:
        columns |= {
            "end_ts": flows.end_ts.fill_null(flows.ts),
            "bytes_out": flows.bytes_out.fill_null(0), "conn_id": flows.conn_id,
        }  # fmt: skip
    return flows.select(**columns)


def _base(p: ir.Table) -> ir.Table:
    """Beacon score: 100 * timing regularity * the mean of the other three sub-scores.

    RITA averages all four; a plain mean lets busy random traffic (resolvers forwarding,
    mail relays: many connections, every hour) reach ~60 with no periodicity at all, so
    here timing gates the rest.
    """
    coverage = _clip(p.active_hours / p.observed_hours)
    hours = (coverage + p.hour_evenness) / 2
    base = 100 * p.timing_score * (p.size_score + hours + p.count_score) / 3
    return p.mutate(coverage=coverage, hours_score=hours, beacon_score=base)


def _bowley(q1: ir.FloatingValue, q2: ir.FloatingValue, q3: ir.FloatingValue) -> ir.FloatingValue:
    """Bowley (quartile) skew in [-1, 1]; 0 when the quartiles are within 5 % of the median
    (the shape of so tight a distribution is measurement noise, not evidence)."""
    width = q3 - q1
    return (width > 0.05 * q2.abs()).ifelse((q3 + q1 - 2 * q2) / width, 0.0)


def _clip(value: ir.NumericValue) -> ir.FloatingValue:
    return ibis.greatest(ibis.least(value, 1.0), 0.0)


def _known_networks(ctx: Context) -> list[str]:
    """Destinations the inventory vouches for: expected transfers, continuity, suppliers."""
    inv = ctx.inventory
    nets = [n for t in inv.expected_transfers for n in t.dst]
    nets += [c.dst for c in inv.continuity if c.direction != "inbound"]
    nets += [n for p in inv.providers for n in p.sources]
    return [n for n in nets if not inv.is_internal(n.split("/")[0])]


def _duration(seconds: float, words: Words | None) -> str:
    if seconds < 10:
        return say(words, "beaconing.tenths", seconds=seconds)
    if seconds < 600:
        return say(words, "beaconing.seconds", seconds=seconds)
    return say(words, "beaconing.minutes", minutes=seconds / 60)

"""Egress volume: a host sends far more to the Internet than its own history and its peers do.

Bytes sent to external addresses are summed per internal host and hour, then over sliding
windows (1 h, 6 h, 24 h by default) so that a slow drip adds up. Each window total is set
against what the host is expected to send in such a window, ending at that hour:

* its own history (before the window): median + ``mad_factor`` x MAD of its window totals,
  the median taken at the same local hour of the week when there are enough weeks;
* its peers (same inventory role; unroled hosts: same /24), pooled window totals ending at
  the same local hour of the day (all hours when that cell is thin): median +
  ``mad_factor`` x MAD, and their ``peer_quantile`` when the pool is large enough for one
  host not to move it;
* an absolute floor (``floor_bytes``).

The expectation is the largest of these, so a host is flagged only when it sends several
times what both itself and its peers usually send at that time of day. The score is the
smaller of a ratio score and a volume score, lowered when the bytes are spread over many
destinations (a mail relay) and when a single burst goes to networks many hosts of the site
use (cloud office sync, updates; a sustained drip there keeps its score). One finding per
host: its most anomalous window. Exact medians and quantiles (``median``/``quantile``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar

import ibis
import ibis.expr.types as ir

from hemostat.detect.context import Context, tiebreak
from hemostat.detect.words import PLAIN, Words, moment, say
from hemostat.schema import Kind

#: the /24 of an IPv4 address, or the first three groups of an IPv6 address (as text)
PREFIX = r"^((?:\d+\.){3}|(?:[0-9a-fA-F]*:){3})"
HOUR_S = 3600
MAX_IDS = 50
MAIN_SHARE = 0.05  # a destination with this share of the top one's bytes is part of the act


def _help(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass(frozen=True)
class EgressVolume:
    id: ClassVar[str] = "egress_volume"
    kind: ClassVar[Kind] = Kind.EXFILTRATION
    attack: ClassVar[tuple[str, ...]] = ("T1048", "T1041", "T1030", "T1029")

    windows: tuple[int, ...] = field(
        default=(1, 6, 24), metadata=_help("Sliding window lengths, in hours.")
    )
    min_bytes: int = field(
        default=10_000_000,
        metadata=_help("Smallest window total reported; the volume score is 40 there."),
    )
    floor_bytes: int = field(
        default=1_000_000, metadata=_help("Smallest expected window total (absolute floor).")
    )
    min_ratio: float = field(
        default=3.0, metadata=_help("Window total / expected total needed to report.")
    )
    mad_factor: float = field(
        default=6.0, metadata=_help("Expected high = median + this many MADs (own, peers).")
    )
    peer_quantile: float = field(
        default=0.99, metadata=_help("Quantile of the peers' window totals also expected.")
    )
    min_peers: int = field(
        default=150,
        metadata=_help(
            "Hosts a peer group needs for its quantile to count (one host's "
            "samples must stay well under 1 - peer_quantile of the pool)."
        ),
    )
    min_quantile_samples: int = field(
        default=200, metadata=_help("Pooled samples needed for the peer quantile to count.")
    )
    min_hour_samples: int = field(
        default=30,
        metadata=_help("Peer samples at one hour of the day to judge by that hour alone."),
    )
    min_history_hours: int = field(
        default=12,
        metadata=_help("Hours of own history (idle ones too) needed for an own baseline."),
    )
    min_hod_samples: int = field(
        default=1,
        metadata=_help("Own samples at the same hour of the day to take their median."),
    )
    min_how_samples: int = field(
        default=3, metadata=_help("Own samples at the same hour of the week to use them.")
    )
    popular_fraction: float = field(
        default=0.02,
        metadata=_help("A destination /24 reached by this share of active hosts is popular."),
    )
    popular_min_hosts: int = field(
        default=10, metadata=_help("A popular /24 is reached by at least this many hosts.")
    )
    popular_factor: float = field(
        default=0.6,
        metadata=_help("Score reduction for a single burst wholly to popular networks."),
    )
    top: int = field(default=5, metadata=_help("Destinations kept as evidence."))
    min_score: float = field(default=30.0, metadata=_help("Weaker findings are not emitted."))
    max_score: float = field(
        default=95.0,
        metadata=_help("Score cap (an expected transfer, x0.5, then stays below 50)."),
    )

    # ---- expression --------------------------------------------------------------------

    def run(self, ctx: Context) -> ir.Table:
        span = timedelta(hours=max(self.windows))
        hourly = _hourly(ctx, ctx.egress(span + ctx.window.history), span)
        sums = self._sums(hourly)
        history = sums.filter(
            (sums.hour < _hour(ctx.window.start))
            & (sums.hour >= _hour(ctx.window.start - ctx.window.history))
        )
        groups = _groups(ctx, sums)
        own = _robust(history, ["host", "w"]).rename(own_n="n", own_median="median", own_mad="mad")
        best = self._best(
            sums.filter(sums.hour >= _hour(ctx.window.start)).join(groups, "host"),
            self._peers(sums.join(groups, "host")),
            own,
            _typical(history, "how", self.min_how_samples),
            _typical(history, "hod", self.min_hod_samples),
        )
        recent = ctx.egress(span)
        tops = self._destinations(recent, best)
        tops = tops.left_join(self._popularity(recent, sums, ctx), "prefix").drop("prefix_right")
        return self._score(best.join(self._summary(tops), "host"))

    def _sums(self, hourly: ir.Table) -> ir.Table:
        """Window totals (and the largest hour inside) ending at each hour, per host."""
        parts = []
        for w in sorted(set(self.windows)):
            win = ibis.window(group_by="host", order_by="hour", range=(-(w - 1), 0))
            sums = {
                "w": ibis.literal(w, "int64"),
                "total": hourly.bytes.sum().over(win),
                "peak": hourly.bytes.max().over(win),
            }
            parts.append(hourly.select("host", "hour", "how", "hod", **sums))
        return ibis.union(*parts)

    def _peers(self, pooled: ir.Table) -> ir.Table:
        """Per peer group, window and hour of the day: the expected high of a window total."""
        overall = self._peer_stats(pooled, ["peer_group", "w"])
        by_hour = self._peer_stats(pooled, ["peer_group", "w", "hod"])
        t = by_hour.join(overall, ["peer_group", "w"], lname="{name}_h", rname="{name}")
        use_hour = t.n_h >= self.min_hour_samples
        cols = ("n", "median", "mad", "q", "high", "hosts")
        return t.select(
            "peer_group", "w", "hod",
            peer_by_hour=use_hour,
            **{f"peer_{c}": ibis.ifelse(use_hour, t[f"{c}_h"], t[c]) for c in cols},
        )  # fmt: skip

    def _peer_stats(self, pooled: ir.Table, keys: list[str]) -> ir.Table:
        stats = _robust(pooled, keys)
        extra = pooled.group_by(keys).aggregate(
            q=pooled.total.quantile(self.peer_quantile).cast("float64"),
            hosts=pooled.host.nunique(),
        )
        stats = stats.join(extra, keys)
        high = stats.median + self.mad_factor * stats.mad
        trusted = (stats.hosts >= self.min_peers) & (stats.n >= self.min_quantile_samples)
        return stats.mutate(high=ibis.ifelse(trusted, ibis.greatest(high, stats.q), high))

    def _best(
        self, current: ir.Table, peers: ir.Table, own: ir.Table, how: ir.Table, hod: ir.Table
    ) -> ir.Table:
        """The most anomalous window of each host, with its baselines and ratio."""
        t = current.join(peers, ["peer_group", "w", "hod"])
        t = t.left_join(own, ["host", "w"]).drop("host_right", "w_right")
        t = t.left_join(how, ["host", "w", "how"]).drop("host_right", "w_right", "how_right")
        t = t.left_join(hod, ["host", "w", "hod"]).drop("host_right", "w_right", "hod_right")
        has_own = t.own_n.fill_null(0) >= self.min_history_hours
        own_ref = ibis.coalesce(t.how_median, t.hod_median, t.own_median)
        own_high = ibis.ifelse(has_own, own_ref + self.mad_factor * t.own_mad, 0.0)
        expected = ibis.greatest(float(self.floor_bytes), own_high, t.peer_high)
        t = t.mutate(
            has_own=has_own,
            own_high=own_high.cast("float64"),
            expected=expected.cast("float64"),
            ratio=(t.total / expected).cast("float64"),
        )
        t = t.filter((t.total >= self.min_bytes) & (t.ratio >= self.min_ratio))
        ratio_score = 20.0 + 15.0 * t.ratio.log2()
        volume_score = 40.0 + 15.0 * (t.total / self.min_bytes).log2()
        t = t.mutate(raw=ibis.least(ratio_score, volume_score, 100.0).cast("float64"))
        order = ibis.window(group_by="host", order_by=[t.raw.round(0).desc(), t.w, t.hour])
        t = t.mutate(pick=ibis.row_number().over(order))
        return t.filter(t.pick == 0).drop("pick")

    def _destinations(self, recent: ir.Table, best: ir.Table) -> ir.Table:
        """The ``top`` destinations of each host's best window, with bytes and flow ids."""
        sel = best.select(
            bhost="host",
            lo=((best.hour - best.w + 1) * HOUR_S).as_timestamp("s"),
            hi=((best.hour + 1) * HOUR_S).as_timestamp("s"),
        )
        inside = recent.join(
            sel, (recent.src_ip == sel.bhost) & (recent.ts >= sel.lo) & (recent.ts < sel.hi)
        )
        order = ibis.window(group_by="src_ip", order_by=[inside.bytes_out.desc(), "conn_id"])
        inside = inside.mutate(n=ibis.row_number().over(order))
        per_dst = inside.group_by(host=inside.src_ip, destination=inside.dst_ip).aggregate(
            dst_bytes=inside.bytes_out.fill_null(0).sum(),
            dst_flows=inside.count(),
            dst_port=inside.dst_port.argmax(tiebreak(inside.bytes_out, inside.dst_port)),
            prefix=inside.dst_ip.re_extract(PREFIX, 1).max(),
            first=inside.ts.min(),
            last=ibis.coalesce(inside.end_ts, inside.ts).max(),
            ids=inside.conn_id.collect(where=inside.n < MAX_IDS),
        )
        rank = ibis.window(group_by="host", order_by=[per_dst.dst_bytes.desc(), "destination"])
        per_dst = per_dst.mutate(rank=ibis.row_number().over(rank))
        return per_dst.filter(per_dst.rank < self.top)

    def _popularity(self, recent: ir.Table, sums: ir.Table, ctx: Context) -> ir.Table:
        """Per destination /24: how many internal hosts reached it, and is it popular."""
        pairs = recent.select("src_ip", "dst_ip").distinct()  # fewer rows to run a regex on
        pairs = pairs.select("src_ip", prefix=pairs.dst_ip.re_extract(PREFIX, 1))
        pop = pairs.group_by("prefix").aggregate(prefix_hosts=pairs.src_ip.nunique())
        active = sums.filter(sums.hour >= _hour(ctx.window.start - timedelta(hours=24)))
        need = ibis.greatest(
            self.popular_min_hosts, active.host.nunique().as_scalar() * self.popular_fraction
        )
        return pop.mutate(popular=pop.prefix_hosts >= need)

    def _summary(self, tops: ir.Table) -> ir.Table:
        popular = tops.popular.fill_null(False)
        # the activity's span: destinations that carry a real share of the bytes
        main = (tops.rank == 0) | (
            tops.dst_bytes >= MAIN_SHARE * tops.dst_bytes.max().over(group_by="host")
        )
        tops = tops.mutate(main=main)
        return tops.group_by("host").aggregate(
            top_bytes=tops.dst_bytes.sum(),
            popular_bytes=tops.dst_bytes.sum(where=popular),
            destination=tops.destination.argmin(tops.rank),
            dst_port=tops.dst_port.argmin(tops.rank),
            ts=tops.first.min(where=tops.main),
            end_ts=tops.last.max(where=tops.main),
            flows=tops.dst_flows.sum(),
            conn_ids=tops.ids.collect().flatten(),
            top_destinations=ibis.struct(
                {
                    "rank": tops.rank + 1, "destination": tops.destination,
                    "port": tops.dst_port, "bytes": tops.dst_bytes, "flows": tops.dst_flows,
                    "hosts_in_24": tops.prefix_hosts.fill_null(0), "popular": popular,
                }
            ).collect().sort(),
        )  # fmt: skip

    def _score(self, t: ir.Table) -> ir.Table:
        top_share = (t.top_bytes / t.total).clip(0.0, 1.0)
        popular_share = (t.popular_bytes.fill_null(0) / t.total).clip(0.0, 1.0)
        burst = (t.peak / t.total).clip(0.0, 1.0)
        score = (
            t.raw * (1.0 - self.popular_factor * popular_share * burst) * (0.5 + 0.5 * top_share)
        )
        t = t.mutate(
            score=ibis.least(score, self.max_score).cast("float64"),
            top_share=top_share.cast("float64"),
            popular_share=popular_share.cast("float64"),
            burst_share=burst.cast("float64"),
        )
        t = t.filter(t.score >= self.min_score)
        start = ((t.hour - t.w + 1) * HOUR_S).as_timestamp("s")
        return t.select(
            "host", "ts", "end_ts", "score", "destination", "dst_port", "flows",
            bytes_out=t.total.cast("int64"),
            hosts=ibis.array([t.host]),
            conn_ids=t.conn_ids[:MAX_IDS],
            key=t.host.concat(":", start.date().cast("string")),
            window_hours=t.w,
            window_start=start,
            window_end=((t.hour + 1) * HOUR_S).as_timestamp("s"),
            expected_bytes=t.expected.round().cast("int64"),
            ratio=t.ratio,
            baseline=ibis.ifelse(t.has_own, "own history", "peers"),
            own_median=t.own_median, own_mad=t.own_mad, own_hours=t.own_n.fill_null(0),
            how_median=t.how_median, hod_median=t.hod_median,
            peer_group=t.peer_group, peer_hosts=t.peer_hosts, peer_by_hour=t.peer_by_hour,
            peer_median=t.peer_median, peer_mad=t.peer_mad, peer_quantile=t.peer_q,
            peak_hour_bytes=t.peak, top_destinations=t.top_destinations,
            top_share=t.top_share, popular_share=t.popular_share, burst_share=t.burst_share,
        )  # fmt: skip

    # ---- explanation -------------------------------------------------------------------

    def explain(self, row: Mapping[str, Any], words: Words | None = None) -> str:
        tops = row.get("top_destinations") or []
        size = (words or PLAIN).size
        dests = ", ".join(
            say(
                words,
                "egress_volume.destination",
                destination=d["destination"],
                size=size(d["bytes"]),
            )
            for d in tops[:3]
        )
        ratio = float(row["ratio"])
        times = "times_many" if ratio >= 10 else "times_few"
        return say(
            words, "egress_volume.sentence",
            host=row["host"], size=size(row["bytes_out"]), hours=row["window_hours"],
            end=moment(words, row.get("window_end")),
            times=say(words, f"egress_volume.{times}", ratio=ratio),
            expected=size(row["expected_bytes"]), own=self._own_baseline(row, words),
            peers=self._peer_baseline(row, words), destinations=dests,
        )  # fmt: skip

    def _own_baseline(self, row: Mapping[str, Any], words: Words | None) -> str:
        if row.get("baseline") != "own history":
            return say(words, "egress_volume.no_own")
        size = (words or PLAIN).size
        figures = {"median": size(row.get("own_median")), "mad": size(row.get("own_mad"))}
        if row.get("how_median") is not None:
            return say(words, "egress_volume.own_week", typical=size(row["how_median"]), **figures)
        if row.get("hod_median") is not None:
            return say(words, "egress_volume.own_day", typical=size(row["hod_median"]), **figures)
        return say(words, "egress_volume.own", **figures)

    def _peer_baseline(self, row: Mapping[str, Any], words: Words | None) -> str:
        size = (words or PLAIN).size
        n = row.get("peer_hosts") or 0
        group = str(row.get("peer_group"))
        if group.startswith("net "):
            group = say(words, "egress_volume.net", prefix=group.removeprefix("net "))
        quantile = ""
        if n >= self.min_peers:
            quantile = say(
                words, "egress_volume.quantile",
                q=round(100 * self.peer_quantile), size=size(row.get("peer_quantile")),
            )  # fmt: skip
        return say(
            words, "egress_volume.peers",
            group=group, hosts=say(words, f"egress_volume.{'host' if n == 1 else 'hosts'}", n=n),
            hour=say(words, "egress_volume.at_hour") if row.get("peer_by_hour") else "",
            median=size(row.get("peer_median")), mad=size(row.get("peer_mad")), quantile=quantile,
        )  # fmt: skip


# ---- sub-expressions -----------------------------------------------------------------------


def _hour(ts: datetime) -> int:
    return int(ts.timestamp()) // HOUR_S


def _hour_of(ts: ir.TimestampValue) -> ir.IntegerValue:
    return (ts.epoch_seconds() // HOUR_S).cast("int64")


def _hourly(ctx: Context, flows: ir.Table, span: timedelta) -> ir.Table:
    """Bytes sent outside per host and UTC hour (``hour``: hours since the epoch), every hour
    of the range for every host that sent anything (0 when idle), with local hour of the
    week (``how``) and of the day (``hod``)."""
    sent = flows.group_by(host=flows.src_ip, hour=_hour_of(flows.ts)).aggregate(
        bytes=flows.bytes_out.fill_null(0).sum()
    )
    first = _hour(ctx.window.start - span - ctx.window.history)
    hours = ibis.memtable(
        {"hour": list(range(first, _hour(ctx.window.end - timedelta(microseconds=1)) + 1))},
        schema={"hour": "int64"},
    )
    hours = hours.filter(hours.hour >= sent.hour.min().as_scalar())  # from the first data on
    at = (hours.hour * HOUR_S).as_timestamp("s")
    hours = hours.mutate(how=ctx.hour_of_week(at), hod=ctx.local(at).hour())
    grid = sent.select("host").distinct().cross_join(hours)
    grid = grid.left_join(sent, ["host", "hour"]).drop("host_right", "hour_right")
    return grid.mutate(bytes=grid.bytes.fill_null(0))


def _typical(history: ir.Table, key: str, min_n: int) -> ir.Table:
    """Median window total of each host at the same ``key`` (hour of week or of day)."""
    stats = history.group_by("host", "w", key).aggregate(
        **{f"{key}_n": history.total.count(), f"{key}_median": history.total.median()}
    )
    stats = stats.filter(stats[f"{key}_n"] >= min_n)
    return stats.mutate(**{f"{key}_median": stats[f"{key}_median"].cast("float64")})


def _groups(ctx: Context, sums: ir.Table) -> ir.Table:
    """``host, peer_group``: the inventory role, else the host's /24."""
    hosts = sums.select("host").distinct()
    roles = ctx.roles
    t = hosts.left_join(roles, hosts.host == roles.ip)
    net = ibis.literal("net ").concat(t.host.re_extract(PREFIX, 1))
    role = ibis.ifelse(t.role.isnull() | (t.role == ""), net, t.role)
    return t.select("host", peer_group=role)


def _robust(t: ir.Table, keys: list[str]) -> ir.Table:
    """``keys, n, median, mad`` of ``t.total`` (MAD: median absolute deviation)."""
    med = t.group_by(keys).aggregate(n=t.total.count(), median=t.total.median())
    dev = t.join(med, keys)
    dev = dev.mutate(dev=(dev.total - dev.median).abs())
    mad = dev.group_by(keys).aggregate(mad=dev.dev.median())
    return med.join(mad, keys).mutate(
        median=ibis._.median.cast("float64"), mad=ibis._.mad.cast("float64")
    )

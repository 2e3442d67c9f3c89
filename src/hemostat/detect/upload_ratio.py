"""Upload ratio: a host starts pushing data, one-way, to a network it does not usually feed.

The producer-consumer ratio (Bullard & Gerth) of traffic, PCR = (out - in) / (out + in), is
≈ +1 for a pure upload, ≈ -0.5 for browsing, ≈ -1 for a download. For each internal host
and destination network (/24, or the first three groups of an IPv6 address) over the last
``span_hours``, the detector compares the pair's PCR with the most upload-like behaviour
already known as normal for it:

* the same pair in history (before the look-back);
* the host's other Internet traffic (history and look-back, this network left out);
* the other hosts of its inventory role (unroled: of its /24), pooled;
* the network itself, when several other hosts of the site upload to it (cloud office sync).

A pair whose PCR is near +1 with a significant volume, ``min_shift`` above all of these, is
reported. Scores stay moderate (at most ``max_score``): the detector corroborates volume and
destination findings rather than raising incidents alone, and an inventory expected transfer
(halved by the runner) then stays below the corroboration bar of 30.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, ClassVar

import ibis
import ibis.expr.types as ir

from hemostat.detect.context import Context, tiebreak
from hemostat.detect.words import PLAIN, Words, say
from hemostat.schema import Kind

#: the /24 of an IPv4 address, or the first three groups of an IPv6 address (as text)
PREFIX = r"^((?:\d+\.){3}|(?:[0-9a-fA-F]*:){3})"
MAX_IDS = 50
NO_BASELINE = -1.0  # a pure download: nothing upload-like is known


def _help(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass(frozen=True)
class UploadRatio:
    id: ClassVar[str] = "upload_ratio"
    kind: ClassVar[Kind] = Kind.EXFILTRATION
    attack: ClassVar[tuple[str, ...]] = ("T1048", "T1567")

    span_hours: int = field(
        default=6, metadata=_help("Look-back over which a pair's bytes add up, in hours.")
    )
    min_bytes: int = field(
        default=5_000_000, metadata=_help("Bytes a host must send to one network to be judged.")
    )
    min_pcr: float = field(
        default=0.8, metadata=_help("PCR of the pair needed (≈ +1: pure upload).")
    )
    min_shift: float = field(
        default=0.6, metadata=_help("PCR above the most upload-like known baseline needed.")
    )
    baseline_bytes: int = field(
        default=1_000_000,
        metadata=_help("Traffic (out + in) a baseline needs before its PCR is trusted."),
    )
    common_hosts: int = field(
        default=3,
        metadata=_help("Other hosts uploading to a network that make it a common upload place."),
    )
    max_score: float = field(
        default=58.0,
        metadata=_help("Score cap: this detector corroborates; it does not raise alone."),
    )
    top: int = field(default=5, metadata=_help("Destination addresses kept as evidence."))

    # ---- expression --------------------------------------------------------------------

    def run(self, ctx: Context) -> ir.Table:
        addresses = self._addresses(ctx)
        t = self._baselines(ctx, _networks(addresses))
        t = t.filter(t.shift >= self.min_shift)
        return self._score(t.join(self._evidence(addresses, t), ["host", "prefix"]))

    def _addresses(self, ctx: Context) -> ir.Table:
        """Per host and destination address: bytes each way in the look-back and before, and
        the look-back's first and last flow and largest flow id (one scan of the flows)."""
        span = timedelta(hours=self.span_hours)
        flows = ctx.egress(span + ctx.window.history)
        cur = flows.ts >= ctx.window.start - span
        out, inb = flows.bytes_out.fill_null(0), flows.bytes_in.fill_null(0)
        return flows.group_by(host=flows.src_ip, ip=flows.dst_ip).aggregate(
            out_cur=out.sum(where=cur).fill_null(0),
            in_cur=inb.sum(where=cur).fill_null(0),
            out_hist=out.sum(where=~cur).fill_null(0),
            in_hist=inb.sum(where=~cur).fill_null(0),
            flows=flows.count(where=cur),
            first=flows.ts.min(where=cur),
            last=ibis.coalesce(flows.end_ts, flows.ts).max(where=cur),
            port=flows.dst_port.argmax(tiebreak(out, flows.dst_port), where=cur),
            largest=flows.conn_id.argmax(tiebreak(out, flows.conn_id), where=cur),
        )

    def _baselines(self, ctx: Context, pairs: ir.Table) -> ir.Table:
        """Each candidate pair (a significant, upload-like look-back) with its PCR, the four
        baselines and the shift above the largest."""
        host = pairs.group_by("host").aggregate(h_out=_total_out(pairs), h_in=_total_in(pairs))
        host = host.join(_groups(ctx, host), "host")
        role = host.group_by("peer_group").aggregate(g_out=host.h_out.sum(), g_in=host.h_in.sum())
        p_out, p_in = pairs.out_cur + pairs.out_hist, pairs.in_cur + pairs.in_hist
        uploads = pairs.filter(
            (_pcr(p_out, p_in, 0) >= self.min_pcr) & (p_out >= self.baseline_bytes)
        )
        network = uploads.group_by("prefix").aggregate(
            n_up=uploads.count(), n_out=_total_out(uploads), n_in=_total_in(uploads)
        )
        pcr = _pcr(pairs.out_cur, pairs.in_cur, 0)
        t = pairs.filter((pairs.out_cur >= self.min_bytes) & (pcr >= self.min_pcr))
        t = t.join(host, "host").join(role, "peer_group")
        t = t.left_join(network, "prefix").drop("prefix_right")
        own_out, own_in = t.out_cur + t.out_hist, t.in_cur + t.in_hist
        is_up = (_pcr(own_out, own_in, 0) >= self.min_pcr) & (own_out >= self.baseline_bytes)
        others = t.n_up.fill_null(0) - is_up.cast("int64")
        net_out = t.n_out.fill_null(0) - ibis.ifelse(is_up, own_out, 0)
        net_in = t.n_in.fill_null(0) - ibis.ifelse(is_up, own_in, 0)
        t = t.mutate(
            pcr=_pcr(t.out_cur, t.in_cur, 0),
            pair_pcr=_pcr(t.out_hist, t.in_hist, self.baseline_bytes),
            host_pcr=_pcr(t.h_out - own_out, t.h_in - own_in, self.baseline_bytes),
            role_pcr=_pcr(t.g_out - t.h_out, t.g_in - t.h_in, self.baseline_bytes),
            network_pcr=ibis.ifelse(others >= self.common_hosts, _pcr(net_out, net_in, 0), None),
            network_uploaders=others,
        )
        baselines = (t.pair_pcr, t.host_pcr, t.role_pcr, t.network_pcr)
        expected = ibis.greatest(*(b.fill_null(NO_BASELINE) for b in baselines))
        return t.mutate(expected_pcr=expected, shift=t.pcr - expected)

    def _evidence(self, addresses: ir.Table, found: ir.Table) -> ir.Table:
        """The reported pairs' addresses (largest first), times and largest flow ids."""
        keys = found.select(fhost="host", fprefix="prefix")
        t = addresses.join(
            keys, (addresses.host == keys.fhost) & addresses.ip.startswith(keys.fprefix)
        )
        t = t.filter(t.flows > 0)
        rank = ibis.window(group_by=["host", "fprefix"], order_by=[t.out_cur.desc(), t.ip])
        t = t.mutate(rank=ibis.row_number().over(rank))
        return t.group_by("host", prefix=t.fprefix).aggregate(
            ts=t.first.min(),
            end_ts=t.last.max(),
            flows=t.flows.sum(),
            destination=t.ip.argmin(t.rank),
            dst_port=t.port.argmin(t.rank),
            conn_ids=t.largest.collect(where=t.rank < MAX_IDS),
            addresses=ibis.struct(
                {
                    "rank": t.rank + 1, "destination": t.ip, "port": t.port,
                    "bytes_out": t.out_cur, "bytes_in": t.in_cur, "flows": t.flows,
                    "largest_flow": t.largest,
                }
            ).collect(where=t.rank < self.top).sort(),
        )  # fmt: skip

    def _score(self, t: ir.Table) -> ir.Table:
        room = 2.0 - self.min_shift
        shift_part = 25.0 + 15.0 * ((t.shift - self.min_shift) / room).clip(0.0, 1.0)
        volume_part = 10.0 * (t.out_cur / self.min_bytes).log10()
        score = ibis.least(shift_part + volume_part, self.max_score)
        return t.select(
            "host", "ts", "end_ts", "destination", "dst_port", "flows",
            score=score.cast("float64"),
            bytes_out=t.out_cur.cast("int64"),
            bytes_in=t.in_cur.cast("int64"),
            hosts=ibis.array([t.host]),
            conn_ids="conn_ids",
            key=t.prefix,
            network=ibis.ifelse(
                t.prefix.contains(":"), t.prefix.concat(":/48"), t.prefix.concat("0/24")
            ),
            pcr=t.pcr.cast("float64"),
            expected_pcr=t.expected_pcr.cast("float64"),
            shift=t.shift.cast("float64"),
            pair_history_pcr=t.pair_pcr, host_other_pcr=t.host_pcr,
            peer_group=t.peer_group, peer_pcr=t.role_pcr,
            network_pcr=t.network_pcr, network_uploaders=t.network_uploaders,
            addresses=t.addresses,
        )  # fmt: skip

    # ---- explanation -------------------------------------------------------------------

    def explain(self, row: Mapping[str, Any], words: Words | None = None) -> str:
        labels = (
            (say(words, "upload_ratio.pair"), "pair_history_pcr"),
            (say(words, "upload_ratio.other"), "host_other_pcr"),
            (say(words, "upload_ratio.peers", group=row.get("peer_group")), "peer_pcr"),
            (say(words, "upload_ratio.network"), "network_pcr"),
        )
        known = [
            say(words, "upload_ratio.item", label=label, value=float(row[col]))
            for label, col in labels
            if row.get(col) is not None
        ]
        basis = (
            say(words, "upload_ratio.basis", items=", ".join(known))
            if known
            else say(words, "upload_ratio.no_basis")
        )
        size = (words or PLAIN).size
        return say(
            words, "upload_ratio.sentence",
            host=row["host"], size=size(row["bytes_out"]), destination=row["destination"],
            received=size(row.get("bytes_in")), pcr=float(row["pcr"]), basis=basis,
            shift=float(row["shift"]),
        )  # fmt: skip


# ---- sub-expressions -----------------------------------------------------------------------


def _networks(addresses: ir.Table) -> ir.Table:
    """The per-address figures summed per destination network."""
    t = addresses.mutate(prefix=addresses.ip.re_extract(PREFIX, 1))
    return t.group_by("host", "prefix").aggregate(
        out_cur=t.out_cur.sum(), in_cur=t.in_cur.sum(),
        out_hist=t.out_hist.sum(), in_hist=t.in_hist.sum(),
    )  # fmt: skip


def _total_out(t: ir.Table) -> ir.NumericValue:
    return (t.out_cur + t.out_hist).sum()


def _total_in(t: ir.Table) -> ir.NumericValue:
    return (t.in_cur + t.in_hist).sum()


def _pcr(out: ir.NumericValue, inb: ir.NumericValue, least: int) -> ir.FloatingValue:
    """(out - in) / (out + in), or NULL when fewer than ``least`` bytes (or none) moved."""
    total = (out + inb).cast("float64")
    return ibis.ifelse((total > 0) & (total >= least), (out - inb) / total, None).cast("float64")


def _groups(ctx: Context, hosts: ir.Table) -> ir.Table:
    """``host, peer_group``: the inventory role, else the host's /24."""
    hosts = hosts.select("host").distinct()
    roles = ctx.roles
    t = hosts.left_join(roles, hosts.host == roles.ip)
    net = ibis.literal("net ").concat(t.host.re_extract(PREFIX, 1))
    role = ibis.ifelse(t.role.isnull() | (t.role == ""), net, t.role)
    return t.select("host", peer_group=role)

"""Threat intel: flows to or from listed addresses and DNS lookups of listed names.

The indicator file (``indicators``: a path; empty = the detector does nothing) is either a
plain list — one IP address, CIDR range, domain name or URL per line, ``#`` comments — or a
STIX 2.1 bundle (indicators with ``[ipv4-addr:value = '…']``, ``[domain-name:value = '…']``,
``[url:value = '…']`` patterns, OR-combined; ``ipv4-addr``/``ipv6-addr``/``domain-name``/``url``
objects, also inside observed-data); read by ``hemostat.intel``. The indicators
become small memtables joined to the *distinct* addresses and names of the window, never to
raw rows; only the few matching flows are then fetched.

A flow in which the internal host sent data to a listed address (or to an address a listed
name resolved to) scores high; a contact without payload, or a lookup alone, medium.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from hemostat.detect.context import NOT_ROUTED, Context, match_network, tiebreak
from hemostat.detect.words import PLAIN, Words, say
from hemostat.intel import Indicator, load
from hemostat.schema import Kind

#: the columns every result has (an empty memtable of these when there is nothing to match)
SCHEMA = ibis.schema({
    "host": "string", "destination": "string", "ts": "timestamp('UTC')",
    "end_ts": "timestamp('UTC')", "score": "float64", "bytes_out": "int64", "dst_port": "int32",
    "conn_ids": "array<string>", "indicator": "string", "source": "string", "match": "string",
    "direction": "string", "bytes_in": "int64", "flows": "int64", "lookups": "int64",
    "name": "string", "names": "int64", "addresses": "array<string>", "ports": "array<int32>",
})  # fmt: skip


@dataclass(frozen=True)
class ThreatIntel:
    id: ClassVar[str] = "threat_intel"
    kind: ClassVar[Kind] = Kind.THREAT_INTEL
    attack: ClassVar[tuple[str, ...]] = ("T1071", "T1041")

    indicators: str = field(
        default="",
        metadata={"help": "Indicator file: a plain list (IP, CIDR, domain per line) or a "
                  "STIX 2.1 bundle (JSON). Empty: the detector does nothing."},
    )  # fmt: skip
    sent_score: float = field(
        default=75.0,
        metadata={"help": "Score of a match in which the internal host sent data (rises "
                  "with the volume up to 95)."},
    )  # fmt: skip
    large_bytes: int = field(
        default=100_000_000,
        metadata={"help": "Bytes sent to an indicator that earn the top score (95)."},
    )
    contact_score: float = field(
        default=50.0,
        metadata={"help": "Score of a flow match without data from the internal host "
                  "(an attempt, or a contact the indicator opened)."},
    )  # fmt: skip
    inbound_min_bytes: int = field(
        default=1_000_000,
        metadata={"help": "A contact the indicator opened counts as data sent only when the "
                  "internal host answered with at least this many bytes."},
    )  # fmt: skip
    lookup_score: float = field(
        default=45.0,
        metadata={"help": "Score of a DNS lookup of an indicator with no flow carrying data."},
    )
    tunnel_names: int = field(
        default=100,
        metadata={"help": "Distinct names under one listed domain, from one host, that make "
                  "its lookups a tunnel: the names' text then counts as data sent."},
    )  # fmt: skip

    # ---- expression --------------------------------------------------------------------------

    def run(self, ctx: Context) -> ir.Table:
        found = _outside(ctx, load(Path(self.indicators))) if self.indicators else []
        if not found:
            return ibis.memtable(SCHEMA.to_pyarrow().empty_table())
        addresses = _addresses(ctx)
        listed = _match_addresses(addresses, found)
        hits = _match_names(_lookups(ctx, "ts", "src_ip", "query", "answers"), found)
        resolved = hits.select("host", "indicator", "source", ip=hits.answers.unnest())
        resolved = resolved.filter(
            resolved.ip.re_search(r"^[0-9.]+$|^[0-9a-fA-F:]*:[0-9a-fA-F:.]*$")
        )
        resolved = resolved.distinct()  # addresses only: TXT answers of a tunnel are not
        near = _near(ctx, listed.select("ip").union(resolved.select("ip")))
        answers = _lookups(ctx, "answers", "query", "src_ip", "ts")
        parts = [
            self._address_hits(near, listed),
            self._name_hits(near, hits, resolved),
            self._answer_hits(answers, listed, near),
        ]
        return ibis.union(*[p.select(*SCHEMA.names).cast(SCHEMA) for p in parts])

    def _address_hits(self, near: ir.Table, listed: ir.Table) -> ir.Table:
        """Flows to or from a listed address, per (internal host, address)."""
        rows = near.join(listed, near.remote == listed.ip)
        per = _flow_totals(rows, ["host", "remote", "indicator", "source"])
        return per.mutate(
            destination=per.remote, score=self._score(self._sent(per), self.contact_score),
            match=ibis.literal("flow"), lookups=ibis.null("int64"), name=ibis.null("string"),
            names=ibis.null("int64"),
        )  # fmt: skip

    def _name_hits(self, near: ir.Table, hits: ir.Table, resolved: ir.Table) -> ir.Table:
        """Lookups of a listed name per (host, indicator), with the flows the host then had
        with the addresses it got back; many distinct names are a tunnel: their text is sent."""
        per = hits.group_by(["host", "indicator"]).aggregate(
            source=hits.source.min(), lookups=hits.count(), name=hits.query.min(),
            names=hits.query.nunique(), ts=hits.ts.min(), end_ts=hits.ts.max(),
            query_bytes=hits.query.length().sum().cast("int64"),
        )  # fmt: skip
        rows = near.join(
            resolved.drop("source"), [near.host == resolved.host, near.remote == resolved.ip]
        )
        totals = _flow_totals(rows, ["host", "indicator"]).rename(flow_ts="ts", flow_end="end_ts")
        per = per.left_join(totals, ["host", "indicator"]).drop("host_right", "indicator_right")
        tunnel = per.names >= self.tunnel_names
        sent = self._sent(per).fill_null(0) + ibis.cases((tunnel, per.query_bytes), else_=0)
        flows = per.flows.fill_null(0)
        match = ibis.cases(
            (flows > 0, "lookup+flow"), (tunnel, "tunnel"), else_=ibis.literal("lookup")
        )
        floor = ibis.cases((flows > 0, self.contact_score), else_=self.lookup_score)
        return per.mutate(
            destination=per.indicator,
            ts=ibis.least(per.ts, per.flow_ts.fill_null(per.ts)),
            end_ts=ibis.greatest(per.end_ts, per.flow_end.fill_null(per.end_ts)),
            score=self._score(sent, floor),
            match=match,
            bytes_out=sent,
            flows=flows,
        )

    def _answer_hits(self, dns: ir.Table, listed: ir.Table, near: ir.Table) -> ir.Table:
        """Lookups answered with a listed address the host then had no flow with."""
        rows = dns.select("ts", host=dns.src_ip, query=dns.query.lower(), ip=dns.answers.unnest())
        rows = rows.join(listed, "ip")
        per = rows.group_by(["host", "ip"]).aggregate(
            indicator=rows.indicator.min(), source=rows.source.min(), lookups=rows.count(),
            name=rows.query.min(), names=rows.query.nunique(), ts=rows.ts.min(),
            end_ts=rows.ts.max(),
        )  # fmt: skip
        per = per.anti_join(near.select("host", ip=near.remote).distinct(), ["host", "ip"])
        return per.mutate(
            destination=per.ip, score=ibis.literal(self.lookup_score),
            match=ibis.literal("answer"), bytes_out=ibis.literal(0, "int64"),
            dst_port=ibis.null("int32"), conn_ids=ibis.literal([], "array<string>"),
            direction=ibis.null("string"), bytes_in=ibis.literal(0, "int64"),
            flows=ibis.literal(0, "int64"), addresses=ibis.array([per.ip]),
            ports=ibis.literal([], "array<int32>"),
        )  # fmt: skip

    def _sent(self, per: ir.Table) -> ir.IntegerValue:
        """Bytes the internal host sent: all of them when it opened the flows, those of its
        answers only above ``inbound_min_bytes`` when the listed party did."""
        return ibis.cases(
            (per.direction == "outbound", per.bytes_out),
            (per.bytes_out >= self.inbound_min_bytes, per.bytes_out),
            else_=ibis.literal(0, "int64"),
        ).fill_null(0)

    def _score(self, sent: ir.IntegerValue, floor: Any) -> ir.FloatingValue:
        """``sent_score`` and up (log of the bytes, 1 kB to ``large_bytes``) when data was
        sent, else ``floor``."""
        span = math.log10(max(self.large_bytes, 1001) / 1000)
        volume = (ibis.greatest(sent, 1000) / 1000).cast("float64").log10() / span
        high = self.sent_score + (95.0 - self.sent_score) * ibis.least(volume, 1.0)
        return ibis.cases((sent > 0, high), else_=floor).cast("float64")

    # ---- explanation -------------------------------------------------------------------------

    def explain(self, row: Mapping[str, Any], words: Words | None = None) -> str:
        said = {
            "host": row["host"], "destination": row["destination"],
            "flows": row.get("flows") or 0, "size": (words or PLAIN).size(row["bytes_out"]),
            "listed": say(
                words, "threat_intel.listed", indicator=row["indicator"], source=row["source"]
            ),
        }  # fmt: skip
        if row["match"] == "flow":
            outbound = row.get("direction") == "outbound"
            return say(words, f"threat_intel.{'sent' if outbound else 'received'}", **said)
        names = row.get("names") or 1
        others = say(words, "threat_intel.others", n=names - 1) if names > 1 else ""
        said["looked"] = say(
            words, "threat_intel.looked",
            host=row["host"], name=row["name"], others=others, lookups=row["lookups"],
        )  # fmt: skip
        said["addresses"] = ", ".join(row.get("addresses") or [])
        case = {"answer": "answer", "lookup+flow": "flows", "tunnel": "tunnel"}
        return say(words, f"threat_intel.{case.get(row['match'], 'lookup')}", **said)


# ---- matching ---------------------------------------------------------------------------------


def _outside(ctx: Context, found: list[Indicator]) -> list[Indicator]:
    """Indicators that can name an Internet party: site and unrouted addresses are dropped
    here, in Python, so the data side needs no address test before matching."""
    local = [ipaddress.ip_network(n, strict=False) for n in (*ctx.inventory.internal, *NOT_ROUTED)]
    kept = []
    for indicator in found:
        if indicator.kind != "domain":
            net = ipaddress.ip_network(indicator.value)
            if any(net.version == n.version and net.subnet_of(n) for n in local):  # type: ignore[arg-type]
                continue
        kept.append(indicator)
    return kept


def _addresses(ctx: Context) -> ir.Table:
    """Every distinct address of the window: flow ends and DNS answers."""
    flows = ctx.current(ctx.flows.select("ts", "src_ip", "dst_ip"))
    answers = _lookups(ctx, "ts", "src_ip", "answers")
    return (
        flows.select(ip=flows.dst_ip)
        .union(flows.select(ip=flows.src_ip))
        .union(answers.select(ip=answers.answers.unnest()))
        .distinct()
    )


def _lookups(ctx: Context, *columns: str) -> ir.Table:
    """The window's DNS rows asked by site hosts, narrowed to ``columns`` first. Each use
    names its columns (in its own order): its own cheap scan, where one shared table would
    be a copy of the whole window materialised by the engine."""
    dns = ctx.current(ctx.dns.select(*columns))
    return dns.filter(ctx.internal(dns.src_ip))


def _near(ctx: Context, wanted: ir.Table) -> ir.Table:
    """Flows with a wanted address, seen from the other side: host, remote, direction and
    bytes each way (no address test on the wide side: the matched address is the remote).

    The addresses go in as one list unnested — a build side the engine knows to be small,
    so each semi-join becomes a filter inside the scan; each side scans its own projection
    (as in :func:`_lookups`)."""
    one = wanted.aggregate(ips=wanted.ip.collect(distinct=True))
    small = one.select(ip=one.ips.unnest())
    columns = ("ts", "end_ts", "src_ip", "dst_ip", "dst_port", "bytes_out", "bytes_in", "conn_id")
    out = ctx.current(ctx.flows.select(*columns))
    out = out.join(small, out.dst_ip == small.ip, how="semi").select(
        "ts", "end_ts", "dst_port", "conn_id", host=out.src_ip, remote=out.dst_ip,
        direction=ibis.literal("outbound"), sent=out.bytes_out, received=out.bytes_in,
    )  # fmt: skip
    into = ctx.current(ctx.flows.select(*reversed(columns)))
    into = into.join(small, into.src_ip == small.ip, how="semi").select(
        "ts", "end_ts", "dst_port", "conn_id", host=into.dst_ip, remote=into.src_ip,
        direction=ibis.literal("inbound"), sent=into.bytes_in, received=into.bytes_out,
    )  # fmt: skip
    return out.union(into)


def _flow_totals(rows: ir.Table, keys: list[str]) -> ir.Table:
    return rows.group_by(keys).aggregate(
        ts=rows.ts.min(), end_ts=rows.end_ts.max(), bytes_out=rows.sent.sum(),
        bytes_in=rows.received.sum(), flows=rows.count(), direction=rows.direction.max(),
        dst_port=rows.dst_port.argmax(tiebreak(rows.sent, rows.dst_port)),
        ports=rows.dst_port.collect(distinct=True),
        conn_ids=rows.conn_id.collect(distinct=True),
        addresses=rows.remote.collect(distinct=True),
    )  # fmt: skip


def _match_addresses(addresses: ir.Table, found: list[Indicator]) -> ir.Table:
    """``ip, indicator, source`` for the distinct addresses a listed address or range holds."""
    ip = addresses.ip
    exact = [i for i in found if i.kind == "ip"]
    nets = [(i, ipaddress.ip_network(i.value)) for i in found if i.kind == "net"]
    parts = [
        addresses.filter(ibis.literal(False)).mutate(
            indicator=ibis.literal(""), source=ibis.literal("")
        )
    ]
    if exact:
        table = _memtable(exact)
        parts.append(addresses.join(table, ip == table.value).drop("value"))
    v4 = [(i, n) for i, n in nets if n.version == 4]
    if v4:
        ranges = ibis.memtable(pa.table({
            "low": pa.array([int(n.network_address) for _, n in v4], pa.int64()),
            "high": pa.array([int(n.broadcast_address) for _, n in v4], pa.int64()),
            "indicator": [i.value for i, _ in v4], "source": [i.source for i, _ in v4],
        }))  # fmt: skip
        numbered = addresses.mutate(number=_number(ip))  # NULL for IPv6: never in a range
        joined = numbered.join(
            ranges, [numbered.number >= ranges.low, numbered.number <= ranges.high]
        )
        parts.append(joined.select("ip", "indicator", "source"))
    for indicator, net in ((i, n) for i, n in nets if n.version == 6):
        parts.append(
            addresses.filter(match_network(ip, net)).mutate(
                indicator=ibis.literal(indicator.value), source=ibis.literal(indicator.source)
            )
        )
    matched = ibis.union(*parts)
    return matched.group_by("ip").aggregate(
        indicator=matched.indicator.min(), source=matched.source.argmin(matched.indicator)
    )


def _match_names(dns: ir.Table, found: list[Indicator]) -> ir.Table:
    """DNS rows whose name is a listed domain or below one: ``host, ts, query, answers,
    indicator, source``."""
    domains = [i for i in found if i.kind == "domain"]
    rows = dns.select("ts", "answers", host=dns.src_ip, query=dns.query.lower())
    names = rows.select("query").distinct()
    parts = [
        names.filter(ibis.literal(False)).mutate(
            indicator=ibis.literal(""), source=ibis.literal("")
        )
    ]
    for depth in sorted({i.value.count(".") + 1 for i in domains}):
        table = _memtable([i for i in domains if i.value.count(".") + 1 == depth])
        suffix = names.query.re_extract(rf"((?:[^.]+\.){{{depth - 1}}}[^.]+)\.?$", 1)
        keyed = names.mutate(suffix=suffix)
        parts.append(
            keyed.join(table, keyed.suffix == table.value).select("query", "indicator", "source")
        )
    matched = ibis.union(*parts)
    return rows.join(matched, "query")


def _memtable(items: list[Indicator]) -> ir.Table:
    values = pa.array([i.value for i in items], pa.string())
    sources = pa.array([i.source for i in items], pa.string())
    return ibis.memtable(pa.table({"value": values, "indicator": values, "source": sources}))


def _number(ip: ir.StringValue) -> ir.IntegerValue:
    """An IPv4 address as a number (the four octets by regex, portable to Spark)."""
    octet = [
        ip.re_extract(r"^(\d+)\.(\d+)\.(\d+)\.(\d+)$", k).try_cast("int64") for k in (1, 2, 3, 4)
    ]
    return octet[0] * 16_777_216 + octet[1] * 65_536 + octet[2] * 256 + octet[3]

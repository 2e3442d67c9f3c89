"""DNS tunnel: one internal host asks a great many unique, long, encoded-looking names under
one registered domain that (almost) nobody else on the site asks for.

Per registered domain and querying host (over the window plus ``lookback_hours``):
unique names, the characters they carry below the registered domain (a lower bound of what
left), their length, character entropy and charset, query volume and peak rate, query types.
A tunnel's names are unique to its host; look-alikes (CDN and telemetry names that look
random) are asked by many hosts, so the number of hosts asking the domain is a gate.

The *registered domain* is approximated without a public-suffix list: the last two labels,
or the last three when the second-to-last is a short public second level (``co``, ``com``,
``gouv``, ``ac``…, field ``public_second_levels``) under a two-letter country code
(``bbc.co.uk``, ``ameli.gouv.fr``, ``x.com.br``). Reverse lookups, mDNS and local names
(``ignored_suffixes``) and DNSBL-style names (a dotted IPv4 address first) are left out.

Resolvers re-ask their clients' names: a resolver (inventory role ``dns``, an internal
address asked by at least ``resolver_min_clients`` internal hosts, or a host a candidate
sent the domain's queries to) is judged only when none of its clients is seen asking the
domain, so the finding names the original client.
"""

from __future__ import annotations

import math
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, ClassVar

import ibis
import ibis.expr.types as ir

from hemostat.detect.context import Context
from hemostat.detect.words import PLAIN, Words, say
from hemostat.schema import Kind

#: characters whose frequencies make the entropy (any other character counts as one symbol)
ALPHABET = string.ascii_lowercase + string.digits + "-_"
#: a DNSBL-style name starts with a dotted IPv4 address (``4.3.2.1.zen.spamhaus.org``)
DNSBL = r"^[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\."
PAIR = ("host", "domain")


def _help(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass(frozen=True)
class DnsTunnel:
    id: ClassVar[str] = "dns_tunnel"
    kind: ClassVar[Kind] = Kind.DNS_TUNNEL
    attack: ClassVar[tuple[str, ...]] = ("T1071.004", "T1572", "T1048.003")

    lookback_hours: float = field(
        default=1.0, metadata=_help("Queries this long before the window count too.")
    )
    min_unique: int = field(
        default=100, metadata=_help("Unique names under one domain from one host, at least.")
    )
    min_name_bytes: int = field(
        default=3_000,
        metadata=_help("Characters carried below the registered domain by those unique names."),
    )
    min_peak_5min: int = field(
        default=30, metadata=_help("Queries in the busiest 5 minutes, at least (Elastic: 30).")
    )
    max_domain_hosts: int = field(
        default=5,
        metadata=_help("A domain asked by more internal hosts is a shared service (CDN, AV)."),
    )
    resolver_min_clients: int = field(
        default=3, metadata=_help("An internal address asked by this many hosts is a resolver.")
    )
    min_score: float = field(default=30.0, metadata=_help("Weaker findings are not emitted."))
    history_days: int = field(
        default=7, metadata=_help("Days searched for the host's earlier queries to the domain.")
    )
    sample_names: int = field(
        default=50, metadata=_help("Unique names (the longest) whose entropy is measured.")
    )
    common_qtypes: tuple[str, ...] = field(
        default=("A", "AAAA", "HTTPS", "SVCB", "PTR", "SRV", "SOA", "NS"),
        metadata=_help("Query types of everyday lookups; the others (TXT, NULL…) add to score."),
    )
    public_second_levels: tuple[str, ...] = field(
        default=("co", "com", "gov", "gouv", "ac", "org", "net", "edu", "nhs", "ne", "or",
                 "go", "mil", "sch", "ltd", "plc", "gob", "nic", "nom"),
        metadata=_help("Second-level labels that, under a 2-letter TLD, are public suffixes."),
    )  # fmt: skip
    ignored_suffixes: tuple[str, ...] = field(
        default=(".arpa", ".local", ".localdomain", ".lan", ".home", ".internal",
                 ".localhost", ".invalid"),
        metadata=_help("Names ending so (reverse lookups, mDNS, local names) are ignored."),
    )  # fmt: skip

    # ---- expression ----------------------------------------------------------------------

    def run(self, ctx: Context) -> ir.Table:
        span = timedelta(hours=self.lookback_hours)
        current = ctx.current(ctx.dns, span)
        pairs = self._pairs(ctx, current)
        rows = self._rows(current.filter(current.src_ip.isin(pairs.host)))
        rows = rows.join(pairs, PAIR)
        q = rows.query
        rows = rows.mutate(name=ibis.ifelse(q.endswith("."), q.substr(0, q.length() - 1), q))
        rows = rows.filter(~rows.name.re_search(DNSBL)).mutate(
            sub_len=(rows.name.length() - rows.domain.length() - 1).clip(lower=0)
        )
        figures = self._figures(ctx, rows)
        figures = figures.filter(
            (figures.unique_names >= self.min_unique)
            & (figures.name_bytes >= self.min_name_bytes)
            & (figures.peak_5min >= self.min_peak_5min)
        )
        forwarders = rows.filter(ctx.internal(rows.dst_ip)).select(
            fwd=rows.dst_ip, fwd_domain=rows.domain
        )
        figures = figures.anti_join(
            forwarders.distinct(),
            [figures.host == forwarders.fwd, figures.domain == forwarders.fwd_domain],
        )
        scored = self._score(self._with_history(ctx, figures, pairs, span))
        return scored.filter(scored.score >= self.min_score)

    def _rows(self, dns: ir.Table, lower: bool = True) -> ir.Table:
        """Queries with ``host`` and registered ``domain`` (null for a single label): two
        regexes per query, the cost of the whole detector on a big site (``lower=False``
        leaves the domain's case alone, for lowering after an aggregation)."""
        levels = "|".join(self.public_second_levels)
        three = dns.query.re_extract(rf"(?i)([^.]+\.(?:{levels})\.[a-z]{{2}})\.?$", 1)
        two = dns.query.re_extract(r"([^.]+\.[^.]+)\.?$", 1)
        domain = three.nullif("").coalesce(two.nullif(""))
        return dns.mutate(host=dns.src_ip, domain=domain.lower() if lower else domain)

    def _ignored(self, domain: ir.StringValue) -> ir.BooleanValue:
        """Reverse lookups, local names, addresses (a test on domains, not on queries)."""
        ends = ibis.or_(*(domain.endswith(s) for s in self.ignored_suffixes))
        return domain.isnull() | ends | domain.re_search(r"^[0-9.]+$")

    def _resolvers(self, ctx: Context, current: ir.Table) -> ir.Table:
        asked = current.filter(
            ctx.internal(current.dst_ip) & ctx.internal(current.src_ip)
            & (current.src_ip != current.dst_ip)
        )  # fmt: skip
        clients = asked.group_by(ip=asked.dst_ip, client=asked.src_ip).aggregate()
        busy = clients.group_by("ip").aggregate(clients=clients.count())
        busy = busy.filter(busy.clients >= self.resolver_min_clients).select("ip")
        roles = ctx.roles
        return busy.union(roles.filter(roles.role == "dns").select("ip")).distinct()

    def _pairs(self, ctx: Context, current: ir.Table) -> ir.Table:
        """(host, domain) pairs worth a closer look, with the domain's prevalence."""
        rows = self._rows(current.filter(ctx.internal(current.src_ip)), lower=False)
        per = rows.group_by(*PAIR).aggregate(n=rows.count(), chars=rows.query.length().sum())
        per = per.mutate(domain=per.domain.lower())  # cheaper once per group than per query
        per = per.group_by(*PAIR).aggregate(queries=per.n.sum(), name_len=per.chars.sum())
        resolvers = self._resolvers(ctx, current)
        per = per.mutate(resolver=per.host.isin(resolvers.ip))
        clients = per.filter(~per.resolver)
        hosts = clients.group_by("domain").aggregate(domain_hosts=clients.count())
        per = per.left_join(hosts, "domain").drop("domain_right")
        per = per.mutate(domain_hosts=per.domain_hosts.fill_null(0))
        chars = per.name_len - per.queries * (per.domain.length() + 1)
        # the domain test sits inside a predicate on an aggregate so that the optimiser
        # cannot push it below the aggregation, where it would run once per query
        queries = ibis.ifelse(self._ignored(per.domain), 0, per.queries)
        return per.filter(
            (queries >= self.min_unique)
            & (chars >= self.min_name_bytes)
            & (per.domain_hosts <= self.max_domain_hosts)
            & (~per.resolver | (per.domain_hosts == 0))
        ).select("host", "domain", "domain_hosts", "resolver")

    # ---- figures -------------------------------------------------------------------------

    def _figures(self, ctx: Context, rows: ir.Table) -> ir.Table:
        common = rows.qtype.isin(self.common_qtypes).fill_null(True)
        external = ctx.external(rows.dst_ip)
        per = rows.group_by(*PAIR).aggregate(
            ts=rows.ts.min(),
            end_ts=rows.ts.max(),
            queries=rows.count(),
            unusual_qtype_share=ibis.ifelse(common, 0.0, 1.0).mean(),
            direct_share=ibis.ifelse(external.fill_null(False), 1.0, 0.0).mean(),
            domain_hosts=rows.domain_hosts.max(),
            resolver=rows.resolver.any(),
        )
        for part in (self._names(rows), self._peak(rows), self._qtypes(rows),
                     self._servers(ctx, rows)):  # fmt: skip
            per = per.join(part, PAIR)
        return per

    def _peak(self, rows: ir.Table) -> ir.Table:
        slots = rows.group_by(*PAIR, slot=rows.ts.epoch_seconds() // 300).aggregate(n=rows.count())
        return slots.group_by(*PAIR).aggregate(peak_5min=slots.n.max())

    def _qtypes(self, rows: ir.Table) -> ir.Table:
        kinds = rows.group_by(*PAIR, qtype=rows.qtype.fill_null("?")).aggregate(n=rows.count())
        text = kinds.qtype.concat(" ", kinds.n.cast("string"))
        return kinds.group_by(*PAIR).aggregate(qtypes=text.collect().sort())

    def _servers(self, ctx: Context, rows: ir.Table) -> ir.Table:
        """Who was asked: internal resolvers, and name servers on the Internet."""
        inside = ctx.internal(rows.dst_ip)
        return rows.group_by(*PAIR).aggregate(
            resolvers=rows.dst_ip.collect(where=inside, distinct=True).sort(),
            servers=rows.dst_ip.collect(where=~inside, distinct=True).sort(),
        )

    def _names(self, rows: ir.Table) -> ir.Table:
        """Unique names: how many, the characters they carry and their length, then the
        figures of a sample of them."""
        names = rows.group_by(*PAIR, "name").aggregate(
            first=rows.ts.min(), sub_len=rows.sub_len.max(), conn_id=rows.conn_id.min()
        )
        dots = names.name.length() - names.name.replace(".", "").length()
        dots = dots - (names.domain.length() - names.domain.replace(".", "").length()) - 1
        chars = ibis.ifelse(names.sub_len > 0, names.sub_len - dots, 0)
        per = names.group_by(*PAIR).aggregate(
            unique_names=names.count(),
            name_bytes=chars.sum(),
            mean_name_length=names.sub_len.mean(),
            max_name_length=names.sub_len.max(),
        )
        return per.join(self._sample(names), PAIR)

    def _sample(self, names: ir.Table) -> ir.Table:
        """Charset and entropy of the ``sample_names`` longest names (the payload, not a
        tunnel's handshake); the first five asked as samples."""
        first = ibis.row_number().over(group_by=PAIR, order_by=[names.first, names.name])
        longest = ibis.row_number().over(
            group_by=PAIR, order_by=[names.sub_len.desc(), names.first, names.name]
        )
        picked = names.mutate(rank=first, longest=longest)
        picked = picked.filter((picked.rank < 5) | (picked.longest < self.sample_names))
        text = picked.name.substr(0, picked.sub_len).replace(".", "")
        # one row per name already: these aggregates only stop the text being inlined
        keys = (*PAIR, "name", "rank", "longest", "conn_id")
        picked = picked.group_by(*keys).aggregate(text=text.max(), low=text.lower().max())
        text, low = picked.text, picked.low
        counts = picked.group_by(*keys).aggregate(
            length=text.length().max(),
            digits=(text.length() - text.re_replace("[0-9]", "").length()).max(),
            odd=ibis.ifelse(text.re_search(r"[^A-Za-z0-9_-]"), 1.0, 0.0).max(),
            mixed=ibis.ifelse(text.re_search("[a-z]") & text.re_search("[A-Z]"), 1.0, 0.0).max(),
            **{f"c{i}": (low.length() - low.replace(ch, "").length()).max()
               for i, ch in enumerate(ALPHABET)},
        )  # fmt: skip
        counts = counts.mutate(entropy=_entropy(counts, len(ALPHABET)))
        long = counts.longest < self.sample_names
        return counts.group_by(*PAIR).aggregate(
            entropy=counts.entropy.mean(where=long),
            digit_share=counts.digits.sum(where=long) / counts.length.sum(where=long).nullif(0),
            odd_char_share=counts.odd.mean(where=long),
            mixed_case_share=counts.mixed.mean(where=long),
            samples=counts.name.collect(where=counts.rank < 5).sort(),
            conn_ids=counts.conn_id.collect(where=long & counts.conn_id.notnull()),
        )

    def _with_history(
        self, ctx: Context, figures: ir.Table, pairs: ir.Table, span: timedelta
    ) -> ir.Table:
        """Days on which the host asked the domain before, and whether it has history
        (looked up for the hosts of ``pairs``, the cheap candidates)."""
        old = ctx.history(ctx.dns, span)
        since = ctx.window.start - span - timedelta(days=self.history_days)
        old = old.filter((old.ts >= since) & old.src_ip.isin(pairs.host))
        seen = old.group_by(host=old.src_ip).aggregate(history_queries=old.count())
        old = self._rows(old)
        days = old.group_by(*PAIR).aggregate(seen_days=old.ts.date().nunique())
        out = figures.left_join(seen, "host").drop("host_right")
        out = out.left_join(days, PAIR).drop("host_right", "domain_right")
        return out.mutate(
            history_queries=out.history_queries.fill_null(0),
            seen_days=out.seen_days.fill_null(0),
        )

    # ---- score ---------------------------------------------------------------------------

    def _score(self, t: ir.Table) -> ir.Table:
        """Volume (35) + shape of the names (50) + context (15), times prevalence."""

        def ramp(x: ir.NumericValue, low: float, high: float) -> ir.NumericValue:
            return ((x - low) / (high - low)).clip(lower=0.0, upper=1.0)

        volume = 20 * ramp(t.name_bytes.log10(), 3.3, 5.3) + 15 * ramp(
            t.unique_names.log10(), 2.0, 3.5
        )
        charset = ibis.greatest(
            ramp(t.entropy.fill_null(0), 3.0, 4.5), t.mixed_case_share, t.odd_char_share
        )
        shape = 20 * ramp(t.mean_name_length, 10, 40) + 15 * t.unusual_qtype_share + 15 * charset
        extra = (
            5 * ramp(t.peak_5min.log10(), math.log10(30), math.log10(300))
            + 5 * t.direct_share
            + ibis.ifelse((t.history_queries > 0) & (t.seen_days == 0), 5.0, 0.0)
        )
        prevalence = ibis.ifelse(t.domain_hosts > 1, 0.85, 1.0)
        score = ((volume + shape + extra) * prevalence).clip(upper=100.0)
        return t.mutate(
            score=score,
            destination=t.domain,
            bytes_out=t.name_bytes.cast("int64"),
            qps_peak=t.peak_5min / 300.0,
            dst_port=ibis.literal(53),
            hosts=ibis.array([t.host]),
        )

    # ---- explanation ---------------------------------------------------------------------

    def explain(self, row: Mapping[str, Any], words: Words | None = None) -> str:
        who = (
            say(words, "dns_tunnel.resolver", host=row["host"])
            if row.get("resolver")
            else str(row["host"])
        )
        return say(
            words, "dns_tunnel.sentence",
            who=who, names=row["unique_names"], domain=row["domain"], queries=row["queries"],
            peak=row["qps_peak"], qtypes=", ".join(row.get("qtypes") or []),
            size=(words or PLAIN).size(row["bytes_out"]), length=row["mean_name_length"],
            entropy=row["entropy"] or 0, hosts=row["domain_hosts"],
        )  # fmt: skip


def _entropy(counts: ir.Table, symbols: int) -> ir.FloatingValue:
    """Shannon entropy (bits per character) from a name's ``length`` and the counts
    ``c0…`` of each ``ALPHABET`` character; any other character counts as one more symbol."""
    length = counts.length
    cs = [counts[f"c{i}"] for i in range(symbols)]
    other = length - sum(cs[1:], cs[0])
    terms = [ibis.ifelse(c > 0, c * c.log2(), 0.0) for c in cs]
    total = sum(terms[1:], terms[0]) + ibis.ifelse(other > 0, other * other.log2(), 0.0)
    return ibis.ifelse(length > 0, length.log2() - total / length, 0.0)

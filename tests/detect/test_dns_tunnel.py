"""DNS tunnel: encoded names under one domain from one host fire, attributed to the client
behind the resolver; CDN names asked by many hosts, reverse lookups, local names, DNSBL
lookups and slow lookups do not."""

from __future__ import annotations

import dataclasses
import random
import string
from datetime import timedelta
from typing import Any

import ibis
import pyarrow as pa
import pytest

from hemostat.detect.dns_tunnel import DnsTunnel
from hemostat.inventory import Host, Inventory
from tests.detect.conftest import DAY, HOUR, T0, Detect, query

CLIENT, RESOLVER, NS = "10.20.0.126", "10.1.0.53", "198.51.100.53"
DOMAIN = "mediacache493.xyz"
SECOND = timedelta(seconds=1)
WITH_RESOLVER = Inventory(
    site="t", timezone="Europe/Paris", hosts=[Host(name="dns-01", ip=RESOLVER, role="dns")]
)
BASE32 = string.ascii_lowercase + "234567"


def label(rng: random.Random, n: int, alphabet: str = BASE32) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def tunnel(
    host: str = CLIENT,
    domain: str = DOMAIN,
    n: int = 600,
    every: timedelta = SECOND,
    start: Any = T0 + 10 * HOUR,
    resolver: str | None = RESOLVER,
    forwarded: bool = True,
    seed: int = 1,
) -> list[dict[str, Any]]:
    """``n`` TXT/NULL queries of two 56-character base32 labels, and the resolver's copies."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        name = f"{label(rng, 56)}.{label(rng, 56)}.{domain}"
        qtype = "TXT" if i % 10 < 7 else "NULL"
        ts = start + i * every
        rows.append(query(ts=ts, src_ip=host, dst_ip=resolver or NS, query=name, qtype=qtype,
                          answers=None, conn_id=f"C{host}-{i}"))  # fmt: skip
        if resolver and forwarded:
            rows.append(query(ts=ts + SECOND / 1000, src_ip=resolver, dst_ip=NS, query=name,
                              qtype=qtype, answers=None))  # fmt: skip
    return rows


def everyday(hosts: int = 10, resolver: str = RESOLVER) -> list[dict[str, Any]]:
    names = ["www.example.org", "login.microsoft.com", "dpi-db-01.chu.local", "www.bbc.co.uk"]
    return [
        query(ts=T0 + (h * 60 + i) * SECOND, src_ip=f"10.20.1.{h}", dst_ip=resolver, query=n)
        for h in range(hosts)
        for i, n in enumerate(names * 5)
    ]


def run(detect: Detect, rows: list[dict[str, Any]], **kwargs: Any) -> list[Any]:
    return detect(DnsTunnel(), dns=rows, start=T0, end=T0 + DAY, **kwargs)


def test_a_tunnel_through_the_resolver_is_pinned_on_the_client(detect: Detect) -> None:
    rows = tunnel() + everyday()
    [found] = run(detect, rows, inventory=WITH_RESOLVER)
    assert (found.host, found.destination, found.kind) == (CLIENT, DOMAIN, "dns_tunnel")
    assert found.score >= 65 and found.hosts == (CLIENT,)
    assert found.bytes_out == 600 * 112  # two 56-character labels per name
    assert (found.ts, found.end_ts) == (T0 + 10 * HOUR, T0 + 10 * HOUR + 599 * SECOND)
    ev = found.evidence
    assert (ev["unique_names"], ev["queries"], ev["domain_hosts"]) == (600, 600, 1)
    assert ev["qtypes"] == ["NULL 180", "TXT 420"] and ev["unusual_qtype_share"] == 1.0
    assert ev["resolvers"] == [RESOLVER] and not ev["servers"] and ev["resolver"] is False
    assert ev["peak_5min"] == 300 and ev["qps_peak"] == 1.0
    assert ev["mean_name_length"] == 113 and ev["entropy"] > 4.3
    assert len(ev["samples"]) == 5 and all(s.endswith("." + DOMAIN) for s in ev["samples"])
    assert len(ev["conn_ids"]) == 50 and ev["conn_ids"][0].startswith(f"C{CLIENT}-")
    assert found.summary.startswith(f"{CLIENT} asked 600 unique names under {DOMAIN} (600 ")
    assert "67 kB encoded in names 113 characters long" in found.summary


def test_a_resolver_is_recognised_by_its_clients_without_inventory(detect: Detect) -> None:
    resolver = "10.1.0.99"
    rows = tunnel(resolver=resolver) + everyday(hosts=3, resolver=resolver)
    [found] = run(detect, rows)
    assert found.host == CLIENT and found.evidence["domain_hosts"] == 1


def test_a_forwarder_of_the_tunnel_is_not_a_second_finding(detect: Detect) -> None:
    """A forwarder nobody else uses is not recognised as a resolver, yet its copies of the
    client's queries do not make a finding of their own."""
    [found] = run(detect, tunnel(resolver="10.1.0.99"))
    assert found.host == CLIENT and found.evidence["resolvers"] == ["10.1.0.99"]
    assert found.evidence["domain_hosts"] == 2  # the forwarder counts as asking


def test_the_resolver_is_flagged_when_no_client_is_seen(detect: Detect) -> None:
    forwarded = [r for r in tunnel() if r["src_ip"] == RESOLVER]
    [found] = run(detect, forwarded + everyday(), inventory=WITH_RESOLVER)
    assert found.host == RESOLVER and found.evidence["resolver"] is True
    assert found.evidence["servers"] == [NS] and found.evidence["direct_share"] == 1.0
    assert found.summary.startswith(f"Resolver {RESOLVER} (no client seen asking) asked 600")


def test_direct_queries_to_an_outside_server_fire(detect: Detect) -> None:
    [found] = run(detect, tunnel(resolver=None))
    assert found.host == CLIENT and found.evidence["servers"] == [NS] and found.score >= 65


def test_cdn_names_asked_by_many_hosts_are_not_a_tunnel(detect: Detect) -> None:
    rng = random.Random(7)
    alphabet = string.ascii_lowercase + string.digits
    pool = [f"{label(rng, rng.randint(8, 18), alphabet)}.cloudfront.net" for _ in range(300)]
    rows = [
        query(ts=T0 + 8 * HOUR + i * SECOND, src_ip=f"10.20.2.{h}", dst_ip=RESOLVER,
              query=pool[(h * 37 + i) % len(pool)])
        for h in range(30)
        for i in range(600 if h == 0 else 150)
    ]  # fmt: skip
    assert run(detect, rows, inventory=WITH_RESOLVER) == []


def test_reverse_lookups_local_names_and_dnsbl_are_ignored(detect: Detect) -> None:
    rng = random.Random(3)
    rows = []
    for i in range(1000):
        ts = T0 + HOUR + i * SECOND
        a, b, c = rng.randint(1, 254), rng.randint(1, 254), rng.randint(1, 254)
        rows += [
            query(ts=ts, src_ip="10.1.0.60", query=f"{a}.{b}.{c}.10.in-addr.arpa", qtype="PTR"),
            query(ts=ts, src_ip="10.1.0.60", query=f"{label(rng, 40)}.chu.local", qtype="TXT"),
            query(ts=ts, src_ip="10.1.0.25", query=f"{a}.{b}.{c}.7.zen.spamhaus.org"),
        ]
    assert run(detect, rows) == []


def test_everyday_lookups_of_many_short_names_stay_below_an_incident(detect: Detect) -> None:
    """A mail server asking a reputation list about every sender domain: many unique short
    names from one host, but ordinary query types and words, not encoded data."""
    rng = random.Random(5)
    words = ["shop", "news", "mail", "info", "club", "city", "bio", "art", "tech", "home"]
    rows = [
        query(ts=T0 + HOUR + i * SECOND / 2, src_ip="10.1.0.25",
              query=f"{rng.choice(words)}{rng.choice(words)}{i}.com.dbl.spamhaus.org")
        for i in range(2000)
    ]  # fmt: skip
    [found] = run(detect, rows)  # kept as evidence, below an incident
    assert found.host == "10.1.0.25" and found.destination == "spamhaus.org"
    assert found.evidence["unique_names"] == 2000 and 30 <= found.score < 50


def test_queries_slower_than_the_elastic_rate_are_not_flagged(detect: Detect) -> None:
    assert run(detect, tunnel(n=200, every=20 * SECOND)) == []


def test_two_hosts_tunnelling_to_one_domain_are_both_found(detect: Detect) -> None:
    alone = "10.20.0.128"  # the same names as CLIENT's, under a domain of its own
    rows = tunnel() + tunnel(host="10.20.0.127", seed=2) + tunnel(alone, domain="other.net")
    found = {f.host: f for f in run(detect, rows, inventory=WITH_RESOLVER)}
    assert sorted(found) == [CLIENT, "10.20.0.127", alone]
    assert (
        found[CLIENT].evidence["domain_hosts"] == 2 == found["10.20.0.127"].evidence["domain_hosts"]
    )
    assert found[CLIENT].score == pytest.approx(0.85 * found[alone].score, abs=0.1)


def test_history_tells_a_new_domain_from_a_known_one(detect: Detect) -> None:
    known = "10.20.0.127"  # the same names as CLIENT's, under a domain it asked yesterday
    rows = [
        query(ts=T0 - DAY + HOUR, src_ip=CLIENT, dst_ip=RESOLVER),
        *tunnel(known, domain="other.net", start=T0 - DAY + HOUR, n=5, seed=9),
        *tunnel(),
        *tunnel(known, domain="other.net"),
    ]
    found = {f.host: f for f in run(detect, rows, inventory=WITH_RESOLVER)}
    new, old = found[CLIENT], found[known]
    assert (new.evidence["seen_days"], new.evidence["history_queries"]) == (0, 1)
    assert (old.evidence["seen_days"], old.evidence["history_queries"]) == (1, 5)
    assert new.score == pytest.approx(old.score + 5, abs=0.1)


def test_the_registered_domain_is_approximated_from_the_last_labels() -> None:
    names = {
        "a.b.example.com": "example.com", "WWW.Example.COM.": "example.com",
        "x.y.bbc.co.uk": "bbc.co.uk", "legifrance.gouv.fr": "legifrance.gouv.fr",
        "a.b.shop.com.br": "shop.com.br", "co.uk": "co.uk", "localhost": None,
    }  # fmt: skip
    table = ibis.memtable(pa.table({"query": list(names), "src_ip": ["10.0.0.1"] * len(names)}))
    got = ibis.duckdb.connect().to_pyarrow(DnsTunnel()._rows(table)).to_pydict()
    assert dict(zip(got["query"], got["domain"], strict=True)) == names


def test_every_threshold_is_documented() -> None:
    for f in dataclasses.fields(DnsTunnel):
        assert f.metadata.get("help"), f.name

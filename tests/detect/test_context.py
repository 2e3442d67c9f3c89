"""The Context's address tests agree with Python's ipaddress; local time follows DST."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta

import duckdb
import ibis
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from hemostat.detect.context import Context, Window, match_network
from hemostat.inventory import Inventory

BACKEND = ibis.duckdb.from_connection(duckdb.connect())

v4 = st.ip_addresses(v=4).map(str)
v6 = st.ip_addresses(v=6).map(lambda a: str(a))
nets4 = st.builds(lambda a, p: ipaddress.ip_network(f"{a}/{p}", strict=False),
                  st.ip_addresses(v=4), st.integers(0, 32))  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(
    st.lists(v4, min_size=1, max_size=30), nets4, st.lists(st.integers(0, 2**32 - 1), max_size=10)
)
def test_ipv4_ranges_match_like_ipaddress(
    ips: list[str], network: ipaddress.IPv4Network, offsets: list[int]
) -> None:
    # addresses inside the range and just around it, not only random ones (rarely inside)
    base = int(network.network_address)
    ips = ips + [str(ipaddress.IPv4Address((base + o % (2 * network.num_addresses) -
                                            network.num_addresses // 2) % 2**32))
                 for o in offsets]  # fmt: skip
    table = ibis.memtable(pa.table({"ip": ips}))
    got = BACKEND.to_pyarrow(table.mutate(hit=match_network(table.ip, network))).to_pylist()
    assert [r["hit"] for r in got] == [ipaddress.ip_address(ip) in network for ip in ips]


@settings(max_examples=20, deadline=None)
@given(st.lists(v6, min_size=1, max_size=30))
def test_ipv6_special_ranges_match_like_ipaddress(ips: list[str]) -> None:
    table = ibis.memtable(pa.table({"ip": ips}))
    for text in ("fc00::/7", "fe80::/10", "ff00::/8", "::1/128"):
        network = ipaddress.ip_network(text)
        got = BACKEND.to_pyarrow(table.mutate(hit=match_network(table.ip, network))).to_pylist()
        assert [r["hit"] for r in got] == [ipaddress.ip_address(ip) in network for ip in ips]


def test_local_time_and_hour_of_week_follow_daylight_saving() -> None:
    # Paris switched to summer time on 2024-03-31 at 01:00 UTC
    before, after = (
        datetime(2024, 3, 31, 0, 30, tzinfo=UTC),
        datetime(2024, 3, 31, 1, 30, tzinfo=UTC),
    )
    table = ibis.memtable(pa.table({"ts": [before, after]}))
    ctx = Context(table, table, table, Window(before, after + timedelta(days=1)),
                  Inventory(site="t", timezone="Europe/Paris"))  # fmt: skip
    rows = BACKEND.to_pyarrow(table.mutate(h=ctx.local(table.ts).hour(),
                                           w=ctx.hour_of_week(table.ts))).to_pylist()  # fmt: skip
    assert [(r["h"], r["w"]) for r in rows] == [(1, 6 * 24 + 1), (3, 6 * 24 + 3)]


def test_external_excludes_internal_loopback_and_multicast() -> None:
    ips = ["10.1.2.3", "192.168.0.1", "8.8.8.8", "127.0.0.1", "224.0.0.251", "255.255.255.255",
           "2001:4860::8888", "fd12::1", "ff02::fb"]  # fmt: skip
    table = ibis.memtable(pa.table({"ip": ips}))
    ctx = Context(table, table, table, Window(datetime(2024, 1, 1, tzinfo=UTC),
                  datetime(2024, 1, 2, tzinfo=UTC)), Inventory(site="t"))  # fmt: skip
    rows = BACKEND.to_pyarrow(table.mutate(x=ctx.external(table.ip))).to_pylist()
    assert [r["ip"] for r in rows if r["x"]] == ["8.8.8.8", "2001:4860::8888"]

"""The dry-run's flows: which recent flows in the store a plan would stop."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyarrow as pa

from hemostat.contain.flows import would_stop
from hemostat.contain.plan import plan_destination, plan_host, plan_site
from hemostat.contain.site import Site
from hemostat.schema import Table
from hemostat.store import Store

T = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
SITE = Site.from_mapping({
    "internal": ["10.1.0.0/16"], "management": ["10.1.0.5"],
    "continuity": [{"name": "mail", "direction": "inbound", "dst": "10.1.0.25", "ports": [25]}],
})  # fmt: skip


def flows(rows: list[tuple[int, str, str, int, int, str | None]]) -> pa.Table:
    """(minutes before T, src, dst, port, bytes_out, conn_id)"""
    return pa.table({
        "ts": pa.array([T - timedelta(minutes=r[0]) for r in rows], pa.timestamp("us", "UTC")),
        "src_ip": [r[1] for r in rows], "dst_ip": [r[2] for r in rows],
        "src_port": pa.array([40000] * len(rows), pa.int32()),
        "dst_port": pa.array([r[3] for r in rows], pa.int32()), "proto": ["tcp"] * len(rows),
        "bytes_out": [r[4] for r in rows], "bytes_in": [10] * len(rows),
        "conn_id": [r[5] for r in rows],
    })  # fmt: skip


def test_a_site_cut_lists_egress_and_inbound_largest_first(store: Store) -> None:
    store.append(Table.FLOWS, flows([
        (1, "10.1.2.10", "203.0.113.9", 443, 5_000_000, "c1"),  # three slices of one upload
        (2, "10.1.2.10", "203.0.113.9", 443, 5_000_000, "c1"),
        (3, "10.1.2.10", "203.0.113.9", 443, 5_000_000, "c1"),
        (5, "10.1.3.3", "198.51.100.7", 80, 1_000, None),
        (5, "198.51.100.7", "10.1.3.3", 22, 500, None),  # inbound, not continuity
        (5, "198.51.100.7", "10.1.0.25", 25, 90_000, None),  # inbound mail: kept
        (5, "10.1.3.3", "10.1.0.40", 5222, 70_000, None),  # internal: kept
        (5, "10.1.3.3", "10.1.0.5", 8443, 70_000, None),  # management: kept
        (90, "10.1.3.3", "203.0.113.50", 443, 9_999_999, None),  # before the look-back
    ]))  # fmt: skip
    impact = would_stop(store, plan_site(SITE), timedelta(hours=1))
    assert impact.until == T - timedelta(minutes=1) and impact.since == T - timedelta(minutes=61)
    assert [(f.src_ip, f.dst_ip, f.dst_port, f.connections, f.bytes_out) for f in impact.flows] == [
        ("10.1.2.10", "203.0.113.9", 443, 1, 15_000_000),
        ("10.1.3.3", "198.51.100.7", 80, 1, 1_000),
        ("198.51.100.7", "10.1.3.3", 22, 1, 500),
    ]  # fmt: skip
    assert (impact.connections, impact.bytes_out, impact.more) == (3, 15_001_500, 0)
    assert impact.as_dict()["flows"][0]["last"] == "2026-11-23T09:59:00.000000Z"


def test_host_and_destination_plans_list_only_their_flows(store: Store) -> None:
    store.append(Table.FLOWS, flows([
        (1, "10.1.2.10", "203.0.113.9", 443, 100, None),
        (1, "10.1.2.10", "10.1.0.5", 8443, 100, None),  # the collector: kept
        (1, "10.1.3.3", "203.0.113.9", 443, 100, None),
        (1, "10.1.3.3", "203.0.113.10", 443, 100, None),
    ]))  # fmt: skip
    host = would_stop(store, plan_host(SITE, "10.1.2.10"), timedelta(hours=1))
    assert [(f.src_ip, f.dst_ip) for f in host.flows] == [("10.1.2.10", "203.0.113.9")]
    one = would_stop(store, plan_destination(SITE, "203.0.113.9"), timedelta(hours=1))
    assert {f.src_ip for f in one.flows} == {"10.1.2.10", "10.1.3.3"} and one.connections == 2
    rng = would_stop(store, plan_destination(SITE, "203.0.113.8/30"), timedelta(hours=1), limit=1)
    assert (rng.connections, len(rng.flows), rng.more) == (3, 1, 2)


def test_an_empty_store_says_so(store: Store) -> None:
    impact = would_stop(store, plan_site(SITE), timedelta(hours=1))
    assert (impact.since, impact.connections, impact.flows) == (None, 0, ())

"""Beaconing: a jittered beacon fires; random traffic, sliced long connections and polls the
site can explain (inventory, a name the whole site looks up, days of history) do not."""

from __future__ import annotations

import dataclasses
import random
from datetime import datetime, timedelta
from typing import Any

from hemostat.detect.beaconing import Beaconing
from hemostat.inventory import ContinuityRule, ExpectedTransfer, Inventory
from hemostat.schema import Kind
from tests.detect.conftest import DAY, HOUR, T0, Detect, flow, query

C2 = "45.33.10.7"
LAB = "192.0.2.80"
BOOKING = "84.53.29.85"
SECOND = timedelta(seconds=1)


def beacon(
    src: str, dst: str, period: float, *, start: datetime = T0, span: timedelta = DAY,
    jitter: float = 0.15, size: int = 1200, port: int = 8443, seed: int = 1,
) -> list[dict[str, Any]]:  # fmt: skip
    """Connections every ``period`` s ± ``jitter`` (uniform), each of ``size`` bytes out."""
    rng, rows, t = random.Random(seed), [], start
    while t < start + span:
        rows.append(flow(ts=t, src_ip=src, dst_ip=dst, dst_port=port, bytes_out=size))
        t += timedelta(seconds=period * (1 + rng.uniform(-jitter, jitter)))
    return rows


def crowd(hosts: int = 60, seed: int = 2) -> list[dict[str, Any]]:
    """Everyday browsing of ``hosts`` workstations, so that one host is a rare 2 %."""
    rng = random.Random(seed)
    return [
        flow(ts=T0 + timedelta(seconds=rng.uniform(0, 86_000)), src_ip=f"10.20.0.{10 + h}",
             dst_ip=f"93.184.{rng.randint(0, 3)}.{rng.randint(1, 250)}", bytes_out=800)
        for h in range(hosts) for _ in range(3)
    ]  # fmt: skip


def test_a_jittered_beacon_to_a_rare_address_fires(detect: Detect) -> None:
    rows = beacon("10.1.16.23", C2, 300)
    [found] = detect(Beaconing(), flows=[*rows, *crowd()], start=T0, end=T0 + DAY)
    e = found.evidence
    assert (found.host, found.destination, found.kind) == ("10.1.16.23", C2, Kind.C2)
    assert found.score >= 85 and e["beacon_score"] >= 75
    assert abs(e["period_s"] - 300) < 15 and e["gap_mad_s"] < 30
    assert e["connections"] == len(rows) and e["size_mode"] == 1200
    assert e["size_mode_share"] == 1.0 and e["coverage"] == 1.0
    assert e["rare_destination"] and e["dst_hosts"] == 1 and e["site_hosts"] == 61
    assert e["conn_ids"] == [r["conn_id"] for r in rows[:20]]
    assert found.bytes_out == 1200 * len(rows)
    assert f"10.1.16.23 called {C2}:8443 {len(rows)} times every" in found.summary
    assert "always 1.2 kB out, in 24 of 24 hours; 1 of 61 site hosts" in found.summary


def test_random_connections_are_not_a_beacon(detect: Detect) -> None:
    rng = random.Random(3)
    rows, t = [], T0
    while t < T0 + DAY:
        rows.append(flow(ts=t, src_ip="10.1.16.23", dst_ip=C2, bytes_out=rng.randint(300, 9000)))
        t += timedelta(seconds=rng.expovariate(1 / 300))
    assert len(rows) > 200
    assert detect(Beaconing(), flows=[*rows, *crowd()], start=T0, end=T0 + DAY) == []


def test_slices_of_one_connection_count_once(detect: Detect) -> None:
    """A long session written as 300-s slices is one connection, not a 300-s beacon; a
    beacon whose connections are each two slices keeps its own period."""
    session = [
        flow(ts=T0 + i * 300 * SECOND, src_ip="10.1.16.30", dst_ip="51.15.2.9", conn_id="Clong")
        for i in range(288)
    ]
    sliced = [
        flow(ts=T0 + (i * 600 + part * 300) * SECOND, src_ip="10.1.16.23", dst_ip=C2,
             conn_id=f"Cb{i}")
        for i in range(144) for part in (0, 1)
    ]  # fmt: skip
    [found] = detect(Beaconing(), flows=[*session, *sliced, *crowd()], start=T0, end=T0 + DAY)
    assert found.destination == C2
    assert found.evidence["connections"] == 144 and found.evidence["period_s"] == 600


def test_a_poll_the_inventory_knows_stays_below_an_incident(detect: Detect) -> None:
    rows = beacon("10.1.3.20", LAB, 300, jitter=0.002, size=650, port=443)
    inventory = Inventory(
        site="t",
        expected_transfers=[ExpectedTransfer(name="lab-results", src="10.1.3.20", dst=[LAB])],
        continuity=[ContinuityRule(name="reference-lab", dst=LAB, ports=[443])],
    )
    [unknown] = detect(Beaconing(), flows=[*rows, *crowd()], start=T0, end=T0 + DAY)
    [known] = detect(
        Beaconing(), flows=[*rows, *crowd()], start=T0, end=T0 + DAY, inventory=inventory
    )
    assert unknown.score >= 85  # as periodic as any beacon: only the inventory tells
    assert known.score < 50 and known.expected == "lab-results"
    assert known.evidence["known_destination"] and not unknown.evidence["known_destination"]
    assert "destination known to the inventory" in known.summary


def test_a_poll_to_a_name_the_whole_site_looks_up_is_discounted(detect: Detect) -> None:
    rows = beacon("172.16.1.10", BOOKING, 60, jitter=0.01, size=650, port=443)
    lookups = [
        query(ts=T0 + h * HOUR / 2, src_ip=f"10.20.0.{10 + h}", query="rdv.chu.example",
              answers=[BOOKING])
        for h in range(30)
    ]  # fmt: skip
    flows = [*rows, *crowd()]
    assert detect(Beaconing(), flows=flows, dns=lookups, start=T0, end=T0 + DAY) == []
    [low] = detect(Beaconing(min_score=0), flows=flows, dns=lookups, start=T0, end=T0 + DAY)
    assert low.score < 50 and low.evidence["beacon_score"] >= 90
    assert low.evidence["common_destination"] and low.evidence["name_hosts"] == 30
    assert "(rdv.chu.example, looked up by 30 hosts)" in low.summary


def test_history_lowers_an_established_pair_and_raises_a_new_one(detect: Detect) -> None:
    past = [
        flow(ts=T0 - d * DAY + 3 * HOUR, src_ip="10.1.3.20", dst_ip=LAB, dst_port=443)
        for d in range(1, 6)
    ]
    old = beacon("10.1.3.20", LAB, 300, jitter=0.002, size=650, port=443)
    new = beacon("10.1.16.23", C2, 300, seed=4)
    found = detect(Beaconing(), flows=[*past, *old, *new, *crowd()], start=T0, end=T0 + DAY)
    by_host = {f.host: f for f in found}
    established, fresh = by_host["10.1.3.20"], by_host["10.1.16.23"]
    assert established.evidence["established_pair"] and established.evidence["days_seen"] == 5
    assert established.score < 50 and "seen on 5 earlier day(s)" in established.summary
    assert fresh.evidence["new_pair"] and fresh.score >= 85
    assert "never seen before" in fresh.summary


def test_a_short_window_looks_back_a_day(detect: Detect) -> None:
    rows = beacon("10.1.16.23", C2, 120, jitter=0.2)
    start = T0 + DAY - HOUR
    [found] = detect(Beaconing(), flows=[*rows, *crowd()], start=start, end=T0 + DAY)
    assert found.ts < start <= found.end_ts
    assert found.evidence["connections"] == len(rows) and found.score >= 85


def test_busy_destinations_and_bursts_are_not_scored(detect: Detect) -> None:
    """A destination most hosts reach (telemetry) and sub-second bursts are left alone."""
    telemetry = [
        row
        for h in range(20)
        for row in beacon(f"10.20.0.{10 + h}", "13.107.4.50", 900, port=443, seed=h)
    ]
    burst = [
        flow(ts=T0 + i * SECOND / 4, src_ip="10.1.16.23", dst_ip=C2, conn_id=f"Cx{i}")
        for i in range(400)
    ]
    found = detect(Beaconing(), flows=[*telemetry, *burst, *crowd()], start=T0, end=T0 + DAY)
    assert found == []


def test_every_threshold_is_documented() -> None:
    for f in dataclasses.fields(Beaconing):
        assert f.metadata.get("help"), f.name

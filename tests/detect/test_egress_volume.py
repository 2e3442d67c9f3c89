"""Egress volume: bursts and slow drips above a host's own and its peers' baselines fire;
yesterday's backup, expected transfers and cloud sync to a network everyone uses do not
raise an incident."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from hemostat.detect.context import size
from hemostat.detect.egress_volume import EgressVolume
from hemostat.inventory import ExpectedTransfer, Host, Inventory
from tests.detect.conftest import DAY, HOUR, T0, Detect, flow

MB = 1_000_000
UPDATES = "13.107.4.5"
CLOUD = "20.190.179.30"


def _inventory(**extra: Any) -> Inventory:
    hosts = [Host(name=f"db-{i}", ip=f"10.1.2.{10 * i}", role="database") for i in (1, 2, 3)]
    hosts += [Host(name="bkp-01", ip="10.1.9.5", role="backup")]
    hosts += [Host(name=f"ws-{i}", ip=f"10.20.0.{i}", role="workstation") for i in range(10, 22)]
    return Inventory(site="t", timezone="Europe/Paris", hosts=hosts, **extra)


def _hourly(src: str, dst: str, start: datetime, hours: int, size: int) -> list[dict[str, Any]]:
    """One flow of ``size`` bytes out from ``src`` to ``dst`` at the quarter of every hour."""
    return [
        flow(ts=start + h * HOUR + timedelta(minutes=15), src_ip=src, dst_ip=dst,
             bytes_out=size, bytes_in=size // 10 + 500)
        for h in range(hours)
    ]  # fmt: skip


def _servers(hours: int = 48) -> list[dict[str, Any]]:
    """Three database servers that only fetch updates (a few kB out per hour)."""
    return [r for i in (1, 2, 3) for r in _hourly(f"10.1.2.{10 * i}", UPDATES, T0, hours, 2000)]


def test_a_server_upload_to_a_new_address_fires_with_its_evidence(detect: Detect) -> None:
    upload = flow(ts=T0 + DAY + 3 * HOUR + timedelta(minutes=5), end_ts=T0 + DAY + 3 * HOUR
                  + timedelta(minutes=6), src_ip="10.1.2.30", dst_ip="203.0.113.77",
                  bytes_out=300 * MB, bytes_in=MB)  # fmt: skip
    [found] = detect(
        EgressVolume(), flows=[*_servers(), upload], start=T0 + DAY, end=T0 + 2 * DAY,
        inventory=_inventory(),
    )  # fmt: skip
    assert (found.host, found.destination, found.bytes_out) == (
        "10.1.2.30",
        "203.0.113.77",
        300 * MB + 2000,
    )
    assert found.score >= 85 and found.severity == "critical"
    assert (found.ts, found.end_ts) == (upload["ts"], upload["end_ts"])
    ev = found.evidence
    assert ev["window_hours"] == 1 and ev["baseline"] == "own history"
    assert ev["own_median"] == 2000 and ev["peer_group"] == "database"
    assert ev["expected_bytes"] == 1_000_000 and ev["ratio"] == pytest.approx(300.002)
    assert ev["top_destinations"][0] == {
        "rank": 1, "destination": "203.0.113.77", "port": 443, "bytes": 300 * MB, "flows": 1,
        "hosts_in_24": 1, "popular": False,
    }  # fmt: skip
    assert upload["conn_id"] in ev["conn_ids"] and ev["top_share"] == 1.0
    assert found.summary.startswith("10.1.2.30 sent 300 MB to the Internet in 1 h up to ")
    assert "300x the expected 1.0 MB (own median 2.0 kB" in found.summary
    assert "203.0.113.77 (300 MB)" in found.summary


def _nightly_backup() -> list[dict[str, Any]]:
    """The backup server uploads 5 GB at 02:00 local both nights, and fetches updates."""
    backup = [
        flow(ts=T0 + d * DAY + HOUR, src_ip="10.1.9.5", dst_ip="198.51.100.2",
             bytes_out=(5000 + 300 * d) * MB, bytes_in=20 * MB)
        for d in (0, 1)
    ]  # fmt: skip
    return [*_hourly("10.1.9.5", UPDATES, T0, 48, 2000), *backup]


def test_yesterdays_nightly_backup_at_the_same_hour_does_not_fire(detect: Detect) -> None:
    found = detect(EgressVolume(), flows=_nightly_backup(), start=T0 + DAY, end=T0 + 2 * DAY,
                   inventory=_inventory())  # fmt: skip
    assert found == []


def test_the_same_backup_without_history_stands_out(detect: Detect) -> None:
    [found] = detect(EgressVolume(), flows=_nightly_backup(), start=T0 + DAY, end=T0 + 2 * DAY,
                     inventory=_inventory(), history=timedelta(0))  # fmt: skip
    assert found.host == "10.1.9.5" and found.score == 95.0
    assert found.evidence["baseline"] == "peers" and found.evidence["own_hours"] == 0


def test_an_expected_offsite_backup_without_history_stays_below_an_incident(
    detect: Detect,
) -> None:
    inventory = _inventory(expected_transfers=[ExpectedTransfer(
        name="offsite-backup", src="10.1.9.5", dst=["198.51.100.0/28"], ports=[443])])  # fmt: skip
    rows = [
        *_hourly("10.1.9.5", UPDATES, T0, 24, 2000),
        *(flow(ts=T0 + HOUR, src_ip="10.1.9.5", dst_ip=f"198.51.100.{i}", bytes_out=40_000 * MB)
          for i in (2, 3, 4)),
    ]  # fmt: skip
    [found] = detect(EgressVolume(), flows=rows, start=T0, end=T0 + DAY, inventory=inventory)
    assert found.expected == "offsite-backup"
    assert found.evidence["score_before_expected"] == 95.0 and found.score == 47.5


def _cloud_sync(size: int = 2 * MB) -> list[dict[str, Any]]:
    """Twelve workstations syncing ``size`` bytes an hour to the cloud provider, for a day."""
    return [r for i in range(10, 22) for r in _hourly(f"10.20.0.{i}", CLOUD, T0, 24, size)]


def test_a_cloud_sync_burst_to_a_network_everyone_uses_stays_below_an_incident(
    detect: Detect,
) -> None:
    burst = flow(ts=T0 + 10 * HOUR, src_ip="10.20.0.15", dst_ip=CLOUD, bytes_out=600 * MB)
    [found] = detect(EgressVolume(), flows=[*_cloud_sync(), burst], start=T0, end=T0 + DAY,
                     inventory=_inventory())  # fmt: skip
    assert found.host == "10.20.0.15" and 30 <= found.score < 50
    assert found.evidence["popular_share"] == 1.0 and found.evidence["burst_share"] == 1.0
    assert found.evidence["top_destinations"][0]["hosts_in_24"] == 12


def test_a_slow_drip_adds_up_over_several_hours(detect: Detect) -> None:
    drip = _hourly("10.20.0.12", "198.18.7.9", T0 + 12 * HOUR, 12, 3 * MB)  # 3 MB/h, 12 h
    [found] = detect(EgressVolume(), flows=[*_cloud_sync(MB // 2), *drip], start=T0, end=T0 + DAY,
                     inventory=_inventory())  # fmt: skip
    assert found.host == "10.20.0.12" and found.destination == "198.18.7.9"
    assert found.evidence["window_hours"] == 6 and found.bytes_out == 6 * (3 * MB + MB // 2)
    assert max(r["bytes_out"] for r in drip) < EgressVolume().min_bytes
    assert 40 <= found.score < 65 and found.evidence["popular_share"] < 0.2
    assert (
        "in 6 h up to" in found.summary
        and "7.0x the expected 3.0 MB (no own history" in found.summary
    )


def test_mail_spread_over_many_destinations_is_not_a_burst(detect: Detect) -> None:
    relay = [
        flow(ts=T0 + h * HOUR + timedelta(minutes=m), src_ip="10.1.0.25", dst_ip=f"45.{m}.{h}.9",
             dst_port=25, bytes_out=(8 if h == 14 else 1) * MB // 2)
        for h in range(24) for m in range(20)
    ]  # fmt: skip
    found = detect(EgressVolume(), flows=relay, start=T0, end=T0 + DAY, inventory=_inventory())
    assert all(f.score < 50 for f in found)


@pytest.mark.parametrize(
    ("value", "text"),
    [(None, "?"), (0, "0 B"), (999, "999 B"), (2000, "2.0 kB"), (38_160_000, "38 MB"),
     (1.2e9, "1.2 GB"), (4.5e12, "4.5 TB"), (27e12, "27 TB")],
)  # fmt: skip
def test_sizes_read_like_a_human_writes_them(value: float | None, text: str) -> None:
    assert size(value) == text

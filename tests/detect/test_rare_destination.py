"""Rare destination: uploads to addresses the site never or rarely talks to; rare-but-known
ranges lowered, never hidden; backups, partners, browsing and mail relays stay quiet."""

from __future__ import annotations

from typing import Any

import pytest

from hemostat.detect.rare_destination import RareDestination
from hemostat.inventory import ExpectedTransfer, Inventory
from tests.detect.conftest import DAY, HOUR, T0, Detect, flow, query

MB = 1_000_000
MINUTE = HOUR / 60
START, END = T0 + DAY, T0 + 2 * DAY  # the window; the day before is history
#: the cloud provider everybody syncs to, and a popular web site
CLOUD, WEB = "20.190.129.10", "93.184.216.34"
PEERS = [f"10.20.0.{i}" for i in range(10, 60)]


def everyday() -> list[dict[str, Any]]:
    """History and window: 50 workstations use the cloud and the web site, every day."""
    rows = []
    for day in (T0, START):
        for i, ip in enumerate(PEERS):
            ts = day + 8 * HOUR + i * MINUTE
            rows += [
                flow(ts=ts, src_ip=ip, dst_ip=CLOUD, bytes_out=2 * MB, bytes_in=100_000),
                flow(ts=ts, src_ip=ip, dst_ip=WEB, bytes_out=20_000, bytes_in=900_000),
            ]
    return rows


def upload(src: str, dst: str, total: int, parts: int = 1, at: Any = None, **kw: Any) -> list:
    at = at or START + 10 * HOUR
    return [
        flow(ts=at + i * HOUR, src_ip=src, dst_ip=dst, bytes_out=total // parts,
             bytes_in=total // parts // 200, **kw)
        for i in range(parts)
    ]  # fmt: skip


def run(detect: Detect, rows: list, **kw: Any) -> list:
    return detect(RareDestination(), flows=everyday() + rows, start=START, end=END, **kw)


def test_a_large_upload_to_a_never_seen_address_fires_with_its_evidence(detect: Detect) -> None:
    rows = upload("10.1.2.30", "142.61.255.171", 300 * MB, parts=2, dst_port=8443)
    [found] = run(detect, rows)
    assert (found.host, found.destination, found.bytes_out) == ("10.1.2.30", "142.61.255.171", 3e8)
    assert found.score >= 80 and found.detector == "rare_destination"
    ev = found.evidence
    assert ev["dst_hosts"] == 1 and ev["dst_hosts_history"] == 0 and ev["active_hosts"] == 51
    assert ev["ports"] == [8443] and ev["dst_port"] == 8443 and ev["known_by"] is None
    assert sorted(ev["conn_ids"]) == sorted(r["conn_id"] for r in rows)
    assert ev["history"] is True and ev["host_sent_before"] == 0
    assert "10.1.2.30 sent 300 MB in 2 flow(s) to 142.61.255.171" in found.summary
    assert "only 1 of 51 internal hosts" in found.summary
    assert "had sent only 0 B to the Internet before" in found.summary


def test_popular_destinations_and_downloads_stay_quiet(detect: Detect) -> None:
    rows = [
        *upload("10.20.0.12", CLOUD, 400 * MB),  # a big sync, but everybody uses that address
        flow(ts=START + 9 * HOUR, src_ip="10.20.0.13", dst_ip="151.101.1.1",
             bytes_out=300_000, bytes_in=60 * MB),  # a new web site: a download
    ]  # fmt: skip
    assert run(detect, rows) == []


def test_small_uploads_are_not_judged(detect: Detect) -> None:
    assert run(detect, upload("10.1.16.23", "7.19.114.253", 50_000)) == []


def test_a_beacon_to_a_new_address_gets_a_small_score(detect: Detect) -> None:
    beacon = [
        flow(ts=START + 5 * i * MINUTE, src_ip="10.1.16.23",
             dst_ip="7.19.114.253", dst_port=8443, bytes_out=1200, bytes_in=500)
        for i in range(200)
    ]  # fmt: skip
    [found] = run(detect, beacon)
    assert found.destination == "7.19.114.253" and found.bytes_out == 240_000
    assert 30 <= found.score < 50


def test_fresh_addresses_of_a_well_known_range_add_up_as_rare_but_known(detect: Detect) -> None:
    leak = [
        *upload("10.20.0.33", "20.190.186.117", 6 * MB, parts=3),
        *upload("10.20.0.33", "20.190.132.94", 5 * MB, parts=3),
        *upload("10.20.0.33", "20.190.165.52", 5 * MB, parts=3),
    ]
    [found] = run(detect, leak)
    ev = found.evidence
    assert found.destination == "20.190.186.117" and found.bytes_out == 16 * MB - 4
    assert ev["known_by"] == "/16" and ev["group"] == "20.190.0.0/16" and ev["n_addresses"] == 3
    assert 30 <= found.score < 50  # lowered, never hidden
    assert "rare but known: an address of 20.190.0.0/16 serves 50 hosts" in found.summary
    [alone] = run(detect, upload("10.20.0.33", "77.12.4.9", 16 * MB, parts=9))
    assert alone.score > found.score + 20


def test_a_name_from_dns_is_evidence_and_a_popular_domain_makes_it_known(
    detect: Detect,
) -> None:
    dns = [
        query(ts=START + 8 * HOUR, src_ip=ip, query="www.bigcloud.example", answers=[CLOUD])
        for ip in PEERS
    ]
    dns.append(query(ts=START + 9 * HOUR, src_ip="10.20.0.40",
                     query="files.bigcloud.example", answers=["203.0.113.77"]))  # fmt: skip
    rows = upload("10.20.0.40", "203.0.113.77", 60 * MB)
    [found] = detect(RareDestination(), flows=everyday() + rows, dns=dns, start=START, end=END)
    ev = found.evidence
    assert ev["name"] == "files.bigcloud.example" and ev["domain"] == "bigcloud.example"
    assert ev["known_by"] == "domain" and ev["domain_hosts"] == 50
    assert "(files.bigcloud.example)" in found.summary
    assert "50 hosts resolve names of bigcloud.example" in found.summary


BACKUP = ExpectedTransfer(
    name="offsite-backup", src="10.1.9.5", dst=["198.51.100.0/28"], ports=[443]
)


def test_a_backup_to_a_new_address_of_its_own_range_stays_low(detect: Detect) -> None:
    inventory = Inventory(site="t", timezone="Europe/Paris", expected_transfers=[BACKUP])
    old = [
        flow(ts=T0 - d * DAY + 2 * HOUR, src_ip="10.1.9.5", dst_ip="198.51.100.2",
             bytes_out=9000 * MB, bytes_in=30 * MB)
        for d in range(0, 10)
    ]  # fmt: skip
    rows = [*old, *upload("10.1.9.5", "198.51.100.5", 9000 * MB)]
    [found] = run(detect, rows, inventory=inventory)
    assert found.expected == "offsite-backup" and found.score < 30
    assert found.evidence["age_days"] > 7


def test_another_host_uploading_into_the_backup_range_is_suspicious(detect: Detect) -> None:
    inventory = Inventory(site="t", timezone="Europe/Paris", expected_transfers=[BACKUP])
    rows = [
        flow(ts=T0 + 2 * HOUR, src_ip="10.1.9.5", dst_ip="198.51.100.2", bytes_out=9000 * MB),
        *upload("10.1.2.30", "198.51.100.7", 250 * MB, parts=2),
    ]
    found = run(detect, rows, inventory=inventory)
    [mimic] = [f for f in found if f.host == "10.1.2.30"]
    assert mimic.expected is None and mimic.score >= 65
    assert mimic.evidence["expected_range"] == "offsite-backup"
    assert "expected transfer 'offsite-backup', whose source is another host" in mimic.summary


def test_a_partner_known_for_weeks_is_not_news(detect: Detect) -> None:
    weeks = [
        flow(ts=T0 - d * DAY + 10 * HOUR, src_ip="10.1.3.10", dst_ip="192.0.2.11",
             dst_port=2762, bytes_out=300 * MB, bytes_in=2 * MB)
        for d in range(0, 20)
    ]  # fmt: skip
    rows = [*weeks, *upload("10.1.3.10", "192.0.2.10", 1200 * MB, dst_port=2762)]
    [found] = run(detect, rows)
    assert found.score < 50 and found.evidence["novelty"] == pytest.approx(0.5)


def test_a_mail_relay_reaching_many_new_servers_is_not_flagged(detect: Detect) -> None:
    mail = [
        flow(ts=START + i * MINUTE, src_ip="10.1.0.25", dst_ip=f"60.{i}.1.1", dst_port=25,
             bytes_out=(40 if i == 0 else 2) * MB, bytes_in=2000)
        for i in range(250)
    ]  # fmt: skip
    assert run(detect, mail) == []


def test_ipv6_destinations_are_grouped_by_their_48(detect: Detect) -> None:
    rows = upload("10.1.2.30", "2001:db8:bad:1::5", 200 * MB)
    [found] = run(detect, rows)
    assert found.destination == "2001:db8:bad:1::5" and found.score >= 80
    assert found.evidence["group"] == "2001:db8:bad::/48"

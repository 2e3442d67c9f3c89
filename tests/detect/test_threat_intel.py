"""Threat intel: flows and DNS lookups matched against a plain list or a STIX 2.1 bundle;
data sent scores high, a lookup alone medium; bad files are refused with file and line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hemostat.detect.threat_intel import ThreatIntel
from hemostat.errors import ConfigError
from hemostat.intel import Indicator, load, parse
from tests.detect.conftest import DAY, HOUR, T0, Detect, flow, query

INTEL = Path(__file__).parent.parent / "data" / "intel"
PLAIN, STIX = str(INTEL / "indicators.txt"), str(INTEL / "bundle.json")
END = T0 + DAY
WS = "10.20.0.40"


def test_without_indicators_the_detector_does_nothing(detect: Detect) -> None:
    rows = [flow(ts=T0 + HOUR, dst_ip="7.19.114.253", bytes_out=5_000_000)]
    assert detect(ThreatIntel(), flows=rows, start=T0, end=END) == []


def test_data_sent_to_a_listed_address_or_range_scores_high(detect: Detect) -> None:
    c2 = [flow(ts=T0 + i * HOUR, src_ip="10.1.16.23", dst_ip="7.19.114.253", dst_port=8443,
               bytes_out=1200, bytes_in=300) for i in range(5)]  # fmt: skip
    dump = [flow(ts=T0 + HOUR, src_ip="10.1.8.10", dst_ip="142.61.255.171", bytes_out=700_000_000)]
    other = [flow(ts=T0 + HOUR, src_ip=WS, dst_ip="93.184.216.34", bytes_out=9_000_000)]
    found = detect(ThreatIntel(indicators=PLAIN), flows=c2 + dump + other, start=T0, end=END)
    by_host = {f.host: f for f in found}
    assert set(by_host) == {"10.1.16.23", "10.1.8.10"}
    beacon, upload = by_host["10.1.16.23"], by_host["10.1.8.10"]
    assert 70 <= beacon.score < upload.score and upload.score == 95.0
    assert beacon.destination == "7.19.114.253" and beacon.bytes_out == 6000
    ev = beacon.evidence
    assert ev["indicator"] == "7.19.114.253" and ev["source"] == "indicators.txt:4"
    assert ev["match"] == "flow" and ev["ports"] == [8443] and ev["flows"] == 5
    assert sorted(ev["conn_ids"]) == sorted(r["conn_id"] for r in c2)
    assert upload.evidence["indicator"] == "142.61.255.0/24"
    assert beacon.summary == (
        "10.1.16.23 sent 6.0 kB in 5 flow(s) to 7.19.114.253, "
        "which matches indicator 7.19.114.253 (indicators.txt:4)."
    )


def test_a_lookup_alone_is_medium_and_a_tunnel_is_high(detect: Detect) -> None:
    dns = [
        query(ts=T0 + HOUR, src_ip=WS, query="cdn.mediacache493.xyz", answers=["198.18.0.1"]),
        query(ts=T0 + HOUR, src_ip=WS, query="notmediacache493.xyz", answers=["198.18.0.2"]),
        *[query(ts=T0 + 2 * HOUR, src_ip="10.20.0.126", qtype="TXT", answers=[],
                query=f"{i:040d}.a1.mediacache493.xyz") for i in range(150)],
    ]  # fmt: skip
    found = detect(ThreatIntel(indicators=PLAIN), dns=dns, start=T0, end=END)
    by_host = {f.host: f for f in found}
    assert set(by_host) == {WS, "10.20.0.126"}
    lookup, tunnel = by_host[WS], by_host["10.20.0.126"]
    assert lookup.score == 45.0 and lookup.destination == "mediacache493.xyz"
    assert lookup.evidence["match"] == "lookup" and lookup.evidence["lookups"] == 1
    assert lookup.summary.endswith("(indicators.txt:6); no data was sent to it.")
    assert tunnel.score >= 70 and tunnel.evidence["match"] == "tunnel"
    assert tunnel.evidence["names"] == 150 and tunnel.bytes_out == 150 * 61
    assert "a DNS tunnel carrying 9.2 kB" in tunnel.summary


def test_stix_bundle_names_addresses_and_answers(detect: Detect) -> None:
    dns = [
        query(ts=T0 + HOUR, src_ip=WS, query="api.update-check.example", answers=["203.0.113.9"]),
        query(ts=T0 + HOUR, src_ip="10.20.0.41", query="cdn.example.net",
              answers=["7.19.114.253"]),
        query(ts=T0 + HOUR, src_ip="10.20.0.42", query="www.example.org",
              answers=["93.184.216.34"]),
    ]  # fmt: skip
    flows = [
        flow(ts=T0 + HOUR, src_ip=WS, dst_ip="203.0.113.9", bytes_out=2_000_000),
        flow(ts=T0 + HOUR, src_ip="10.20.0.42", dst_ip="93.184.216.34", bytes_out=50_000),
        flow(ts=T0 + 3 * HOUR, src_ip="10.1.4.10", dst_ip="80.132.124.185", bytes_out=38_000_000),
    ]
    found = detect(ThreatIntel(indicators=STIX), flows=flows, dns=dns, start=T0, end=END)
    by_host = {f.host: f for f in found}
    assert set(by_host) == {WS, "10.20.0.41", "10.1.4.10"}  # the revoked indicator is gone
    resolved = by_host[WS]
    assert resolved.evidence["match"] == "lookup+flow" and resolved.score >= 70
    assert resolved.destination == "update-check.example"
    assert resolved.evidence["addresses"] == ["203.0.113.9"]
    assert resolved.evidence["source"] == "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f"
    answer = by_host["10.20.0.41"]
    assert answer.evidence["match"] == "answer" and answer.score == 45.0
    assert "got 7.19.114.253" in answer.summary
    assert by_host["10.1.4.10"].evidence["source"].startswith("ipv4-addr--")


def test_contacts_opened_by_a_listed_address_are_medium_unless_answered_with_data(
    detect: Detect,
) -> None:
    scan = flow(ts=T0 + HOUR, src_ip="7.19.114.253", dst_ip="172.16.1.10", src_port=40000,
                dst_port=443, bytes_out=300, bytes_in=2_000)  # fmt: skip
    pull = flow(ts=T0 + HOUR, src_ip="142.61.255.9", dst_ip="172.16.1.11", dst_port=443,
                bytes_out=400, bytes_in=80_000_000)  # fmt: skip
    found = detect(ThreatIntel(indicators=PLAIN), flows=[scan, pull], start=T0, end=END)
    by_host = {f.host: f for f in found}
    assert by_host["172.16.1.10"].score == 50.0
    assert by_host["172.16.1.10"].evidence["direction"] == "inbound"
    assert by_host["172.16.1.11"].score >= 90 and by_host["172.16.1.11"].bytes_out == 80_000_000
    assert "opened 1 flow(s) to 172.16.1.11; it answered with 80 MB" in (
        by_host["172.16.1.11"].summary
    )


def test_listed_site_addresses_are_ignored(detect: Detect, tmp_path: Path) -> None:
    intel = tmp_path / "intel.txt"
    intel.write_text("10.0.0.0/8\n192.168.1.1\n")
    rows = [flow(ts=T0 + HOUR, src_ip=WS, dst_ip="10.1.2.10", bytes_out=9_000_000)]
    assert detect(ThreatIntel(indicators=str(intel)), flows=rows, start=T0, end=END) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.2.3.4", Indicator("ip", "1.2.3.4", "s")),
        ("1.2.3.4/32", Indicator("ip", "1.2.3.4", "s")),
        ("1.2.3.9/24", Indicator("net", "1.2.3.0/24", "s")),
        ("2001:DB8::1", Indicator("ip", "2001:db8::1", "s")),
        ("*.Evil.Example.", Indicator("domain", "evil.example", "s")),
        ("hxxp://x", None),
        ("https://drop.evil.example:8443/a?b=c", Indicator("domain", "drop.evil.example", "s")),
        ("http://[2001:db8::2]/x", Indicator("ip", "2001:db8::2", "s")),
        ("localhost", None),
        ("bad_value!", None),
    ],
)
def test_parse_one_indicator(text: str, expected: Indicator | None) -> None:
    assert parse(text, "s") == expected


def test_sample_files_load() -> None:
    assert [i.value for i in load(Path(PLAIN))] == [
        "7.19.114.253", "142.61.255.0/24", "mediacache493.xyz", "paste.evil.example",
        "2001:db8:bad::/48",
    ]  # fmt: skip
    values = {i.value for i in load(Path(STIX))}
    assert values == {
        "7.19.114.253", "update-check.example", "drop.evil.example", "142.61.255.0/24",
        "80.132.124.185", "mediacache493.xyz",
    }  # fmt: skip


def test_bad_files_name_file_and_line_or_object(tmp_path: Path) -> None:
    plain = tmp_path / "list.txt"
    plain.write_text("# ok\n1.2.3.4\nnot an indicator\n")
    with pytest.raises(ConfigError, match=r"list\.txt:3: one indicator per line"):
        load(plain)
    plain.write_text("1.2.3.4\n\n300.1.2.3\n")
    with pytest.raises(ConfigError, match=r"list\.txt:3: not an IP address, CIDR range"):
        load(plain)
    broken = tmp_path / "bundle.json"
    broken.write_text('{"type": "bundle",\n "objects": [\n  {"type": }\n]}')
    with pytest.raises(ConfigError, match=r"bundle\.json:3: not valid JSON"):
        load(broken)
    bad = {"type": "indicator", "id": "indicator--42", "pattern_type": "stix",
           "pattern": "[ipv4-addr:value = '1.2.3.400']"}  # fmt: skip
    broken.write_text(json.dumps({"type": "bundle", "objects": [bad]}))
    with pytest.raises(ConfigError, match=r"bundle\.json: indicator--42: not a valid ipv4-addr"):
        load(broken)
    bad["pattern"] = "[domain-name:value = 'evil.example'"
    broken.write_text(json.dumps({"type": "bundle", "objects": [bad]}))
    with pytest.raises(ConfigError, match="indicator--42: unbalanced quotes or brackets"):
        load(broken)
    with pytest.raises(ConfigError, match="cannot read indicator file"):
        load(tmp_path / "missing.txt")

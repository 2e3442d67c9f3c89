"""Findings in words (``hemostat.detect.words``): every branch of every detector's sentence,
in English exactly as the summaries were stored before the sentences moved to the locale files
(the strings below were produced by the former f-strings), and in French with the same facts
in French words and French number formats."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from hemostat.detect import DETECTORS, Detector
from hemostat.detect.words import PLAIN
from hemostat.report.lang import NBSP, Lang, load

T = datetime(2023, 6, 12, 1, 22, 40, tzinfo=UTC)
E = datetime(2023, 6, 12, 2, 0, tzinfo=UTC)

#: English words and phrases a French sentence must not contain (data values removed first)
ENGLISH = (
    "sent", "to the Internet", "expected", "top destinations", "connections", "times", "every",
    "hours", "host", "hosts", "from", "with", "which", "matches", "looked up", "lookups",
    "queries", "asked", "unique", "names", "encoded", "pulled", "usual", "then", "later",
    "within", "Supplier", "account", "outside", "declared", "reaching", "exported", "rows",
    "read", "recurring", "history", "before", "own", "median", "peers", "seen", "first",
    "known", "rare but", "shift", "received", "where", "network", "the", "of", "and", "in",
    "to", "at", "by", "MAD", "beacon", "timing", "size", "count", "indicator",
    "answered", "tunnel carrying", "office", "share", "end to end", "bytes",
)  # fmt: skip


def fields(**values: Any) -> dict[str, Any]:
    """A detector's output row (the columns its sentence reads)."""
    return values


_ENGLISH = re.compile(r"\b(" + "|".join(re.escape(w) for w in ENGLISH) + r")\b", re.IGNORECASE)

# fmt: off
CASES = [
    ("egress_volume", fields(host="10.1.8.11", bytes_out=590_000_000, window_hours=1, window_end=E,
        ratio=42.4, expected_bytes=14_000_000, baseline="own history", own_median=2_100_000.0,
        own_mad=800_000.0, how_median=3_000_000.0, hod_median=2_500_000.0, peer_group="fileserver",
        peer_hosts=1, peer_by_hour=False, peer_median=1500.0, peer_mad=700.0, peer_quantile=None,
        top_destinations=[{"destination": "210.243.127.241", "bytes": 580_000_000},
                          {"destination": "13.107.4.46", "bytes": 9_000_000},
                          {"destination": "13.107.4.47", "bytes": 900_000},
                          {"destination": "13.107.4.48", "bytes": 100}]),
        "10.1.8.11 sent 590 MB to the Internet in 1 h up to 2023-06-12 02:00 UTC, 42x the "
        "expected 14 MB (own median 2.1 MB, MAD 800 kB, 3.0 MB at this hour of the week; "
        "fileserver group (1 host): median 1.5 kB, MAD 700 B); top destinations "
        "210.243.127.241 (580 MB), 13.107.4.46 (9.0 MB), 13.107.4.47 (900 kB)."),
    ("egress_volume", fields(host="10.20.0.18", bytes_out=45_000_000, window_hours=6, window_end=E,
        ratio=3.46, expected_bytes=13_000_000, baseline="own history", own_median=1_000_000.0,
        own_mad=200_000.0, how_median=None, hod_median=1_200_000.0, peer_group="workstation",
        peer_hosts=180, peer_by_hour=True, peer_median=100_000.0, peer_mad=81_000.0,
        peer_quantile=12_500_000.0,
        top_destinations=[{"destination": "20.190.129.86", "bytes": 44_000_000}]),
        "10.20.0.18 sent 45 MB to the Internet in 6 h up to 2023-06-12 02:00 UTC, 3.5x the "
        "expected 13 MB (own median 1.0 MB, MAD 200 kB, 1.2 MB at this hour of the day; "
        "workstation group (180 hosts) at this hour of the day: median 100 kB, MAD 81 kB, p99 "
        "12 MB); top destinations 20.190.129.86 (44 MB)."),
    ("egress_volume", fields(host="10.1.3.10", bytes_out=375_000_000, window_hours=24, window_end=E,
        ratio=9.96, expected_bytes=1_000_000, baseline="peers", own_median=None, own_mad=None,
        how_median=None, hod_median=None, peer_group="net 10.1.3.", peer_hosts=3,
        peer_by_hour=False, peer_median=1100.0, peer_mad=1100.0, peer_quantile=None,
        top_destinations=[]),
        "10.1.3.10 sent 375 MB to the Internet in 24 h up to 2023-06-12 02:00 UTC, 10.0x the "
        "expected 1.0 MB (no own history; net 10.1.3. group (3 hosts): median 1.1 kB, MAD 1.1 "
        "kB); top destinations ."),
    ("beaconing", fields(host="10.1.4.11", destination="158.13.211.6", dst_port=8443,
        period_s=301.2,
        gap_mad_s=0.6, size_mode_share=1.0, size_mode=1190, name=None, name_hosts=None,
        days_seen=0, new_pair=True, known_destination=False, connections=2480, active_hours=21,
        observed_hours=24, dst_hosts=1, site_hosts=96, beacon_score=87.2, timing_score=0.93,
        size_score=1.0, hours_score=0.914, count_score=0.89),
        "10.1.4.11 called 158.13.211.6:8443 2480 times every 301 s (MAD 0.6 s), always 1.2 kB "
        "out, in 21 of 24 hours; 1 of 96 site hosts reach it; never seen before; beacon score "
        "87 (timing 0.93, size 1.00, hours 0.91, count 0.89)."),
    ("beaconing", fields(host="10.1.3.20", destination="192.0.2.80", dst_port=443, period_s=5.25,
        gap_mad_s=12.0, size_mode_share=0.06, size_mode=659, name="lab.example.org", name_hosts=3,
        days_seen=4, new_pair=False, known_destination=True, connections=288, active_hours=24,
        observed_hours=24, dst_hosts=1, site_hosts=96, beacon_score=96.0, timing_score=1.0,
        size_score=0.98, hours_score=1.0, count_score=0.91),
        "10.1.3.20 called 192.0.2.80:443 (lab.example.org, looked up by 3 hosts) 288 times "
        "every 5.2 s (MAD 12 s), 6 % of them 659 B out, in 24 of 24 hours; 1 of 96 site hosts "
        "reach it; destination known to the inventory; seen on 4 earlier day(s); beacon score "
        "96 (timing 1.00, size 0.98, hours 1.00, count 0.91)."),
    ("beaconing", fields(host="10.1.3.21", destination="192.0.2.81", dst_port=80, period_s=3600.0,
        gap_mad_s=700.0, size_mode_share=0.995, size_mode=2_500_000, name=None, name_hosts=None,
        days_seen=0, new_pair=False, known_destination=False, connections=24, active_hours=24,
        observed_hours=24, dst_hosts=2, site_hosts=96, beacon_score=60.5, timing_score=0.7,
        size_score=0.5, hours_score=1.0, count_score=0.4),
        "10.1.3.21 called 192.0.2.81:80 24 times every 60 min (MAD 12 min), always 2.5 MB "
        "out, in 24 of 24 hours; 2 of 96 site hosts reach it; no history to compare; beacon "
        "score 60 (timing 0.70, size 0.50, hours 1.00, count 0.40)."),
    ("dns_tunnel", fields(host="10.20.0.28", resolver=False, unique_names=47538,
        domain="static-img993.online", queries=47538, qps_peak=3.33,
        qtypes=["NULL 14285", "TXT 33253"],
        bytes_out=4_600_000, mean_name_length=97.4, entropy=4.71, domain_hosts=1),
        "10.20.0.28 asked 47,538 unique names under static-img993.online (47,538 queries, up "
        "to 3.3/s over 5 min; NULL 14285, TXT 33253), 4.6 MB encoded in names 97 characters "
        "long on average with 4.7 bits of entropy; 1 internal host(s) ask this domain."),
    ("dns_tunnel", fields(host="10.1.0.53", resolver=True, unique_names=980,
        domain="t.example.net", queries=1200, qps_peak=0.5, qtypes=None,
        bytes_out=90_000, mean_name_length=60.0, entropy=None, domain_hosts=2),
        "Resolver 10.1.0.53 (no client seen asking) asked 980 unique names under "
        "t.example.net (1,200 queries, up to 0.5/s over 5 min; ), 90 kB encoded in names 60 "
        "characters long on average with 0.0 bits of entropy; 2 internal host(s) ask this "
        "domain."),
    ("staging", fields(host="10.1.0.70", pull_ratio=9.2, push_ratio=513.4, gap_s=65,
        pulled_from=[{"store": "10.1.2.10", "bytes": 513_000_000, "new_client": True},
                     {"store": "dpi", "bytes": 2_000_000, "new_client": False}],
        pushed_to=[
            {"destination": "10.1.8.10", "port": 445, "bytes": 13_000_000, "external": False},
            {"destination": "77.21.157.45", "port": 443, "bytes": 500_000_000, "external": True},
        ]),
        "10.1.0.70 pulled 513 MB from 10.1.2.10 (never read from before), 2.0 MB from dpi, 9x "
        "the usual busiest hour, then 1 min later sent 500 MB to 77.21.157.45:443 (outside), "
        "13 MB to 10.1.8.10:445, 513x usual."),
    ("staging", fields(host="10.1.0.71", pull_ratio=3.0, push_ratio=4.0, gap_s=20,
        pulled_from=[{"store": "lab", "bytes": 50_000_000}],
        pushed_to=[{"destination": "10.1.8.10", "port": 445, "bytes": 50_000_000}]),
        "10.1.0.71 pulled 50 MB from lab, 3x the usual busiest hour, then within a minute "
        "sent 50 MB to 10.1.8.10:445, 4x usual."),
    ("staging", fields(host="10.1.0.72", pull_ratio=3.0, push_ratio=4.0, gap_s=5400,
        pulled_from=[], pushed_to=[]),
        "10.1.0.72 pulled , 3x the usual busiest hour, then 1.5 h later sent , 4x usual."),
    ("provider_access", fields(host="10.99.0.8", ts=T, provider="biomed-vendor",
        account="vx-support",
        destination="108.104.17.234", source_outside=True, off_hours=True,
        outside_hosts=["10.1.0.70", "10.1.0.71"], undeclared_account=True,
        lateral=["10.1.2.10", "10.1.8.10"], new_hosts=2),
        "Supplier biomed-vendor session by vx-support from 108.104.17.234 via 10.99.0.8 at "
        "2023-06-12 01:22 UTC: an address outside its declared ranges; outside its hours; "
        "reaching 10.1.0.70, 10.1.0.71 (not declared); with an account it did not declare; "
        "then moving on to 10.1.2.10, 10.1.8.10; 2 host(s) it never reached before."),
    ("provider_access", fields(host="10.99.0.9", ts=T, provider="pacs-vendor", account=None,
        accounts=["a1", "a2"], destination=None),
        "Supplier pacs-vendor session by a1, a2 via 10.99.0.9 at 2023-06-12 01:22 UTC: inside "
        "its envelope."),
    ("provider_access", fields(host="10.99.0.9", ts=T, provider="pacs-vendor", account=None,
        accounts=[], destination=None, new_hosts=1),
        "Supplier pacs-vendor session by an unknown account via 10.99.0.9 at 2023-06-12 01:22 "
        "UTC: 1 host(s) it never reached before."),
    ("access_anomaly", fields(host="10.1.0.70", user="postgres", part="postgresql://dpi/public",
        store="dpi", reason="bulk export", rows=23320, bytes=513_000_000, off_hours=True,
        new_to_it=True, prior_days=None, remote=True),
        "postgres from 10.1.0.70 exported 23,320 rows (513 MB) of postgresql://dpi/public "
        "outside office hours, pulled to another host: an export this account never made "
        "before."),
    ("access_anomaly", fields(host="10.1.2.20", user="backup", part=None, store="lab",
        reason="bulk export", rows=42400, bytes=35_000_000, off_hours=False,
        new_to_it=False, prior_days=1, remote=False),
        "backup from 10.1.2.20 exported 42,400 rows (35 MB) of lab: recurring."),
    ("access_anomaly", fields(host="10.1.2.30", user="edsr_etl", part=None, store="edsr",
        reason="bulk export", rows=None, bytes=None, off_hours=True,
        new_to_it=False, prior_days=None, remote=False),
        "edsr_etl from 10.1.2.30 exported 0 rows (?) of edsr outside office hours: no history "
        "to compare with."),
    ("access_anomaly", fields(host="10.20.0.61", user="u00073", part="smb://fs-01/RH", store="rh",
        reason="whole share", files=9, known_files=9, store_fraction=1.0, off_hours=False,
        new_to_it=True),
        "u00073 from 10.20.0.61 read smb://fs-01/RH end to end (9 of its 9 known files, 100% "
        "of the data store's bytes), a first for this account."),
    ("access_anomaly", fields(host="10.20.0.62", user="u00074", part="smb://fs-01/Pharma",
        store=None,
        reason="whole share", files=25, known_files=30, store_fraction=0.0, off_hours=True,
        new_to_it=False),
        "u00074 from 10.20.0.62 read smb://fs-01/Pharma end to end (25 of its 30 known files) "
        "outside office hours."),
    ("access_anomaly", fields(host="10.20.0.63", user="dr_x", part="postgresql://dpi/public",
        store="dpi", reason="volume", rows=120000, bytes=9_000_000, usual=1500.0, ratio=80.2,
        off_hours=True),
        "dr_x from 10.20.0.63 read 120,000 rows of postgresql://dpi/public in one hour "
        "outside office hours, 80x its usual hour (median 1,500)."),
    ("access_anomaly", fields(host="10.20.0.64", user="svc", part="smb://fs-01/Scans",
        store=None, reason="volume", rows=None, bytes=3_000_000_000, usual=1_000_000.0,
        ratio=3000.0, off_hours=False),
        "svc from 10.20.0.64 read 3.0 GB of smb://fs-01/Scans in one hour, 3000x its usual "
        "hour (median 1,000,000)."),
    ("access_anomaly", fields(host="10.20.0.65", user="dr_y", part="postgresql://dpi/public",
        store="dpi", reason="oversized read", rows=300000, bytes=20_000_000, usual=2000.0,
        ratio=150.0, largest=250000, usual_largest=1200.0, off_hours=False),
        "dr_y from 10.20.0.65 read 300,000 rows of postgresql://dpi/public in one hour, 150x "
        "its usual hour (median 2,000); one read returned 250,000 rows, its largest usual "
        "read is 1,200 rows."),
    ("threat_intel", fields(host="10.1.4.11", destination="158.13.211.6", flows=248, match="flow",
        direction="outbound", indicator="158.13.211.6", source="indicators.txt:1",
        bytes_out=295_000),
        "10.1.4.11 sent 295 kB in 248 flow(s) to 158.13.211.6, which matches indicator "
        "158.13.211.6 (indicators.txt:1)."),
    ("threat_intel", fields(host="10.1.4.12", destination="158.13.211.7", flows=3, match="flow",
        direction="inbound", indicator="158.13.211.0/24", source="feed.json", bytes_out=1_200),
        "158.13.211.7, which matches indicator 158.13.211.0/24 (feed.json), opened 3 flow(s) "
        "to 10.1.4.12; it answered with 1.2 kB."),
    ("threat_intel", fields(host="10.1.4.13", destination="158.13.211.8", flows=0, match="answer",
        indicator="158.13.211.8", source="feed.json", bytes_out=0, name="evil.example.com",
        names=1, lookups=4),
        "10.1.4.13 looked up evil.example.com (4 lookups) and got 158.13.211.8, which matches "
        "indicator 158.13.211.8 (feed.json); no flow to it was seen."),
    ("threat_intel", fields(host="10.1.4.14", destination="evil.example.com", flows=12,
        match="lookup+flow", indicator="evil.example.com", source="feed.json", bytes_out=2_000_000,
        name="a.evil.example.com", names=3, lookups=40, addresses=["198.18.0.1", "198.18.0.2"]),
        "10.1.4.14 looked up a.evil.example.com and 2 other name(s) (40 lookups) under "
        "indicator evil.example.com (feed.json), then sent 2.0 MB in 12 flow(s) to "
        "198.18.0.1, 198.18.0.2."),
    ("threat_intel", fields(host="10.20.0.28", destination="static-img993.online", flows=0,
        match="tunnel", indicator="static-img993.online", source="indicators.txt:10",
        bytes_out=5_600_000, name="x.static-img993.online", names=47538, lookups=47538),
        "10.20.0.28 looked up x.static-img993.online and 47537 other name(s) (47538 lookups) "
        "under indicator static-img993.online (indicators.txt:10): a DNS tunnel carrying 5.6 "
        "MB in the names themselves."),
    ("threat_intel", fields(host="10.20.0.29", destination="evil.example.com", flows=None,
        match="lookup", indicator="evil.example.com", source="feed.json", bytes_out=0,
        name="evil.example.com", names=None, lookups=1),
        "10.20.0.29 looked up evil.example.com (1 lookups) under indicator evil.example.com "
        "(feed.json); no data was sent to it."),
    ("upload_ratio", fields(host="10.1.8.10", destination="77.21.157.45", bytes_out=268_000_000,
        bytes_in=536_000, pcr=0.9961, shift=1.996, peer_group="fileserver", pair_history_pcr=0.2,
        host_other_pcr=-1.0, peer_pcr=-0.9987, network_pcr=-0.5),
        "10.1.8.10 sent 268 MB to 77.21.157.45 and its network and received 536 kB: "
        "producer-consumer ratio +0.996 where this pair before +0.20, its other Internet "
        "traffic -1.00, fileserver peers -1.00, other hosts uploading there -0.50 (shift "
        "+2.00)."),
    ("upload_ratio", fields(host="10.1.8.11", destination="77.21.157.46", bytes_out=68_000_000,
        bytes_in=None, pcr=1.0, shift=0.0, peer_group="net 10.1.8."),
        "10.1.8.11 sent 68 MB to 77.21.157.46 and its network and received ?: "
        "producer-consumer ratio +1.000 where no earlier traffic to compare with (shift "
        "+0.00)."),
    ("rare_destination", fields(host="10.1.9.5", bytes_out=5_100_000_000, flows=3,
        destination="198.51.100.4", name="backup.example.net", n_addresses=3,
        group="198.51.100.0/24",
        dst_hosts=1, active_hosts=96, first_seen=T, known_by="domain", domain_hosts=12,
        domain="example.net", expected_range="offsite-backup", history=True, host_sent_before=1000,
        fanout=120),
        "10.1.9.5 sent 5.1 GB in 3 flow(s) to 198.51.100.4 (backup.example.net) and 2 other "
        "rare address(es) of 198.51.100.0/24, a destination only 1 of 96 internal hosts "
        "talked to, first seen 2023-06-12 01:22 UTC; rare but known: 12 hosts resolve names "
        "of example.net; it lies in the range of expected transfer 'offsite-backup', whose "
        "source is another host; this host had sent only 1.0 kB to the Internet before; the "
        "host reaches 120 rare addresses, so novelty counts less."),
    ("rare_destination", fields(host="10.20.0.61", bytes_out=5_500_000, flows=20,
        destination="20.190.146.230", name=None, n_addresses=5, group="20.190.0.0/16",
        dst_hosts=1, active_hosts=96, first_seen=None, known_by="net16", net16_peak=73,
        history=True, host_sent_before=5_000_000, fanout=2),
        "10.20.0.61 sent 5.5 MB in 20 flow(s) to 20.190.146.230 and 4 other rare address(es) "
        "of 20.190.0.0/16, a destination only 1 of 96 internal hosts talked to, first seen in "
        "this window; rare but known: an address of 20.190.0.0/16 serves 73 hosts."),
    ("rare_destination", fields(host="10.1.4.10", bytes_out=863_000, flows=1,
        destination="166.119.4.147", name=None, n_addresses=None, group="166.119.0.0/16",
        dst_hosts=1, active_hosts=96, first_seen=T, known_by=None, history=False),
        "10.1.4.10 sent 863 kB in 1 flow(s) to 166.119.4.147, a destination only 1 of 96 "
        "internal hosts talked to, first seen 2023-06-12 01:22 UTC."),
]
# fmt: on


def detector(name: str) -> Detector:
    cls = DETECTORS[name]
    return cls(indicators="") if name == "threat_intel" else cls()  # type: ignore[call-arg]


def english_words(sentence: str, row: dict[str, Any]) -> list[str]:
    """English words left in ``sentence`` once the row's own texts (addresses, names, roles,
    accounts: data, not words) are taken out."""
    for text in sorted(_texts(row), key=len, reverse=True):
        sentence = sentence.replace(text, " ")
    return _ENGLISH.findall(sentence)


def _texts(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _texts(v)
    elif isinstance(value, list):
        for v in value:
            yield from _texts(v)


def in_lang_formats(english: str, lang: Lang) -> str:
    """The stored English sentence as an English report (times in UTC) writes it: sizes with a
    non-breaking space, the zone named in brackets."""
    return re.sub(r"(\d) ([kMGT]?B)\b", rf"\1{NBSP}\2", english).replace(" UTC", " (UTC)")


IDS = [f"{name}-{i}" for i, (name, _, _) in enumerate(CASES)]


@pytest.mark.parametrize(("name", "row", "stored"), CASES, ids=IDS)
def test_the_english_sentence_is_the_stored_summary_as_it_was(
    name: str, row: dict[str, Any], stored: str
) -> None:
    assert detector(name).explain(row) == stored
    assert detector(name).explain(row, PLAIN) == stored
    assert detector(name).explain(row, load("en", "UTC")) == in_lang_formats(stored, PLAIN)


def test_every_detector_and_branch_has_a_case() -> None:
    assert {name for name, _, _ in CASES} == set(DETECTORS)
    reasons = {row.get("reason") for name, row, _ in CASES if name == "access_anomaly"}
    assert reasons == {"bulk export", "whole share", "volume", "oversized read"}
    matches = {(row["match"], row.get("direction")) for n, row, _ in CASES if n == "threat_intel"}
    assert len(matches) == 6


@pytest.mark.parametrize(("name", "row", "stored"), CASES, ids=IDS)
def test_the_french_sentence_says_the_same_facts_in_french(
    name: str, row: dict[str, Any], stored: str
) -> None:
    fr = load("fr", "Europe/Paris")
    said = detector(name).explain(row, fr)
    assert english_words(said, row) == []
    assert said != stored and row["host"] in said
    for column in ("bytes_out", "bytes", "size_mode", "expected_bytes"):
        value = row.get(column)
        if value is not None and f" {PLAIN.size(value)}" in stored:
            assert fr.size(value) in said, column
    for value in row.values():
        if isinstance(value, datetime):
            assert fr.when(value) in said  # local time, the zone named
    assert " UTC" not in said and not re.search(r"\dx\b", said)  # "42x": "42 fois"


def test_french_numbers_take_french_marks_whatever_the_format_in_the_text() -> None:
    fr = load("fr", "Europe/Paris")
    name, row, _ = CASES[0]
    assert detector(name).explain(row, fr) == (
        "10.1.8.11 a envoyé 590 Mo vers Internet en 1 h jusqu'au 12/06/2023 04:00 "
        "(Europe/Paris), 42 fois le volume attendu de 14 Mo (son historique : médiane 2,1 Mo, "
        "écart absolu médian 800 ko, 3,0 Mo à cette heure de la semaine ; groupe fileserver "
        "(1 machine) : médiane 1,5 ko, écart absolu médian 700 o) ; principales destinations : "
        "210.243.127.241 (580 Mo), 13.107.4.46 (9,0 Mo), 13.107.4.47 (900 ko)."
    ).replace(" Mo", f"{NBSP}Mo").replace(" ko", f"{NBSP}ko").replace(" o)", f"{NBSP}o)")
    upload = next(row for name, row, _ in CASES if name == "upload_ratio")
    said = detector("upload_ratio").explain(upload, fr)
    assert "ratio producteur-consommateur de +0,996, contre +0,20 pour cette paire" in said
    dns = next(row for name, row, _ in CASES if name == "dns_tunnel")
    said = detector("dns_tunnel").explain(dns, fr)
    assert f"a demandé 47{NBSP}538 noms distincts" in said and "3,3 par seconde" in said
    share = next(row for name, row, _ in CASES if row.get("reason") == "whole share")
    assert f"100{NBSP}% des octets de la base" in detector("access_anomaly").explain(share, fr)

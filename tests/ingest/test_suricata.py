"""Suricata EVE JSON, from the real eve.json samples in ../shared/data and small hand-written
samples under tests/data/suricata/ (netflow events and DNS log versions that the real ones
lack, and a file with broken lines).

Expected counts were taken independently of hemostat:

- flows: ``grep -c '"event_type":"flow"' FILE`` (no sample has netflow events);
- dns: ``grep -c '"type":"query"' FILE`` in the doh-tunnel runs, where a ``json.loads`` scan
  found every query's (flow_id, id, rrname) distinct and no answer without its query; in the
  slips file every packet was captured twice (``pkts_toserver`` 2 for one query): its 340
  query and 340 answer events form 170 distinct (flow_id, id, rrname) transactions;
- skipped: ``grep -o '"event_type":"[a-z]*"' FILE | sort | uniq -c``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from hemostat.errors import IngestError
from hemostat.ingest import detect, ingest_file
from hemostat.schema import Table
from hemostat.store import Store

F, D = Table.FLOWS, Table.DNS
DATA = Path(__file__).resolve().parents[1] / "data" / "suricata"
DOH = "doh-tunnel-daca/doh_tunnel_c2/{}/dnsoverhttps/suricata/eve.json"

SAMPLES = [
    ("slips-multiformat/test6-malicious.suricata.json", 3512, 170,
     {"alert": 745, "http": 56, "fileinfo": 3, "anomaly": 3, "tls": 1}),
    (DOH.format("0b04bdc87563f4909dcf819e299473e0"), 349, 159,
     {"http": 105, "fileinfo": 210, "tls": 18, "stats": 1}),
    (DOH.format("114d3f4082ae9fd03576fbd5b73b40e4"), 292, 135,
     {"http": 68, "fileinfo": 68, "tls": 24, "stats": 1}),
    (DOH.format("484cbc429999a4a16da99b04ac2f6c13"), 327, 149,
     {"http": 86, "fileinfo": 86, "tls": 26, "stats": 1}),
    (DOH.format("68c58a06f47716371dd3a039dabe84f9"), 425, 198,
     {"http": 141, "fileinfo": 282, "tls": 18, "stats": 1}),
    ("doh-tunnel-daca/doh_tunnel_file_transfer/4c99673934f75a13d8e7d69edde51648/dnsoverhttps/"
     "suricata/eve.json", 83, 41, {"stats": 1}),
]  # fmt: skip


def _is_eve(path: Path) -> bool:
    with path.open("rb") as fh:
        return b'"event_type"' in fh.read(4096)


def test_the_samples_are_every_eve_file_in_shared_data(shared: Path) -> None:
    found = {
        str(p.relative_to(shared))
        for p in shared.rglob("*")
        if p.is_file() and p.suffix == ".json" and _is_eve(p)
    }
    assert found == {s[0] for s in SAMPLES}


@pytest.mark.parametrize(("rel", "flows", "dns", "skipped"), SAMPLES, ids=[s[0] for s in SAMPLES])
def test_every_eve_sample_ingests_exactly(
    shared: Path, store: Store, rel: str, flows: int, dns: int, skipped: dict[str, int]
) -> None:
    report = ingest_file(store, shared / rel)
    assert report.format == "suricata_eve"
    assert (report.rows, report.bad_count) == ({F: flows, D: dns}, 0)
    assert report.skipped == {f"suricata {kind} event": n for kind, n in skipped.items()}
    assert (store.counts().flows, store.counts().dns) == (flows, dns)
    no_cid = "SELECT count(*) FROM flows WHERE community_id IS NULL"
    assert store.con.execute(no_cid).fetchall() == [(0,)]


def test_flow_fields(shared: Path, store: Store) -> None:
    ingest_file(store, shared / DOH.format("68c58a06f47716371dd3a039dabe84f9"))
    rows = store.con.execute(
        "SELECT ts, end_ts, src_ip, src_port, dst_ip, dst_port, proto, service, bytes_out, "
        "bytes_in, pkts_out, pkts_in, conn_state, host, source FROM flows "
        "WHERE conn_id = '645868270965202'"
    ).fetchall()
    # line 1 of the file, read by hand: start 10:10:20.446930+0300, 1161 bytes to the server
    assert rows == [(
        datetime(2022, 5, 8, 7, 10, 20, 446930, UTC), datetime(2022, 5, 8, 7, 10, 20, 455447, UTC),
        "192.168.0.30", 58298, "192.168.0.10", 443, "tcp", "tls", 1161, 3237, 8, 6, "closed",
        None, "suricata",
    )]  # fmt: skip


def test_failed_app_proto_is_no_service_and_host_is_kept(shared: Path, store: Store) -> None:
    ingest_file(store, shared / SAMPLES[0][0])
    assert store.con.execute(
        "SELECT service, host, bytes_out, bytes_in FROM flows WHERE conn_id = '445348883402532'"
    ).fetchall() == [(None, "stratosphere.org", 4056, 0)]


def test_dns_query_and_its_answers_are_one_row(shared: Path, store: Store) -> None:
    ingest_file(store, shared / SAMPLES[0][0])
    # two query and two answer events (a doubly captured packet each), one transaction
    rows = store.con.execute(
        "SELECT ts, src_ip, dst_ip, query, qtype, rcode, answers, host FROM dns "
        "WHERE conn_id = '1419339999887459'"
    ).fetchall()
    assert rows == [(
        datetime(2021, 6, 6, 14, 15, 30, 868451, UTC), "192.168.1.129", "192.168.1.1",
        "www.myedimax.com", "A", "NOERROR",
        ["ddns.myedimax.com", "ns.myedimax.com", "122.248.252.67"], "stratosphere.org",
    )]  # fmt: skip


def test_unanswered_queries_have_no_rcode(shared: Path, store: Store) -> None:
    ingest_file(store, shared / SAMPLES[2][0])
    # 135 query events, 128 answer events (grep -c '"type":"answer"')
    unanswered = "SELECT count(*) FROM dns WHERE rcode IS NULL AND answers IS NULL"
    assert store.con.execute(unanswered).fetchall() == [(135 - 128,)]


def test_netflow_events_are_one_row_per_direction(store: Store) -> None:
    report = ingest_file(store, DATA / "netflow.eve.json")
    assert report.rows == {F: 3}
    rows = store.con.execute(
        "SELECT src_ip, dst_ip, dst_port, bytes_out, bytes_in, pkts_out, pkts_in, ts, host "
        "FROM flows WHERE conn_id = '1840127461233456' ORDER BY ts"
    ).fetchall()
    assert rows == [
        ("10.1.2.10", "203.0.113.5", 443, 150000, None, 120, None,
         datetime(2024, 3, 1, 9, 0, tzinfo=UTC), "sensor-1"),
        ("203.0.113.5", "10.1.2.10", 51000, 4000, None, 40, None,
         datetime(2024, 3, 1, 9, 0, 0, 30000, UTC), "sensor-1"),
    ]  # fmt: skip


def test_icmp6_flow_without_ports_keeps_its_community_id(store: Store) -> None:
    ingest_file(store, DATA / "netflow.eve.json")
    assert store.con.execute(
        "SELECT proto, src_port, dst_port, community_id, host FROM flows WHERE conn_id = '999'"
    ).fetchall() == [("icmp6", None, None, "1:given-by-suricata", "gw-2")]


def test_dns_log_versions_fold_into_transactions(store: Store) -> None:
    report = ingest_file(store, DATA / "dns-versions.eve.json")
    assert (report.rows, report.bad_count) == ({D: 4}, 0)
    rows = store.con.execute(
        "SELECT src_ip, dst_ip, query, qtype, rcode, answers FROM dns ORDER BY ts"
    ).fetchall()
    assert rows == [
        # v1: one answer event per record, server written as the source
        ("10.1.2.12", "10.1.0.53", "www.example.com", "A", "NOERROR",
         ["web.example.com", "192.0.2.7"]),
        # a response whose question was not logged: a row of its own, client first
        ("10.1.2.13", "10.1.0.53", "nope.example.com", "A", "NXDOMAIN", None),
        # the same DNS id asked again after its answer: a new, unanswered transaction
        ("10.1.2.12", "10.1.0.53", "www.example.com", "AAAA", None, None),
        # v3: request and response with a queries list
        ("10.1.2.10", "10.1.0.53", "exfil.example.org", "TXT", "NOERROR", ["ok"]),
    ]  # fmt: skip


def test_detection_is_by_content(shared: Path, tmp_path: Path) -> None:
    renamed = tmp_path / "conn.log"
    renamed.write_bytes((shared / SAMPLES[1][0]).read_bytes())
    assert detect(renamed).id == "suricata_eve"
    assert detect(shared / "rita-zeek/json_with_all_fields/conn.log").id == "zeek_json"
    assert detect(shared / "slips-multiformat/test10-mixed-zeek-dir/conn.log").id == "zeek_tsv"
    not_eve = tmp_path / "eve.json"
    not_eve.write_text('{"timestamp": "2024-01-01T00:00:00Z", "message": "hello"}\n')
    with pytest.raises(IngestError, match="not a recognised format"):
        detect(not_eve)


def test_bad_lines_are_counted_with_their_numbers(store: Store) -> None:
    report = ingest_file(store, DATA / "malformed.eve.json")
    assert report.rows == {F: 2}
    assert report.skipped == {"suricata alert event": 1}
    assert [(b.line, b.message.split(" (")[0].split(":")[0]) for b in report.bad] == [
        (2, "invalid JSON"),  # cut in the middle
        (3, "bad Suricata flow event"),  # no "flow" object
        (5, "bad Suricata flow event"),  # start "yesterday"
    ]
    assert report.bad_count == 3


def test_strict_refuses_the_file_and_stores_nothing(store: Store) -> None:
    with pytest.raises(IngestError, match=r"malformed\.eve\.json:2: invalid JSON.*--strict"):
        ingest_file(store, DATA / "malformed.eve.json", strict=True)
    assert store.counts() == type(store.counts())(0, 0, 0, 0)

"""Zeek conn/open_conn/dns logs, TSV and JSON, from the real samples in ../shared/data.

Expected counts were taken independently of hemostat with
``grep -v '^#' FILE | grep -c .`` (``zcat`` first for .gz): one row per non-header line.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from hemostat.errors import IngestError
from hemostat.ingest import detect, ingest, ingest_file
from hemostat.schema import Table
from hemostat.store import Store

F, D = Table.FLOWS, Table.DNS

SAMPLES = [
    ("rita-zeek/json_with_all_fields/conn.log", "zeek_json", F, 29),
    ("rita-zeek/json_with_all_fields/dns.log", "zeek_json", D, 34),
    ("rita-zeek/json_with_all_fields/open_conn.log", "zeek_json", F, 59),
    ("rita-zeek/open_conns/closed/conn.log", "zeek_tsv", F, 59),
    ("rita-zeek/open_conns/open/conn.log", "zeek_tsv", F, 29),
    ("rita-zeek/open_conns/open/dns.log", "zeek_tsv", D, 34),
    ("rita-zeek/open_conns/open/open_conn.log", "zeek_tsv", F, 59),
    ("rita-zeek/open_sni/open_conn.17_32_32-18_00_00.log.gz", "zeek_tsv", F, 12),
    ("slips-multiformat/port-scans/horizontal/conn.log", "zeek_tsv", F, 41),
    ("slips-multiformat/port-scans/vertical/conn.log", "zeek_json", F, 50),
    ("slips-multiformat/test10-mixed-zeek-dir/conn.log", "zeek_tsv", F, 141),  # + 1 indented header line,
    ("slips-multiformat/test10-mixed-zeek-dir/dns.log", "zeek_tsv", D, 93),
    ("slips-multiformat/test13-malicious-dhcpscan-zeek-dir/conn.log", "zeek_json", F, 2),
    ("slips-multiformat/test14-malicious-zeek-dir/conn.log", "zeek_json", F, 5),
    ("slips-multiformat/test15-malicious-zeek-dir/conn.log", "zeek_json", F, 2),
    ("slips-multiformat/test18-malicious-ctu-sme-11-win/zeek-labeled/conn.log.labeled", "zeek_tsv", F, 766),
    ("slips-multiformat/test18-malicious-ctu-sme-11-win/zeek-labeled/dns.log.labeled", "zeek_tsv", D, 22),
    ("slips-multiformat/test9-mixed-zeek-dir/conn.log", "zeek_json", F, 576),
    ("slips-multiformat/test9-mixed-zeek-dir/dns.log", "zeek_json", D, 239),
    ("stratosphere-zeek-labeled/001-zeek-scenario-malicious/conn.log", "zeek_tsv", F, 992),
    ("stratosphere-zeek-labeled/002-zeek-scenario-port-scanning/conn.log", "zeek_json", F, 4504),
    ("stratosphere-zeek-labeled/003-zeek-scenario-malicious/conn.log", "zeek_tsv", F, 361),
    ("stratosphere-zeek-labeled/003-zeek-scenario-malicious/dns.log", "zeek_tsv", D, 1),
    ("stratosphere-zeek-labeled/005-zeek-scenario-malicious/dns.log", "zeek_tsv", D, 992),
    ("stratosphere-zeek-labeled/006-zeek-scenario-ssh/conn.log", "zeek_tsv", F, 18),
    ("stratosphere-zeek-labeled/008-zeek-mixed/data/conn.log.labeled", "zeek_tsv", F, 5663),
    ("stratosphere-zeek-labeled/009-zeek-malicious/data/dns.log.labeled", "zeek_tsv", D, 24181),
    ("stratosphere-zeek-labeled/010-zeek-mixed/data/conn.log.labeled", "zeek_tsv", F, 5347),
    ("stratosphere-zeek-labeled/011-zeek-mixed/data/conn.log.labeled", "zeek_tsv", F, 9048),
    ("stratosphere-zeek-labeled/012-zeek-mixed/data/conn.log.labeled", "zeek_tsv", F, 4740),
    ("wrccdc2018-zeek/zeek-default/dns.log.gz", "zeek_tsv", D, 53615),
    ("wrccdc2018-zeek/zeek-json/dns.json.gz", "zeek_json", D, 53615),
]


@pytest.mark.parametrize(("rel", "fmt", "table", "rows"), SAMPLES, ids=[s[0] for s in SAMPLES])
def test_every_zeek_sample_ingests_exactly(
    shared: Path, store: Store, rel: str, fmt: str, table: Table, rows: int
) -> None:
    report = ingest_file(store, shared / rel)
    assert report.format == fmt
    assert (report.rows, report.bad_count) == ({table: rows}, 0)
    assert store.con.execute(f"SELECT count(*) FROM {table}").fetchall() == [(rows,)]
    if table is F:  # every flow gets its Community ID
        missing = "SELECT count(*) FROM flows WHERE community_id IS NULL AND proto IN ('tcp','udp')"
        assert store.con.execute(missing).fetchall() == [(0,)]


def test_conn_fields_map_to_canonical_columns(shared: Path, store: Store) -> None:
    ingest_file(store, shared / "rita-zeek/open_conns/closed/conn.log")
    row = store.con.execute(
        "SELECT epoch(ts), epoch(end_ts), src_ip, src_port, dst_ip, dst_port, proto, service, "
        "bytes_out, bytes_in, pkts_out, pkts_in, conn_state, source, open "
        "FROM flows WHERE conn_id = 'C2Xfq11LQij1b1EI73'"
    ).fetchall()
    # the same line, read by hand: ts 1517336156.416558, duration 8.019177, 452 / 5084 bytes
    assert len(row) == 1
    ts, end, *rest = row[0]
    assert ts == pytest.approx(1517336156.416558)
    assert end - ts == pytest.approx(8.019177, abs=1e-5)
    assert rest == ["10.55.100.109", 52074, "98.139.180.180", 443, "tcp", "ssl",
                    452, 5084, 13, 10, "RSTO", "zeek", False]  # fmt: skip


def test_dns_fields(shared: Path, store: Store) -> None:
    ingest_file(store, shared / "rita-zeek/open_conns/open/dns.log")
    row = store.con.execute(
        "SELECT src_ip, dst_ip, query, qtype, rcode, answers FROM dns "
        "WHERE conn_id = 'CVvreZ2AGtqjnP3nnl'"
    ).fetchall()
    assert row == [("192.168.88.2", "165.227.88.15", "6dde0175375169c68f.dnsc.r-1x.com", "TXT",
                    "NOERROR", ["TXT 18 302f017537c68f5169"])]  # fmt: skip


def test_open_conn_snapshots_replaced_by_closed_connections(shared: Path, store: Store) -> None:
    base = shared / "rita-zeek/open_conns"
    ingest_file(store, base / "open/open_conn.log")
    assert store.con.execute("SELECT count(*) FROM flows WHERE open").fetchall() == [(59,)]
    ingest_file(store, base / "closed/conn.log")
    # the 59 connections closed later: one row each, no snapshot left over
    assert store.con.execute(
        "SELECT count(*) FILTER (open), count(*), count(DISTINCT conn_id) FROM flows"
    ).fetchall() == [(0, 59, 59)]


def test_open_snapshots_of_the_same_connection_count_once(shared: Path, store: Store) -> None:
    ingest(store, [shared / "rita-zeek/open_sni"])
    # two hourly open_conn files list the same 12 long connections
    assert store.con.execute("SELECT count(*), count(DISTINCT conn_id) FROM flows").fetchall() == [
        (12, 12)
    ]


def test_closed_then_late_snapshot_keeps_only_closed(tmp_path: Path, store: Store) -> None:
    header = (
        "#separator \\x09\n#path\tconn\n#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\t"
        "id.resp_p\tproto\tduration\torig_bytes\tresp_bytes\n"
        "#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tinterval\tcount\tcount\n"
    )
    closed = tmp_path / "conn.log"
    closed.write_text(header + "100.0\tCabc\t10.0.0.1\t5000\t8.8.8.8\t443\ttcp\t60.0\t9000\t10\n")
    snapshot = tmp_path / "open_conn.log"
    snapshot.write_text(header + "100.0\tCabc\t10.0.0.1\t5000\t8.8.8.8\t443\ttcp\t30.0\t4000\t5\n")
    ingest_file(store, closed)
    ingest_file(store, snapshot)
    assert store.con.execute("SELECT bytes_out, open FROM flows").fetchall() == [(9000, False)]


def test_gzip_and_plain_are_the_same_rows(shared: Path, tmp_path: Path, store: Store) -> None:
    src = shared / "rita-zeek/open_conns/closed/conn.log"
    gz = tmp_path / "conn.00:00:00-01:00:00.log.gz"
    gz.write_bytes(gzip.compress(src.read_bytes()))
    assert ingest_file(store, gz).rows == {F: 59}


def test_same_file_twice_is_counted_once(shared: Path, tmp_path: Path, store: Store) -> None:
    src = shared / "rita-zeek/open_conns/closed/conn.log"
    copy = tmp_path / "renamed-conn.log"
    copy.write_bytes(src.read_bytes())
    first = ingest_file(store, src)
    again = ingest_file(store, copy)
    assert (first.duplicate, again.duplicate, again.rows) == (False, True, {})
    assert store.counts().flows == 59


def test_truncated_tsv_skips_the_cut_line_with_its_number(shared: Path, store: Store) -> None:
    report = ingest_file(store, shared / "rita-zeek/truncated/conn.log")
    assert report.rows == {F: 58}
    assert report.bad_count == 1
    assert str(report.bad[0]).startswith(f"{shared}/rita-zeek/truncated/conn.log:67: truncated")


def test_truncated_json_names_each_bad_line(shared: Path, store: Store) -> None:
    report = ingest_file(store, shared / "rita-zeek/truncated/conn_json.log")
    assert report.rows == {F: 2}
    assert [(b.line, b.message.split(":")[0]) for b in report.bad] == [
        (3, "bad Zeek conn record"),  # port 93145 is out of range
        (4, "invalid JSON (unexpected end of data)"),
    ]


def test_strict_refuses_the_file_and_stores_nothing(shared: Path, store: Store) -> None:
    with pytest.raises(IngestError, match=r"conn\.log:67: .*--strict"):
        ingest_file(store, shared / "rita-zeek/truncated/conn.log", strict=True)
    assert store.counts() == type(store.counts())(0, 0, 0, 0)
    # and the file can still be ingested leniently afterwards
    assert ingest_file(store, shared / "rita-zeek/truncated/conn.log").rows == {F: 58}


def test_headerless_tsv_is_refused_with_a_reason(shared: Path, store: Store) -> None:
    with pytest.raises(IngestError, match=r"conn_top\.log:1: Zeek TSV without its #fields"):
        ingest_file(store, shared / "rita-zeek/truncated/conn_top.log")
    assert store.counts().flows == 0


def test_text_file_is_not_mistaken_for_a_log(shared: Path, store: Store) -> None:
    with pytest.raises(IngestError, match="not a recognised format"):
        detect(shared / "rita-zeek/text_file/conn.log")


def test_other_zeek_logs_are_skipped_not_refused(shared: Path, store: Store) -> None:
    report = ingest_file(store, shared / "rita-zeek/has_unknown_field/http.log")
    assert (report.rows, report.error, report.skipped) == ({}, None, {"zeek http.log (not used)": 1})


def test_directory_of_rotated_logs(shared: Path, store: Store) -> None:
    reports = ingest(store, [shared / "stratosphere-zeek-labeled/010-zeek-mixed"])
    assert not [r for r in reports if r.error]
    assert store.counts().flows == 5347 and store.counts().dns == 8


def test_truncated_gzip_is_refused_with_one_line_naming_the_file(
    shared: Path, tmp_path: Path, store: Store
) -> None:
    """The cut surfaces only while rows are appended (DuckDB reads lazily): still an
    ``IngestError`` naming the file, and nothing of it is stored."""
    src = shared / "stratosphere-zeek-labeled/011-zeek-mixed/data/conn.log.labeled"
    data = gzip.compress(src.read_bytes())
    cut = tmp_path / "conn.log.gz"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(IngestError) as caught:
        ingest_file(store, cut)
    assert str(caught.value).startswith(f"{cut}: cannot read: ")
    assert "gzip" in str(caught.value).lower() and "\n" not in str(caught.value)
    assert store.counts() == type(store.counts())(0, 0, 0, 0)
    (report,) = ingest(store, [cut])  # the runner reports it and goes on
    assert report.error is not None and report.rows == {}
    assert ingest_file(store, shared / "rita-zeek/open_conns/closed/conn.log").rows == {F: 59}


DNS_HEADER = (
    "#separator \\x09\n#path\tdns\n#fields\tts\tuid\tid.orig_h\tid.resp_h\tquery\tqtype\trcode\n"
    "#types\ttime\tstring\taddr\taddr\tstring\tcount\tcount\n"
)
QTYPES = [(25, "KEY"), (10, "NULL"), (99, "SPF"), (257, "CAA"), (65, "HTTPS"), (64, "SVCB"),
          (16, "TXT"), (4242, "4242")]  # fmt: skip


def test_numeric_qtypes_get_their_names(tmp_path: Path, store: Store) -> None:
    log = tmp_path / "dns.log"
    rows = [f"{i}.0\tC{i}\t10.0.0.1\t10.0.0.53\tq{i}.example\t{n}\t0\n" for i, (n, _) in
            enumerate(QTYPES)]  # fmt: skip
    log.write_text(DNS_HEADER + "".join(rows))
    assert ingest_file(store, log).rows == {D: len(QTYPES)}
    got = store.con.execute("SELECT qtype, rcode FROM dns ORDER BY ts").fetchall()
    assert got == [(name, "NOERROR") for _, name in QTYPES]


def test_numeric_qtypes_in_json(tmp_path: Path, store: Store) -> None:
    log = tmp_path / "dns.log"
    log.write_text("".join(
        f'{{"ts": {i}, "id.orig_h": "10.0.0.1", "id.resp_h": "10.0.0.53", "query": "q", '
        f'"qtype": {n}, "rcode": 23}}\n' for i, (n, _) in enumerate(QTYPES)
    ))  # fmt: skip
    assert ingest_file(store, log).rows == {D: len(QTYPES)}
    got = store.con.execute("SELECT qtype, rcode FROM dns ORDER BY ts").fetchall()
    assert got == [(name, "BADCOOKIE") for _, name in QTYPES]

"""CICFlowMeter CSV, from the real samples in ../shared/data (improved CIC-IDS2017 and
CICFlowMeter-V4 dialects) and small files written here for the dialects the samples lack.

Expected counts were taken independently of hemostat with Python's ``csv.DictReader``
(``len(list(...))``; every row has as many fields as the header), and agree with the
row counts of each data set's PROVENANCE.md.
"""

from __future__ import annotations

import gzip
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hemostat.errors import IngestError
from hemostat.ingest import detect, ingest_file
from hemostat.schema import Table
from hemostat.store import Store

F = Table.FLOWS
CIC17 = "cicids2017-improved-sample/sampled_CICIDS2017_improved_rnd_5000/"
DOT = "dot-tunnel-cicflowmeter/CICFlowmeter_Flows/"

SAMPLES = [
    (CIC17 + "BENIGN_5000.csv", 5000),
    (CIC17 + "Botnet_736.csv", 736),
    (CIC17 + "Heartbleed_11.csv", 11),
    (CIC17 + "Infiltration_-_Portscan_5000.csv", 5000),
    (CIC17 + "Infiltration_36.csv", 36),
    (CIC17 + "Portscan_5000.csv", 5000),
    (CIC17 + "SSH-Patator_2961.csv", 2961),
    (CIC17 + "Web_Attack_-_Brute_Force_73.csv", 73),
    (CIC17 + "Web_Attack_-_SQL_Injection_13.csv", 13),
    (CIC17 + "Web_Attack_-_XSS_18.csv", 18),
    (DOT + "BEN_DoT.pcap_Flow.csv", 2604),
    (DOT + "MAL_ID_DoT.pcap_Flow.csv", 4854),
    (DOT + "MAL_PS_DoT.cap_Flow.csv", 995),
    ("cicids2017-improved-sample/data_header_reference.csv", 0),  # the header alone
]

#: the original CIC-IDS2017 ``TrafficLabelling`` header (leading spaces, a repeated column),
#: cut after the columns hemostat reads, plus its Label
ORIGINAL_HEADER = (
    "Flow ID, Source IP, Source Port, Destination IP, Destination Port, Protocol, Timestamp,"
    " Flow Duration, Total Fwd Packets, Total Backward Packets,Total Length of Fwd Packets,"
    " Total Length of Bwd Packets, Fwd Header Length, Fwd Header Length, Label"
)


def _is_cic(path: Path) -> bool:
    with path.open("rb") as fh:
        return b"Flow Duration" in fh.readline()


def _flow(store: Store, where: str = "true") -> list[tuple[object, ...]]:
    return store.con.execute(
        "SELECT ts, end_ts, src_ip, src_port, dst_ip, dst_port, proto, bytes_out, bytes_in, "
        f"pkts_out, pkts_in, conn_id, source FROM flows WHERE {where} ORDER BY ts"
    ).fetchall()


def test_the_samples_are_every_cicflowmeter_csv_in_shared_data(shared: Path) -> None:
    found = {str(p.relative_to(shared)) for p in shared.rglob("*.csv") if _is_cic(p)}
    assert found == {s[0] for s in SAMPLES}


@pytest.mark.parametrize(("rel", "rows"), SAMPLES, ids=[s[0] for s in SAMPLES])
def test_every_sample_ingests_exactly(shared: Path, store: Store, rel: str, rows: int) -> None:
    report = ingest_file(store, shared / rel)
    assert report.format == "cicflowmeter"
    assert (report.rows, report.bad_count, report.skipped) == ({F: rows}, 0, {})
    assert store.con.execute(
        "SELECT count(*), count(ts), count(src_ip), count(community_id) FROM flows"
    ).fetchall() == [(rows, rows, rows, rows)]


def test_improved_cicids2017_fields(shared: Path, store: Store) -> None:
    ingest_file(store, shared / (CIC17 + "Heartbleed_11.csv"))
    # the first data line, read by hand: 2017-07-05 18:12:15.650811, 119302728 µs, the
    # server leaks 7,556,917 bytes to the client
    assert _flow(store)[0] == (
        datetime(2017, 7, 5, 18, 12, 15, 650811, UTC),
        datetime(2017, 7, 5, 18, 14, 14, 953539, UTC),
        "172.16.0.1", 45022, "192.168.10.51", 444, "tcp", 8299, 7556917, 2685, 1729,
        "172.16.0.1-192.168.10.51-45022-444-6", "cicflowmeter",
    )  # fmt: skip


def test_flow_id_is_kept_although_not_unique(shared: Path, store: Store) -> None:
    ingest_file(store, shared / (CIC17 + "Heartbleed_11.csv"))
    # one long connection cut by CICFlowMeter's active timeout into 11 rows
    assert store.con.execute("SELECT count(*), count(DISTINCT conn_id) FROM flows").fetchall() == [
        (11, 1)
    ]


def test_v4_fields_with_minute_timestamps(shared: Path, store: Store) -> None:
    ingest_file(store, shared / (DOT + "BEN_DoT.pcap_Flow.csv"))
    # line 2: 06/05/2023 19:50 (day first), 4216647 µs, 853 bytes out in 14 packets
    assert _flow(store, "conn_id = '8.8.4.4-10.62.242.161-853-24311-6'") == [(
        datetime(2023, 5, 6, 19, 50, tzinfo=UTC), datetime(2023, 5, 6, 19, 50, 4, 216647, UTC),
        "10.62.242.161", 24311, "8.8.4.4", 853, "tcp", 853, 0, 14, 1,
        "8.8.4.4-10.62.242.161-853-24311-6", "cicflowmeter",
    )]  # fmt: skip


def test_original_cicids2017_dialect(tmp_path: Path, store: Store) -> None:
    path = tmp_path / "Thursday-WorkingHours-Morning-WebAttacks.pcap_ISCX.csv"
    path.write_bytes(
        (ORIGINAL_HEADER + "\n").encode()
        + (
            b"192.168.10.50-192.168.10.3-57278-53-17,192.168.10.50,57278,192.168.10.3,53,17,"
            b"6/7/2017 8:59,30966,2,2,82,208,40,40,BENIGN\n"
            b"172.16.0.1-192.168.10.50-36180-80-6,172.16.0.1,36180,192.168.10.50,80,6,"
            b"6/7/2017 9:15,5185118,3,1,0,0,104,104,Web Attack \x96 Brute Force\n"
        )
    )  # a Windows-1252 dash in the label, as in the published files
    report = ingest_file(store, path)
    assert (report.format, report.rows, report.bad_count) == ("cicflowmeter", {F: 2}, 0)
    assert [r[:9] for r in _flow(store)] == [
        (datetime(2017, 7, 6, 8, 59, tzinfo=UTC), datetime(2017, 7, 6, 8, 59, 0, 30966, UTC),
         "192.168.10.50", 57278, "192.168.10.3", 53, "udp", 82, 208),
        (datetime(2017, 7, 6, 9, 15, tzinfo=UTC), datetime(2017, 7, 6, 9, 15, 5, 185118, UTC),
         "172.16.0.1", 36180, "192.168.10.50", 80, "tcp", 0, 0),
    ]  # fmt: skip


def test_cicflowmeter_v4_twelve_hour_timestamps(shared: Path, tmp_path: Path, store: Store) -> None:
    lines = (shared / (DOT + "MAL_PS_DoT.cap_Flow.csv")).read_text().splitlines()
    pm = lines[1].replace("09/05/2023 01:28", "09/05/2023 07:04:12 PM")
    (tmp_path / "capture.pcap_Flow.csv").write_text(f"{lines[0]}\n{pm}\n")
    assert ingest_file(store, tmp_path / "capture.pcap_Flow.csv").rows == {F: 1}
    assert _flow(store)[0][0] == datetime(2023, 5, 9, 19, 4, 12, tzinfo=UTC)


def test_gzip_is_read(shared: Path, tmp_path: Path, store: Store) -> None:
    gz = tmp_path / "flows.csv.gz"
    gz.write_bytes(gzip.compress((shared / (CIC17 + "Botnet_736.csv")).read_bytes()))
    assert ingest_file(store, gz).rows == {F: 736}


def test_detection_is_by_content(shared: Path, tmp_path: Path) -> None:
    renamed = tmp_path / "conn.log"
    renamed.write_bytes((shared / (DOT + "MAL_PS_DoT.cap_Flow.csv")).read_bytes())
    assert detect(renamed).id == "cicflowmeter"
    assert detect(shared / "slips-multiformat/test10-mixed-zeek-dir/conn.log").id == "zeek_tsv"
    assert detect(shared / "slips-multiformat/test9-mixed-zeek-dir/conn.log").id == "zeek_json"


def test_csv_without_addresses_is_refused(tmp_path: Path, store: Store) -> None:
    # the MachineLearningCVE files of CIC-IDS2017: statistics only, no flow identity
    path = tmp_path / "Monday-WorkingHours.pcap_ISCX.csv"
    path.write_text(" Destination Port, Flow Duration, Total Fwd Packets, Total Length of Fwd "
                    "Packets, Total Length of Bwd Packets, Label\n54865,3,2,12,0,BENIGN\n")  # fmt: skip
    with pytest.raises(IngestError, match="not a recognised format"):
        detect(path)
    with pytest.raises(IngestError, match=r":1: not a CICFlowMeter header: no srcip, dstip, times"):
        ingest_file(store, path, fmt="cicflowmeter")
    assert store.counts().files == 0


def _malformed(shared: Path, tmp_path: Path) -> Path:
    """Five lines of a real file: line 2 has a count in a spreadsheet's notation (good),
    line 3 a bad date, line 4 is cut, line 5 has a count of ``Infinity``."""
    text = (shared / (DOT + "MAL_PS_DoT.cap_Flow.csv")).read_text()
    lines = [line.split(",") for line in text.splitlines()[:5]]
    lines[1][10] = "1.12E+07"  # TotLen Fwd Pkts
    lines[2][6] = "31/31/2023 01:28"  # Timestamp
    lines[3] = lines[3][:5]
    lines[4][8] = "Infinity"  # Tot Fwd Pkts
    path = tmp_path / "malformed.csv"
    path.write_text("".join(",".join(fields) + "\n" for fields in lines))
    return path


def test_bad_rows_are_counted_with_their_line_numbers(
    shared: Path, tmp_path: Path, store: Store
) -> None:
    report = ingest_file(store, _malformed(shared, tmp_path))
    assert (report.rows, report.bad_count) == ({F: 1}, 3)
    assert [(b.line, b.message.split(": ")[0]) for b in report.bad] == [
        (3, 'Error when converting column "Timestamp". Could not convert string '
            '"31/31/2023 01:28" to \'TIMESTAMP\''),
        (4, "truncated line"),
        (5, 'Error when converting column "Tot Fwd Pkts". Could not convert string '
            '"Infinity" to \'BIGINT\''),
    ]  # fmt: skip
    assert store.con.execute("SELECT bytes_out FROM flows").fetchall() == [(11_200_000,)]


def test_strict_refuses_the_file_and_stores_nothing(
    shared: Path, tmp_path: Path, store: Store
) -> None:
    with pytest.raises(IngestError, match=r"malformed\.csv:3: .*--strict"):
        ingest_file(store, _malformed(shared, tmp_path), strict=True)
    assert store.counts() == type(store.counts())(0, 0, 0, 0)

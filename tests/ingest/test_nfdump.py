"""nfdump CSV and nfcapd files: every shared sample ingests, with nfdump's own counts."""

from __future__ import annotations

import gzip
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hemostat.errors import IngestError
from hemostat.ingest import ingest, ingest_file
from hemostat.ingest import nfdump as nfdump_reader
from hemostat.ingest.reader import run_tool
from hemostat.schema import Sample, Table
from hemostat.store import Counts, Store

DERIVED = "derived-nfdump-from-pcaps"

#: flows per capture: `nfdump -R <dir>/nfcapd -I` (line "Flows:"), which equals
#: `nfdump -R <dir>/nfcapd -q -o csv | wc -l` and `zcat <dir>/flows.csv.gz | wc -l` minus 1
FLOWS = {
    "dnstunnel_dnscat2-txt": 7950, "dnstunnel_iodine-cname": 17449,
    "dnstunnel_normal_00000": 30000, "otrf_log4shell-jndi": 8, "otrf_lsass-campaign-01": 416,
    "slips_test-cc-capture-1": 598, "slips_test-cc-capture-2": 539,
    "slips_test19-ssh-bruteforce": 134, "slips_test7-malicious": 439,
}  # fmt: skip

# the columns two ingests of the same flows must agree on (CSV times have whole seconds)
_SAME = """SELECT date_trunc('second', ts), src_ip, src_port, dst_ip, dst_port, proto, bytes_out,
    bytes_in, pkts_out, pkts_in, conn_state, community_id FROM flows ORDER BY ALL"""


def _flow(store: Store, src: str, sport: int, dst: str, dport: int) -> dict[str, object]:
    rel = store.con.sql(
        f"SELECT * FROM flows WHERE src_ip = '{src}' AND src_port = {sport} "
        f"AND dst_ip = '{dst}' AND dst_port = {dport}"
    )
    rows = rel.fetchall()
    assert len(rows) == 1
    return dict(zip(rel.columns, rows[0], strict=True))


@pytest.mark.parametrize("capture", sorted(FLOWS))
def test_every_csv_sample_ingests(store: Store, shared: Path, capture: str) -> None:
    report = ingest_file(store, shared / DERIVED / capture / "flows.csv.gz")
    assert (report.format, report.rows, report.bad_count) == (
        "nfdump_csv", {Table.FLOWS: FLOWS[capture]}, 0,
    )  # fmt: skip


@pytest.mark.parametrize("capture", sorted(FLOWS))
def test_every_nfcapd_directory_ingests(store: Store, shared: Path, capture: str) -> None:
    reports = ingest(store, [shared / DERIVED / capture / "nfcapd"])
    assert {r.format for r in reports} == {"nfcapd"}
    assert sum(r.total for r in reports) == FLOWS[capture]
    assert store.counts().flows == FLOWS[capture]
    assert not any(r.bad_count or r.error for r in reports)


def test_slips_nfdump_file_is_nfcapd_layout_1(store: Store, shared: Path) -> None:
    report = ingest_file(store, shared / "slips-multiformat" / "test1-malicious.nfdump")
    assert report.format == "nfcapd"
    assert report.rows == {Table.FLOWS: 4593}  # `nfdump -r test1-malicious.nfdump -q | wc -l`
    # the exporter address names the sensor; 147.32.80.119 scans port 902 with bare SYNs:
    # `nfdump -r … -q 'src ip 147.32.80.119 and dst port 902 and flags S and not flags A' | wc -l`
    hosts = store.con.sql("SELECT DISTINCT host FROM flows").fetchall()
    assert hosts == [("147.32.82.62",)]
    syns = store.con.execute(
        "SELECT count(*) FROM flows WHERE src_ip = '147.32.80.119' AND dst_port = 902 "
        "AND conn_state = 'S0'"
    ).fetchone()
    assert syns == (_nfdump_count(shared, "flags S and not flags A"),)


def _nfdump_count(shared: Path, flt: str) -> int:
    path = shared / "slips-multiformat" / "test1-malicious.nfdump"
    out = subprocess.run(
        ["nfdump", "-r", str(path), "-q", f"src ip 147.32.80.119 and dst port 902 and {flt}"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return len(out.splitlines())


def test_known_flow_from_nfcapd(store: Store, shared: Path) -> None:
    ingest(store, [shared / DERIVED / "otrf_log4shell-jndi" / "nfcapd"])
    # `nfdump -R … -o 'fmt:%tsr %td %ibyt %ipkt %flg'`: 1652292621.782, 0.238 s, 657 B, 10 pkts
    flow = _flow(store, "192.168.2.5", 41696, "192.168.2.6", 1389)
    start = datetime.fromtimestamp(1652292621.782, UTC)
    assert (flow["ts"], flow["end_ts"]) == (start, start + timedelta(milliseconds=238))
    assert (flow["proto"], flow["bytes_out"], flow["pkts_out"]) == ("tcp", 657, 10)
    assert (flow["bytes_in"], flow["pkts_in"], flow["conn_state"]) == (0, 0, "SF")
    assert (flow["source"], flow["host"]) == ("nfdump", None)
    assert str(flow["conn_id"]).startswith("N") and flow["community_id"]
    # unidirectional records: the reply is its own row, from the server
    reply = _flow(store, "192.168.2.6", 1389, "192.168.2.5", 41696)
    assert (reply["bytes_out"], reply["pkts_out"], reply["community_id"]) == (
        620, 8, flow["community_id"],
    )  # fmt: skip


def test_csv_and_nfcapd_of_one_capture_agree(tmp_path: Path, shared: Path) -> None:
    """ICMP type/code are printed two ways (`769` in CSV, `3.1` by fmt:); both become ports."""
    capture = shared / DERIVED / "slips_test7-malicious"
    with Store(tmp_path / "csv") as a, Store(tmp_path / "bin") as b:
        ingest_file(a, capture / "flows.csv.gz")
        ingest(b, [capture / "nfcapd"])
        rows = a.con.sql(_SAME).fetchall()
        assert rows == b.con.sql(_SAME).fetchall()
        protos = dict(a.con.sql("SELECT proto, count(*) FROM flows GROUP BY 1").fetchall())
        icmp = a.con.execute(
            "SELECT src_port, dst_port, count(*) FROM flows WHERE proto = 'icmp' GROUP BY ALL"
        ).fetchall()
    # `zcat flows.csv.gz | cut -d, -f8 | sort | uniq -c`
    assert protos == {"tcp": 148, "udp": 265, "icmp": 10, "icmp6": 10, "2": 3, "0": 3}
    # `zcat flows.csv.gz | awk -F, '$8=="ICMP"{print $7}' | sort | uniq -c`: dp = 256 type + code
    assert sorted(icmp) == [(3, 1, 3), (3, 3, 1), (3, 10, 3), (3, 13, 2), (8, 0, 1)]


def test_csv_with_nfdump_summary_and_without_header(
    store: Store, shared: Path, tmp_path: Path
) -> None:
    nfcapd = shared / DERIVED / "otrf_log4shell-jndi/nfcapd/nfcapd.202205111810"
    full, quiet = tmp_path / "full.csv", tmp_path / "quiet.csv"
    full.write_text(run_tool(["nfdump", "-r", str(nfcapd), "-o", "csv"], nfcapd))
    quiet.write_text(run_tool(["nfdump", "-r", str(nfcapd), "-q", "-o", "csv"], nfcapd))
    assert "Summary" in full.read_text()
    report = ingest_file(store, full)
    assert (report.rows, report.bad_count) == ({Table.FLOWS: 8}, 0)
    assert report.skipped == {"nfdump summary lines": 3}
    report = ingest_file(store, quiet)
    assert (report.format, report.rows, report.bad_count) == (
        "nfdump_csv", {Table.FLOWS: 8}, 0,
    )  # fmt: skip


def _broken_csv(shared: Path, tmp_path: Path) -> Path:
    with gzip.open(shared / DERIVED / "otrf_log4shell-jndi" / "flows.csv.gz", "rt") as fh:
        lines = fh.read().splitlines()
    lines[2] = "yesterday" + lines[2][19:]  # line 3: bad start time
    lines[4] = lines[4][:40]  # line 5: cut short
    path = tmp_path / "broken.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_csv_broken_rows_counted_with_line_numbers(
    store: Store, shared: Path, tmp_path: Path
) -> None:
    report = ingest_file(store, _broken_csv(shared, tmp_path))
    assert (report.rows, report.bad_count) == ({Table.FLOWS: 6}, 2)
    assert [e.line for e in report.bad] == [3, 5]
    assert str(report.bad[0]).startswith(f"{tmp_path / 'broken.csv'}:3: ")
    assert "truncated line" in report.bad[1].message


def test_csv_broken_rows_strict_leaves_store_empty(
    store: Store, shared: Path, tmp_path: Path
) -> None:
    with pytest.raises(IngestError, match=r"broken\.csv:3: .*--strict"):
        ingest_file(store, _broken_csv(shared, tmp_path), strict=True)
    assert store.counts() == Counts(0, 0, 0, 0)


@pytest.mark.parametrize(
    ("cut", "message"),
    [(100_000, "appendix offset error"), (None, "ptr error")],
    ids=["truncated", "corrupt-block"],
)
def test_damaged_nfcapd_refused(
    store: Store, shared: Path, tmp_path: Path, cut: int | None, message: str
) -> None:
    data = (shared / DERIVED / "dnstunnel_normal_00000/nfcapd/nfcapd.202308050940").read_bytes()
    damaged = tmp_path / "nfcapd.202308050940"
    if cut:
        damaged.write_bytes(data[:cut])
    else:  # a block in the middle overwritten: nfdump exits non-zero half-way
        damaged.write_bytes(data[:900_000] + b"\xff" * 64 + data[900_064:])
    with pytest.raises(IngestError, match=message):
        ingest_file(store, damaged)
    assert store.counts() == Counts(0, 0, 0, 0)


def test_nfdump_that_stops_early_keeps_flows_and_counts_one_bad(
    store: Store, shared: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Old (layout 1) files cut short: nfdump prints the whole blocks, warns, exits 0."""

    def short_read(argv: list[str], path: Path, out: Path) -> str:
        run_tool(argv, path, out=out)
        return "read() error: Short read: Expected: 385884, received: 199712\n"

    monkeypatch.setattr(nfdump_reader, "run_tool", short_read)
    report = ingest_file(store, shared / "slips-multiformat" / "test1-malicious.nfdump")
    assert (report.rows, report.bad_count) == ({Table.FLOWS: 4593}, 1)
    assert "Short read" in report.bad[0].message
    with pytest.raises(IngestError, match="Short read"):
        ingest_file(store, shared / DERIVED / "otrf_log4shell-jndi/nfcapd/nfcapd.202205111810",
                    strict=True)  # fmt: skip


def test_missing_nfdump_tool_is_a_clear_error(
    store: Store, shared: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(IngestError, match="nfdump not found on PATH; install it with apt-get"):
        ingest_file(store, shared / "slips-multiformat" / "test1-malicious.nfdump")
    assert store.counts().files == 0


@pytest.mark.parametrize(
    ("head", "gz", "expected"),
    [
        (b"\x0c\xa5\x02\x00\x00\x01", False, True),  # layout 2, little-endian
        (b"\xa5\x0c\x00\x01\x00\x00", False, True),  # layout 1, big-endian
        (b"\x0c\xa5\x07\x00\x00\x01", False, False),  # unknown layout
        (b"\x0c\xa5\x02\x00\x00\x01", True, False),  # nfdump cannot read gzip
        (b"#separator \\x09\n", False, False),
    ],
)
def test_nfcapd_sniff(head: bytes, gz: bool, expected: bool) -> None:
    assert nfdump_reader.Nfcapd().sniff(Sample("nfcapd.202401010000", head, gz)) is expected


_ROW = "2022-05-11 18:10:20,2022-05-11 18:10:22,1.183,10.0.0.1,10.0.0.2,1,2,TCP,...AP.SF,0,0,4,"
_ROW += "549,0,0\n"  # a line of `nfdump -q -o csv`, cut after 15 of its 48 columns


@pytest.mark.parametrize(
    ("first", "expected"),
    [
        ("ts,te,td,sa,da,sp,dp,pr,flg,fwd,stos,ipkt,ibyt\n", True),
        (_ROW, True),
        ("2022-05-11 18:10:20,10.0.0.1,10.0.0.2\n", False),
        ("StartTime,Dur,Proto,SrcAddr,Sport,Dir,DstAddr\n", False),
    ],
)
def test_csv_sniff(first: str, expected: bool) -> None:
    assert nfdump_reader.NfdumpCsv().sniff(Sample("x.csv", first.encode(), False)) is expected

"""pcap/pcapng through tshark: every shared capture ingests, with tshark's own counts."""

from __future__ import annotations

import gzip
import shutil
import subprocess
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hemostat.errors import IngestError
from hemostat.ingest import Report, ingest_file
from hemostat.ingest import pcap as pcap_reader
from hemostat.ingest.pcap import Pcap
from hemostat.ingest.reader import run_tool
from hemostat.schema import Sample, Table
from hemostat.store import Counts, Store

TUNNEL, SLIPS, DOH = "dns-tunnel-pcaps", "slips-multiformat", "doh-tunnel-daca"

#: (flows, dns) per capture, counted with tshark apart from the reader:
#:   TCP flows   `tshark -r F -Y 'tcp && !icmp && !icmpv6' -T fields -e tcp.stream | sort -u`
#:   UDP flows   `tshark -r F -Y 'udp && !icmp && !icmpv6' -T fields -e udp.stream
#:               -e frame.time_epoch | awk '{if (!($1 in t) || $2 - t[$1] > 60) n++; t[$1] = $2}'`
#:   other flows the same awk per `-Y icmp`, `-Y icmpv6`, `-Y igmp` keyed by the address pair
#:   DNS rows    `tshark -r F -Y 'dns.flags.response==0 && !icmp && !icmpv6' | wc -l`, which
#:               equals the query counts in dns-tunnel-pcaps/PROVENANCE.md
COUNTS = {
    f"{TUNNEL}/crossEndPoint/AndIodine-MX/AndIodine-MX_00001_20230921200640.pcap": (1, 137),
    f"{TUNNEL}/normal/normal/normal_00000_20230805150331.pcap": (9306, 15000),
    f"{TUNNEL}/normal/normal/normal_00067_20230806152800.pcap": (423, 1247),
    f"{TUNNEL}/tunnel/dns2tcp-key/dns2tcp-key_00002_20230905100101.pcap": (2, 3037),
    f"{TUNNEL}/tunnel/dnscat2-cname/dnscat2-cname_00001_20230903170247.pcap": (1, 4774),
    f"{TUNNEL}/tunnel/dnscat2-txt/dnscat2-txt_00001_20230903183304.pcap": (1, 3975),
    f"{TUNNEL}/tunnel/iodine-cname.pcap": (2, 9089),
    f"{TUNNEL}/unkownTunnel/ozymandns.pcap": (8606, 8663),
    f"{SLIPS}/test-cc/test-cc-capture-1.pcap": (299, 0),
    f"{SLIPS}/test-cc/test-cc-capture-2.pcap": (22 + 239, 247),
    f"{SLIPS}/test12-icmp-portscan.pcap": (18, 0),
    f"{SLIPS}/test19-malicious-ssh/malicious-ssh-bruteforce.pcap": (67, 0),
    f"{SLIPS}/test7-malicious.pcap": (138 + 214 + 8 + 6 + 3, 97),
    f"{SLIPS}/test8-malicious.pcap": (1, 0),
    f"{DOH}/doh_tunnel_c2/0b04bdc87563f4909dcf819e299473e0/dnsoverhttps/dns.pcap": (349, 318),
    f"{DOH}/doh_tunnel_c2/114d3f4082ae9fd03576fbd5b73b40e4/dnsoverhttps/dns.pcap": (292, 135),
    f"{DOH}/doh_tunnel_c2/484cbc429999a4a16da99b04ac2f6c13/dnsoverhttps/dns.pcap": (327, 149),
    f"{DOH}/doh_tunnel_c2/68c58a06f47716371dd3a039dabe84f9/dnsoverhttps/dns.pcap": (425, 396),
    f"{DOH}/doh_tunnel_file_transfer/4c99673934f75a13d8e7d69edde51648/dnsoverhttps/dns.pcap": (83, 41),
}  # fmt: skip


Ingested = Callable[[str], tuple[Store, Report]]


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory, shared: Path) -> Iterator[Ingested]:
    """Each capture ingested once per module (tshark is the slow part), in a store of its own."""
    done: dict[str, tuple[Store, Report]] = {}

    def get(capture: str) -> tuple[Store, Report]:
        if capture not in done:
            store = Store(tmp_path_factory.mktemp("pcap"))
            done[capture] = store, ingest_file(store, shared / capture)
        return done[capture]

    yield get
    for store, _ in done.values():
        store.close()


def _rows(store: Store, sql: str) -> list[dict[str, object]]:
    cursor = store.con.execute(sql)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


@pytest.mark.slow
@pytest.mark.parametrize("capture", sorted(COUNTS))
def test_every_capture_ingests(ingested: Ingested, capture: str) -> None:
    store, report = ingested(capture)
    flows, dns = COUNTS[capture]
    assert report.format == "pcap"
    assert (report.rows[Table.FLOWS], report.rows[Table.DNS], report.bad_count) == (flows, dns, 0)
    assert store.counts() == Counts(flows, dns, 0, 1)


def test_tcp_flow_fields_and_states(ingested: Ingested) -> None:
    store, report = ingested(f"{SLIPS}/test7-malicious.pcap")
    assert report.skipped == {"non-IP frames (ARP, …)": 31}  # `tshark -Y arp | wc -l`
    [ssh] = _rows(store, "SELECT * FROM flows WHERE src_port = 51371")
    # `tshark -Y 'tcp.stream==0' -T fields -e ip.src -e tcp.len` summed per side; the packet
    # counts are those of `tshark -q -z conv,tcp` (383 frames ->, 253 <-)
    assert (ssh["src_ip"], ssh["dst_ip"], ssh["dst_port"], ssh["proto"]) == (
        "192.168.2.1", "192.168.2.16", 22, "tcp",
    )  # fmt: skip
    assert (ssh["bytes_out"], ssh["bytes_in"], ssh["pkts_out"], ssh["pkts_in"]) == (
        7773, 21430, 383, 253,
    )  # fmt: skip
    assert (ssh["service"], ssh["conn_state"], ssh["source"]) == ("ssh", "SF", "tshark")
    assert str(ssh["conn_id"]).startswith("P") and ssh["community_id"]
    # per tcp.stream, by awk: 131 with packets from the originator only, 5 refused by RST
    states = dict(store.con.execute(
        "SELECT conn_state, count(*) FROM flows WHERE proto = 'tcp' GROUP BY 1"
    ).fetchall())  # fmt: skip
    assert states == {"S0": 131, "REJ": 5, "SF": 2}


def test_beacon_flow_times(ingested: Ingested) -> None:
    store, _ = ingested(f"{SLIPS}/test-cc/test-cc-capture-1.pcap")
    [flow] = _rows(store, "SELECT * FROM flows WHERE src_port = 34360")
    # `tshark -Y 'tcp.stream==5' -T fields -e frame.time_epoch -e ip.src -e tcp.len`
    assert flow["ts"] == datetime.fromtimestamp(1707405410.797470, UTC)
    assert flow["end_ts"] == datetime.fromtimestamp(1707405410.992471, UTC)
    assert (flow["dst_ip"], flow["service"], flow["bytes_out"], flow["bytes_in"]) == (
        "141.193.213.21", "ssl", 841, 3906,
    )  # fmt: skip


def test_icmp_flows_use_type_and_code_as_ports(ingested: Ingested) -> None:
    store, _ = ingested(f"{SLIPS}/test12-icmp-portscan.pcap")
    [echo] = _rows(store, "SELECT * FROM flows WHERE dst_ip = '192.168.1.1'")
    # frames 1-2: echo request 192.168.1.109 -> 192.168.1.1 and its reply, ip.len 28 each
    assert (echo["src_ip"], echo["src_port"], echo["dst_port"], echo["proto"]) == (
        "192.168.1.109", 8, 0, "icmp",
    )  # fmt: skip
    assert (echo["pkts_out"], echo["pkts_in"], echo["bytes_out"], echo["conn_state"]) == (
        1, 1, 8, "SF",
    )  # fmt: skip


ANDIODINE = "AndIodine-MX_00001_20230921200640"


def _extract(shared: Path) -> list[dict[str, str]]:
    """The shared tshark extract of the AndIodine capture (see dns-tunnel-pcaps/PROVENANCE.md)."""
    with gzip.open(shared / TUNNEL / "derived-tshark-dns" / f"{ANDIODINE}.dns.tsv.gz", "rt") as fh:
        header, *lines = [line.rstrip("\n").split("\t") for line in fh]
    return [dict(zip(header, line, strict=True)) for line in lines]


def test_dns_rows_match_tshark_extract(ingested: Ingested, shared: Path) -> None:
    store, _ = ingested(f"{TUNNEL}/crossEndPoint/AndIodine-MX/{ANDIODINE}.pcap")
    extract = _extract(shared)
    queries = sorted(
        (round(float(r["frame.time_epoch"]), 6), r["ip.src"], r["dns.qry.name"])
        for r in extract if r["dns.flags.response"] == "0"
    )  # fmt: skip
    ours = store.con.execute("SELECT round(epoch(ts), 6), src_ip, query FROM dns ORDER BY ALL")
    assert [tuple(q) for q in ours.fetchall()] == queries
    kinds = store.con.execute("SELECT qtype, rcode, count(*) FROM dns GROUP BY ALL ORDER BY ALL")
    # 136 replies, 2 of them SERVFAIL and one to a query sent before the capture began;
    # the last 2 queries of the capture have none
    assert kinds.fetchall() == [("MX", "NOERROR", 133), ("MX", "SERVFAIL", 2), ("MX", None, 2)]
    replies = {
        tuple(sorted(r["dns.mx.mail_exchange"].split(",")))
        for r in extract if r["dns.flags.response"] == "1" and r["dns.mx.mail_exchange"]
    }  # fmt: skip
    answers = store.con.execute("SELECT answers FROM dns WHERE answers IS NOT NULL").fetchall()
    assert len(answers) == 133 and all(tuple(sorted(a)) in replies for (a,) in answers)


def test_dns_answers_of_a_known_reply(ingested: Ingested, shared: Path) -> None:
    store, _ = ingested(f"{TUNNEL}/crossEndPoint/AndIodine-MX/{ANDIODINE}.pcap")
    query, reply = _extract(shared)[1:3]  # frames 2 and 3 of the capture
    [row] = _rows(store, f"SELECT * FROM dns WHERE query = '{query['dns.qry.name']}'")
    assert row["ts"] == datetime.fromtimestamp(float(query["frame.time_epoch"]), UTC)
    assert (row["src_ip"], row["dst_ip"], row["qtype"], row["rcode"]) == (
        "172.16.1.15", "192.168.68.1", "MX", "NOERROR",
    )  # fmt: skip
    assert row["answers"] == reply["dns.mx.mail_exchange"].split(",")
    assert len(row["answers"]) == 5
    [flow] = _rows(store, f"SELECT * FROM flows WHERE conn_id = '{row['conn_id']}'")
    assert (flow["src_port"], flow["dst_port"], flow["service"]) == (50128, 53, "dns")


_ALL = "SELECT * EXCLUDE (ingest_id) FROM {} ORDER BY ALL"


@pytest.mark.slow
def test_pcapng_and_gzip_give_the_same_rows(
    ingested: Ingested, tmp_path: Path, shared: Path
) -> None:
    capture = f"{SLIPS}/test-cc/test-cc-capture-2.pcap"
    pcapng, gz = tmp_path / "cc2.pcapng", tmp_path / "cc2.pcap.gz"
    subprocess.run(["editcap", "-F", "pcapng", str(shared / capture), str(pcapng)], check=True)
    gz.write_bytes(gzip.compress((shared / capture).read_bytes()))
    assert pcapng.read_bytes()[:4] == b"\x0a\x0d\x0d\x0a"
    store, _ = ingested(capture)
    expected = [store.con.execute(_ALL.format(t)).fetchall() for t in ("flows", "dns")]
    assert tuple(len(rows) for rows in expected) == COUNTS[capture]
    for path in (pcapng, gz):
        with Store(tmp_path / path.name.replace(".", "-")) as other:
            assert ingest_file(other, path).format == "pcap"
            assert [other.con.execute(_ALL.format(t)).fetchall() for t in ("flows", "dns")] == (
                expected
            )


def test_garbage_named_pcap_is_refused(store: Store, tmp_path: Path) -> None:
    garbage = tmp_path / "capture.pcap"
    garbage.write_bytes(b"this is not a capture\n" * 10)
    with pytest.raises(IngestError, match="not a recognised format"):
        ingest_file(store, garbage)
    with pytest.raises(IngestError, match=r"tshark failed: .*isn't a capture file"):
        ingest_file(store, garbage, fmt="pcap")
    garbage.write_bytes(b"\xd4\xc3\xb2\xa1" + b"\x07" * 100)  # pcap magic, nonsense header
    with pytest.raises(IngestError, match=r"capture\.pcap: tshark failed"):
        ingest_file(store, garbage)
    assert store.counts() == Counts(0, 0, 0, 0)


def test_truncated_capture_keeps_whole_packets(store: Store, shared: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.pcap"
    cut.write_bytes((shared / SLIPS / "test7-malicious.pcap").read_bytes()[:40_000])
    with pytest.raises(IngestError, match=r"cut\.pcap: capture cut short .*--strict"):
        ingest_file(store, cut, strict=True)
    assert store.counts() == Counts(0, 0, 0, 0)
    report = ingest_file(store, cut)
    assert report.bad_count == 1 and "cut short" in report.bad[0].message
    # tshark prints the whole packets before it stops on the cut one
    assert report.rows[Table.DNS] == _tshark_lines(cut, "dns.flags.response==0")
    assert 0 < report.rows[Table.FLOWS] < COUNTS[f"{SLIPS}/test7-malicious.pcap"][0]


def _tshark_lines(path: Path, display_filter: str) -> int:
    done = subprocess.run(
        ["tshark", "-n", "-r", str(path), "-Y", display_filter],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return len(done.stdout.splitlines())


def test_unreadable_tshark_line_is_a_bad_line(
    store: Store, shared: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def garbled(argv: list[str], path: Path, out: Path) -> str:
        run_tool(argv, path, out=out)
        with out.open("a") as fh:
            fh.write("38\tnot\tenough\tcolumns\n")
        return ""

    monkeypatch.setattr(pcap_reader, "run_tool", garbled)
    report = ingest_file(store, shared / SLIPS / "test12-icmp-portscan.pcap")
    assert (report.rows[Table.FLOWS], report.bad_count, report.skipped) == (18, 1, {})
    assert report.bad[0].message.startswith("packet 38: tshark output not understood")


def test_missing_tshark_is_a_clear_error(
    store: Store, shared: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(IngestError, match="tshark not found on PATH; install it with apt-get"):
        ingest_file(store, shared / SLIPS / "test12-icmp-portscan.pcap")
    assert store.counts().files == 0


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"\xd4\xc3\xb2\xa1\x02\x00\x04\x00", True),  # pcap, little-endian, µs
        (b"\xa1\xb2\xc3\xd4\x00\x02\x00\x04", True),  # pcap, big-endian
        (b"\x4d\x3c\xb2\xa1\x02\x00\x04\x00", True),  # pcap, ns
        (b"\x0a\x0d\x0d\x0a\x1c\x00\x00\x00\x4d\x3c\x2b\x1a", True),  # pcapng section header
        (b"\x0a\x0d\x0d\x0a\x1c\x00\x00\x00hello", False),  # text that starts with \n\r\r\n
        (b"\x0c\xa5\x02\x00", False),  # nfcapd
    ],
)
def test_sniff(head: bytes, expected: bool) -> None:
    assert Pcap().sniff(Sample("capture", head, gzip=False)) is expected

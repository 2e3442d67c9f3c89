"""NetFlow v5/v9 and IPFIX captures: the logstash-codec-netflow payloads and akvorado pcaps.

Every count and value below was checked independently: the payloads were wrapped in a pcap
and decoded with ``tshark -d udp.port==2055,cflow`` (Wireshark 4.0), template files first.
Where tshark and hemostat differ the bytes were read by hand; the reason is given inline.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hemostat.errors import IngestError
from hemostat.ingest import READERS, detect, ingest, ingest_file
from hemostat.ingest import netflow_wire as wire
from hemostat.ingest.netflow import NetflowCapture, NetflowPcap, conn_state
from hemostat.ingest.netflow_listen import Collector
from hemostat.ingest.reader import Log
from hemostat.store import Store

LOGSTASH = "netflow-ipfix-samples/logstash-codec-netflow"
AKVORADO = "netflow-ipfix-samples/akvorado/netflow/testdata"

#: data-bearing samples: (file, flows, bad packets/sets, options records). Each file is read
#: alone; the templates it lacks come from the sibling ``*tpl*`` files of the directory.
SAMPLES = [
    ("ipfix.dat", 12, 0, 1),  # 3 messages in one file
    ("ipfix_test_barracuda_data256.dat", 8, 0, 0),  # tshark needs tpl.dat alone: it keeps
    ("ipfix_test_barracuda_extended_uniflow_data256.dat", 0, 0, 0),  # 2 empty created events
    ("ipfix_test_ixia_tpldata256.dat", 1, 0, 0),  # the first template 256 it sees
    ("ipfix_test_ixia_tpldata271.dat", 2, 0, 0),
    ("ipfix_test_juniper_mx240_junos151r6s3_data512.dat", 0, 0, 1),
    ("ipfix_test_mikrotik_data258.dat", 28, 0, 0),
    ("ipfix_test_mikrotik_data259.dat", 18, 0, 0),
    ("ipfix_test_netscaler_data.dat", 3, 1, 0),  # a set of template 280, sent in no file
    ("ipfix_test_nokia_bras_data256.dat", 1, 0, 0),
    ("ipfix_test_openbsd_pflow_data.dat", 26, 0, 0),
    ("ipfix_test_procera_data52935.dat", 8, 0, 0),
    ("ipfix_test_viptela_data257.dat", 1, 0, 0),
    ("ipfix_test_vmware_vds_data264.dat", 1, 0, 0),
    ("ipfix_test_vmware_vds_data266.dat", 2, 0, 0),
    ("ipfix_test_vmware_vds_data266_267.dat", 2, 0, 0),
    ("ipfix_test_yaf_data45841.dat", 1, 0, 0),
    ("ipfix_test_yaf_data45873.dat", 1, 0, 0),
    ("ipfix_test_yaf_data53248.dat", 0, 0, 1),
    ("netflow5.dat", 30, 0, 0),  # 12 packets back to back
    ("netflow5_test_invalid01.dat", 0, 1, 0),  # header count 55582 (tshark decodes 30)
    ("netflow5_test_invalid02.dat", 0, 1, 0),  # header count 163
    ("netflow5_test_juniper_mx80.dat", 29, 0, 0),
    ("netflow5_test_microtik.dat", 30, 0, 0),
    ("netflow9_cisco_asr1001x_tpl259.dat", 25, 0, 0),
    ("netflow9_test_0length_fields_tpl_data.dat", 10, 0, 0),
    ("netflow9_test_cisco_1941K9.dat", 29, 0, 0),
    ("netflow9_test_cisco_aci_data256.dat", 3, 0, 0),
    ("netflow9_test_cisco_asa_1_data.dat", 14, 0, 0),
    ("netflow9_test_cisco_asa_2_data.dat", 15, 0, 0),  # + 4 empty flow-created events
    ("netflow9_test_cisco_asr9k_data256.dat", 0, 0, 19),  # template 256 is an options one
    ("netflow9_test_cisco_asr9k_data260.dat", 21, 0, 0),
    ("netflow9_test_cisco_nbar_data262.dat", 5, 0, 0),
    ("netflow9_test_cisco_nbar_opttpl260.dat", 0, 0, 15),
    ("netflow9_test_cisco_wlc_data261.dat", 0, 0, 0),  # 19 records without IP addresses
    ("netflow9_test_field_layer2segmentid_data.dat", 1, 0, 0),
    ("netflow9_test_fortigate_fortios_521_data256.dat", 0, 0, 1),
    ("netflow9_test_fortigate_fortios_521_data257.dat", 1, 0, 0),
    ("netflow9_test_fortigate_fortios_542_appid_data258_262.dat", 17, 0, 0),
    ("netflow9_test_h3c_data3281.dat", 16, 0, 0),  # tshark stops after 1 (see below)
    ("netflow9_test_h3c_netstream_varstring_data3281.dat", 1, 0, 0),
    ("netflow9_test_huawei_netstream_data.dat", 1, 0, 0),
    ("netflow9_test_invalid01.dat", 2, 0, 1),  # tshark gives up; read by hand below
    ("netflow9_test_iptnetflow_reduced_size_encoding_tpldata260.dat", 12, 6, 0),
    ("netflow9_test_juniper_srx_tplopt.dat", 0, 0, 1),
    ("netflow9_test_macaddr_data.dat", 29, 0, 0),
    ("netflow9_test_macaddr_tpl.dat", 0, 0, 1),
    ("netflow9_test_nprobe_data.dat", 1, 0, 0),
    ("netflow9_test_nprobe_dpi.dat", 1, 0, 0),
    ("netflow9_test_nprobe_tpl.dat", 0, 0, 1),
    ("netflow9_test_paloalto_81_data257_1flowset_in_large_zerofilled_packet.dat", 1, 0, 0),
    ("netflow9_test_paloalto_panos_data.dat", 8, 0, 0),
    ("netflow9_test_softflowd_tpl_data.dat", 7, 0, 0),
    ("netflow9_test_streamcore_tpl_data256.dat", 2, 0, 0),
    ("netflow9_test_streamcore_tpl_data260.dat", 2, 0, 0),
    ("netflow9_test_ubnt_edgerouter_data1024.dat", 8, 0, 0),
    ("netflow9_test_ubnt_edgerouter_data1025.dat", 8, 0, 0),
    ("netflow9_test_unknown_tpl266_292_data.dat", 2, 0, 0),
    ("netflow9_test_valid01.dat", 7, 0, 0),
]
#: files holding only templates: no flow, no error
TEMPLATE_ONLY = [
    "ipfix_test_barracuda_extended_uniflow_tpl256.dat", "ipfix_test_barracuda_tpl.dat",
    "ipfix_test_juniper_mx240_junos151r6s3_opttpl512.dat", "ipfix_test_mikrotik_tpl.dat",
    "ipfix_test_netscaler_tpl.dat", "ipfix_test_nokia_bras_tpl.dat",
    "ipfix_test_openbsd_pflow_tpl.dat", "ipfix_test_procera_tpl52935.dat",
    "ipfix_test_viptela_tpl257.dat", "ipfix_test_vmware_vds_tpl.dat",
    "ipfix_test_yaf_tpl45841.dat", "ipfix_test_yaf_tpls_option_tpl.dat",
    "netflow9_test_cisco_aci_tpl256-258.dat", "netflow9_test_cisco_asa_1_tpl.dat",
    "netflow9_test_cisco_asa_2_tpl_26x.dat", "netflow9_test_cisco_asa_2_tpl_27x.dat",
    "netflow9_test_cisco_asr9k_opttpl256.dat", "netflow9_test_cisco_asr9k_opttpl257.dat",
    "netflow9_test_cisco_asr9k_opttpl334.dat", "netflow9_test_cisco_asr9k_tpl260.dat",
    "netflow9_test_cisco_asr9k_tpl266.dat", "netflow9_test_cisco_nbar_tpl262.dat",
    "netflow9_test_cisco_wlc_8510_tpl_262.dat", "netflow9_test_cisco_wlc_tpl.dat",
    "netflow9_test_field_layer2segmentid_tpl.dat", "netflow9_test_fortigate_fortios_521_tpl.dat",
    "netflow9_test_fortigate_fortios_542_appid_tpl258-269.dat",
    "netflow9_test_h3c_netstream_varstring_tpl3281.dat", "netflow9_test_h3c_tpl3281.dat",
    "netflow9_test_huawei_netstream_tpl.dat", "netflow9_test_paloalto_81_tpl256-263.dat",
    "netflow9_test_paloalto_panos_tpl.dat", "netflow9_test_ubnt_edgerouter_tpl.dat",
]  # fmt: skip


def read(path: Path, reader: NetflowCapture | None = None) -> tuple[list[dict[str, Any]], Log]:
    log = Log(path)
    reader = reader or NetflowCapture()
    rows = [r for _, table in reader.read(path, None, log) for r in table.to_pylist()]  # type: ignore[arg-type]
    return rows, log


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def flow(row: dict[str, Any]) -> tuple[Any, ...]:
    keys = ("src_ip", "src_port", "dst_ip", "dst_port", "proto", "bytes_out", "pkts_out")
    return tuple(row[k] for k in keys)


@pytest.fixture(scope="module")
def samples(shared: Path) -> Path:
    return shared / LOGSTASH


def test_every_sample_is_listed(samples: Path) -> None:
    listed = {name for name, *_ in SAMPLES} | set(TEMPLATE_ONLY)
    assert {p.name for p in samples.glob("*.dat")} == listed


@pytest.mark.parametrize(("name", "flows", "bad", "options"), SAMPLES)
def test_sample_counts(samples: Path, name: str, flows: int, bad: int, options: int) -> None:
    rows, log = read(samples / name)
    assert (len(rows), log.bad_count, log.skipped["options records"]) == (flows, bad, options)


@pytest.mark.parametrize("name", TEMPLATE_ONLY)
def test_template_files_give_templates_only(samples: Path, name: str) -> None:
    rows, log = read(samples / name)
    assert (rows, log.bad_count) == ([], 0)
    assert log.skipped["templates"] > 0


def test_v5_record_and_uptime_times(samples: Path) -> None:
    rows, _ = read(samples / "netflow5_test_microtik.dat")
    first = rows[0]  # tshark: uptime 27361.640 s, start 27346.270 s, export …57.514932
    assert flow(first) == ("10.0.13.1", 5228, "192.168.0.98", 52734, "tcp", 104, 2)
    assert first["ts"] == first["end_ts"] == utc("2016-07-21 13:51:42.144")
    assert (first["conn_state"], first["source"], first["host"]) == ("OTH", "netflow", None)
    assert first["bytes_in"] is None  # unidirectional: the reply is its own record


def test_v5_uptime_wrap_and_several_packets(samples: Path) -> None:
    rows, _ = read(samples / "netflow5.dat")
    # first switched 0xffffffff: 1 ms before the uptime counter wrapped to 0
    assert flow(rows[0]) == ("10.0.2.2", 54435, "10.0.2.15", 22, "tcp", 230, 5)
    assert rows[0]["ts"] == utc("2015-05-02 18:38:04.898")
    assert rows[0]["end_ts"] == utc("2015-05-02 18:38:07.476")


def test_v5_sampling_interval_scales_counters(samples: Path) -> None:
    rows, _ = read(samples / "netflow5_test_juniper_mx80.dat")  # header: 1 in 1000
    assert flow(rows[0]) == ("10.0.0.1", 443, "192.168.0.2", 61608, "tcp", 1_500_000, 1000)


def test_v9_asa_nsel(samples: Path) -> None:
    rows, _ = read(samples / "netflow9_test_cisco_asa_1_data.dat")
    first = rows[0]  # ICMP echo reply (type/code from NF_F_ICMP_TYPE/CODE, as Zeek ports)
    assert flow(first) == ("192.168.14.1", 0, "2.2.2.11", 0, "icmp", 56, None)
    assert first["ts"] == utc("2015-10-09 09:47:47.569")  # flowStartMilliseconds
    assert first["end_ts"] == utc("2015-10-09 09:47:49.599")  # event time
    assert first["conn_id"] == "nf:0:8500"
    assert [flow(r)[1:4] for r in rows[9:10]] == [(3, "192.168.23.1", 3)]  # port unreachable


def test_v9_nbar_ports_come_from_the_l4_fields(samples: Path) -> None:
    rows, _ = read(samples / "netflow9_test_cisco_nbar_data262.dat")
    # tshark shows 0: it also names tcpSourcePort (182, zero here) "srcport"
    assert flow(rows[1]) == ("10.30.18.62", 34220, "10.30.19.180", 161, "udp", 106, 1)


def test_v9_zero_filled_packet(samples: Path) -> None:
    name = "netflow9_test_paloalto_81_data257_1flowset_in_large_zerofilled_packet.dat"
    rows, _ = read(samples / name)
    assert [flow(r) for r in rows] == [("134.220.2.6", 88, "134.220.1.156", 50234, "tcp", 363, 3)]


def test_v9_h3c_all_flowsets(samples: Path) -> None:
    # 16 flowsets of 84 bytes (20 + 16 x 84 = 1364, the file size); tshark stops after the
    # first on a vendor field (43) it takes for an IPv4 address of length 2
    rows, _ = read(samples / "netflow9_test_h3c_data3281.dat")
    assert flow(rows[0]) == ("10.22.166.30", 0, "10.22.163.21", 0, "tcp", 1027087, 697)
    assert len({r["src_ip"] for r in rows}) > 1


def test_v9_invalid01_is_read_as_far_as_it_is_valid(samples: Path) -> None:
    # by hand: templates 1024/2048, an options template of length 22 (not padded to 4,
    # where tshark gives up), options data (samplingInterval 100), then one IPv6 and one
    # IPv4 data flowset: 96 and 98 octets, 1 packet each, scaled by the sampling interval
    rows, _ = read(samples / "netflow9_test_invalid01.dat")
    assert [flow(r) for r in rows] == [
        ("2001:44b8:1118:7200::10", 123, "2001:44b8:4030:cd91:8075:bae:d39d:2621", 123, "udp",
         9600, 100),
        ("192.168.0.1", 53, "192.168.0.105", 55575, "udp", 9800, 100),
    ]  # fmt: skip


def test_v9_data_without_template_is_reported(samples: Path) -> None:
    rows, log = read(samples / "netflow9_test_iptnetflow_reduced_size_encoding_tpldata260.dat")
    assert len(rows) == 12
    assert all("no template 259" in e.message or "no template 262" in e.message for e in log.bad)


def test_ipfix_ipv6_and_absolute_times(samples: Path) -> None:
    rows, _ = read(samples / "ipfix_test_mikrotik_data259.dat")
    assert flow(rows[0]) == ("fe80::ff:fe00:401", 5678, "fe80::ff:fe00:401", 5678, "udp", 555, 3)
    pflow, _ = read(samples / "ipfix_test_openbsd_pflow_data.dat")
    assert pflow[0]["ts"] == utc("2016-07-21 13:29:59")  # flowStartMilliseconds
    assert pflow[0]["source"] == "ipfix"


def test_ipfix_sysuptime_with_system_init_time(samples: Path) -> None:
    rows, _ = read(samples / "ipfix.dat")  # options: systemInitTimeMilliseconds 1431516013506
    assert flow(rows[0]) == ("192.168.253.1", 60560, "192.168.253.128", 22, "tcp", 260, 5)
    assert (rows[0]["ts"], rows[0]["end_ts"]) == (
        utc("2015-05-13 11:20:13.506"), utc("2015-05-13 11:20:26.232"))  # fmt: skip


def test_ipfix_biflow_reverse_counters(samples: Path) -> None:
    rows, _ = read(samples / "ipfix_test_yaf_data45841.dat")  # tshark's "octets" is the
    row = rows[0]  # last one it prints: the reverse 200
    assert (row["bytes_out"], row["bytes_in"], row["pkts_out"], row["pkts_in"]) == (132, 200, 2, 2)


def test_ipfix_firewall_deletion_total(samples: Path) -> None:
    rows, _ = read(samples / "ipfix_test_barracuda_data256.dat")
    # octetDeltaCount 0 but octetTotalCount 65 in a flow-deleted event: the total counts
    assert flow(rows[0]) == ("10.99.130.239", 65105, "10.99.252.50", 53, "udp", 65, 1)
    assert flow(rows[1]) == ("10.99.252.50", 53, "10.99.130.239", 65105, "udp", 81, 1)


def test_ipfix_ipv6_flow_in_a_dual_template(samples: Path) -> None:
    rows, _ = read(samples / "ipfix_test_procera_data52935.dat")  # IPv4 fields zero
    assert {r["src_ip"] for r in rows if r["proto"] == "icmp6"} == {"2001:388:cf0a:6::1"}


@pytest.mark.parametrize(
    ("flags", "state"),
    [(0x02, "S0"), (0x12, "S1"), (0x1B, "SF"), (0x06, "RSTO"), (0x18, "OTH"), (None, None)],
)
def test_conn_state_from_tcp_flags(flags: int | None, state: str | None) -> None:
    assert conn_state(6, flags, None) == state


# ---- bad input ------------------------------------------------------------------------------


def test_invalid_v5_count_is_a_bad_packet(samples: Path, store: Store) -> None:
    report = ingest_file(store, samples / "netflow5_test_invalid01.dat")
    assert (report.format, report.total, report.bad_count) == ("netflow", 0, 1)
    assert "announces 55582 record(s)" in str(report.bad[0])


@pytest.mark.parametrize("content", [b"", b"\0" * 1400])
def test_empty_or_zero_file_is_refused(tmp_path: Path, store: Store, content: bytes) -> None:
    path = tmp_path / "capture.dat"
    path.write_bytes(content)
    with pytest.raises(IngestError, match="no export packet"):
        ingest_file(store, path, fmt="netflow")
    with pytest.raises(IngestError, match="not a recognised format"):
        detect(path)
    assert store.counts().flows == 0


def test_truncated_and_trailing_garbage(samples: Path, tmp_path: Path) -> None:
    data = (samples / "netflow9_cisco_asr1001x_tpl259.dat").read_bytes()
    cut = tmp_path / "cut.dat"
    cut.write_bytes(data[:700])
    rows, log = read(cut)  # the data flowset is cut: it is dropped, and said so
    assert (rows, log.bad_count) == ([], 1)
    assert "set 259 at offset 68 has bad length 1380" in log.bad[0].message
    tail = tmp_path / "tail.dat"
    tail.write_bytes(data + b"garbage!")
    rows, log = read(tail)  # v9 has no length field: the garbage reads as a broken set
    assert len(rows) == 25 and "has bad length" in log.bad[0].message
    ipfix = tmp_path / "ipfix.dat"  # IPFIX messages have a length: what follows is not one
    ipfix.write_bytes((samples / "ipfix.dat").read_bytes() + b"\x01\x02garbage")
    rows, log = read(ipfix)
    assert len(rows) == 12 and log.bad[0].message.startswith("rest of the file skipped")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_packets_never_raise(shared: Path, data: st.DataObject) -> None:
    files = sorted((shared / LOGSTASH).glob("*.dat"))
    collector = Collector()
    for path in data.draw(st.lists(st.sampled_from(files), min_size=1, max_size=3)):
        packet = bytearray(path.read_bytes())
        for _ in range(data.draw(st.integers(0, 6))):
            packet[data.draw(st.integers(0, len(packet) - 1))] = data.draw(st.integers(0, 255))
        packet = packet[: data.draw(st.integers(0, len(packet)))]
        collector.receive(bytes(packet), "192.0.2.1")
    collector.take().arrow()


# ---- templates in other files ---------------------------------------------------------------


def test_data_alone_waits_for_its_template(samples: Path, tmp_path: Path) -> None:
    shutil.copy(samples / "ipfix_test_mikrotik_data258.dat", tmp_path)
    rows, log = read(tmp_path / "ipfix_test_mikrotik_data258.dat")
    assert rows == [] and log.bad_count == 1
    assert "no template 258" in log.bad[0].message


def test_another_exporters_template_is_not_taken(samples: Path, tmp_path: Path) -> None:
    # same stem, same template id 256, but another layout: it must not decode the data
    shutil.copy(samples / "ipfix_test_barracuda_data256.dat", tmp_path / "fw_data256.dat")
    shutil.copy(samples / "ipfix_test_barracuda_extended_uniflow_tpl256.dat",
                tmp_path / "fw_tpl256.dat")  # fmt: skip
    rows, log = read(tmp_path / "fw_data256.dat")
    assert (rows, log.bad_count) == ([], 1)


def test_directory_in_name_order_data_before_templates(
    samples: Path, tmp_path: Path, store: Store
) -> None:
    (tmp_path / "capture").mkdir()
    for name in ("ipfix_test_mikrotik_data258.dat", "ipfix_test_mikrotik_data259.dat",
                 "ipfix_test_mikrotik_tpl.dat", "netflow9_test_cisco_asa_1_data.dat",
                 "netflow9_test_cisco_asa_1_tpl.dat"):  # fmt: skip
        shutil.copy(samples / name, tmp_path / "capture")
    reports = ingest(store, [tmp_path / "capture"])
    assert [(r.path.name, r.total, r.bad_count) for r in reports] == [
        ("ipfix_test_mikrotik_data258.dat", 28, 0), ("ipfix_test_mikrotik_data259.dat", 18, 0),
        ("ipfix_test_mikrotik_tpl.dat", 0, 0), ("netflow9_test_cisco_asa_1_data.dat", 14, 0),
        ("netflow9_test_cisco_asa_1_tpl.dat", 0, 0),
    ]  # fmt: skip
    row = store.con.execute(
        "SELECT count(*), count(community_id), min(ts) FROM flows WHERE source = 'ipfix'"
    ).fetchone()
    # Mikrotik sends sysUpTime stamps without systemInitTimeMilliseconds: flows are taken
    # to end at the export time (16:18:08), their start placed by their duration
    assert row == (46, 46, utc("2017-07-19 16:18:03.700"))


# ---- pcaps of export traffic ----------------------------------------------------------------


AKVORADO_FLOWS = {  # pcap: (flows, exporter); checked with tshark -d udp.port==PORT,cflow
    "data+templates.pcap": (21, "102.102.144.1"), "data.pcap": (4, "192.0.2.100"),
    "icmp-data.pcap": (2, "192.168.117.35"), "ipfixprobe-data.pcap": (4, "127.0.0.1"),
    "mpls.pcap": (2, "10.127.100.7"), "nat.pcap": (9, "10.143.52.1"),
    "nfv5.pcap": (29, "10.19.144.41"), "physicalinterfaces.pcap": (8, "10.4.2.60"),
    "samplingrate-data.pcap": (6, "192.168.0.1"),
    "multiplesamplingrates-data.pcap": (12, "238.0.0.1"),
}  # fmt: skip


@pytest.mark.parametrize(("name", "expected"), sorted(AKVORADO_FLOWS.items()))
def test_akvorado_pcaps(shared: Path, name: str, expected: tuple[int, str]) -> None:
    flows, exporter = expected
    rows, log = read(shared / AKVORADO / name, NetflowPcap())
    assert (len(rows), {r["host"] for r in rows}, log.bad_count) == (flows, {exporter}, 0)


def test_pcap_sampling_rate_from_the_template(shared: Path) -> None:
    rows, _ = read(shared / AKVORADO / "samplingrate-data.pcap", NetflowPcap())
    # tshark: 1 packet, 160 octets, sampling interval 2048
    assert flow(rows[0]) == ("232.131.215.65", 13245, "142.183.180.65", 10907, "tcp",
                             160 * 2048, 2048)  # fmt: skip


def test_pcap_detection(shared: Path) -> None:
    assert {detect(p).id for p in (shared / AKVORADO).glob("*.pcap")} == {"netflow_pcap"}
    sflow = shared / "netflow-ipfix-samples/akvorado/sflow/testdata"
    assert {detect(p).id for p in sflow.glob("*.pcap")} == {"pcap"}
    assert {detect(p).id for p in (shared / LOGSTASH).glob("*.dat")} == {"netflow"}


def test_readers_registered() -> None:
    assert READERS["netflow"] is NetflowCapture and READERS["netflow_pcap"] is NetflowPcap
    order = list(READERS)
    assert order.index("netflow_pcap") < order.index("pcap")


def test_split_finds_back_to_back_v9_packets(samples: Path) -> None:
    one = (samples / "netflow9_test_softflowd_tpl_data.dat").read_bytes()
    packets = list(wire.split(one + one))
    assert [len(p) for p in packets] == [len(one), len(one)]

"""DNS tunnel on real captures (read from /work/shared/data, never copied).

GraphTunnel's pcaps (dns-tunnel-pcaps/PROVENANCE.md): dnscat2, iodine, dns2tcp, OzymanDNS and
AndIodine tunnels must be found on their client; the ``normal`` captures (resolution of the
Cloudflare top-1M domains) must not. The same through hemostat's pcap reader and through the
tshark tables derived from the same captures. Netrack's labelled query names
(netrack-dns-tunnel-qnames/PROVENANCE.md), one host per tool: the three tunnels are found,
plain DNS is not.
"""

from __future__ import annotations

import csv
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import ibis
import pytest

from hemostat.config import Settings
from hemostat.detect import Window
from hemostat.detect.dns_tunnel import DnsTunnel
from hemostat.detect.runner import detect as run_detectors
from hemostat.ingest import ingest
from hemostat.inventory import Inventory
from hemostat.schema import QTYPE_NAMES, Finding, Table
from hemostat.store import Store
from tests.detect.conftest import Detect

DATA = Path("/work/shared/data")
PCAPS = DATA / "dns-tunnel-pcaps"
NETRACK = DATA / "netrack-dns-tunnel-qnames" / "dns"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not PCAPS.exists(), reason="shared DNS tunnel data not present"),
]

#: capture → (tunnel client, lowest score expected); None: benign, nothing expected
CAPTURES: dict[str, tuple[str, float] | None] = {
    "tunnel/dnscat2-txt/dnscat2-txt_00001_20230903183304.pcap": ("192.168.68.62", 80),
    "tunnel/dnscat2-cname/dnscat2-cname_00001_20230903170247.pcap": ("192.168.68.62", 80),
    "tunnel/dns2tcp-key/dns2tcp-key_00002_20230905100101.pcap": ("192.168.68.114", 65),
    "tunnel/iodine-cname.pcap": ("192.168.117.128", 80),
    "unkownTunnel/ozymandns.pcap": ("192.168.117.128", 80),
    # a 39-second Android capture of 137 queries: found, below an incident on its own
    "crossEndPoint/AndIodine-MX/AndIodine-MX_00001_20230921200640.pcap": ("172.16.1.15", 40),
    "normal/normal/normal_00000_20230805150331.pcap": None,
    "normal/normal/normal_00067_20230806152800.pcap": None,
}


def check(found: list[Finding], expected: tuple[str, float] | None) -> None:
    if expected is None:
        assert found == []
        return
    client, score = expected
    [finding] = found
    assert (finding.host, finding.destination) == (client, "ggy666.tk")
    assert finding.score >= score, finding.summary
    assert finding.evidence["unique_names"] >= 100 and finding.bytes_out > 4000


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
@pytest.mark.parametrize("capture", list(CAPTURES), ids=lambda c: Path(c).stem.split("_")[0])
def test_pcaps_through_the_pcap_reader(tmp_path: Path, capture: str) -> None:
    with Store(tmp_path) as store:
        [report] = ingest(store, [PCAPS / capture])
        assert report.error is None and report.rows[Table.DNS] > 0
        start, end = store.time_range(Table.DNS)
        assert start is not None and end is not None
        run = run_detectors(
            ibis.duckdb.from_connection(store.con), Inventory(site="pcap"),
            Window(start, end + timedelta(seconds=1)), Settings(), [DnsTunnel()],
        )  # fmt: skip
    assert not run.errors
    check(run.findings, CAPTURES[capture])


@pytest.mark.parametrize("capture", list(CAPTURES), ids=lambda c: Path(c).stem.split("_")[0])
def test_the_derived_tshark_tables(detect: Detect, capture: str) -> None:
    path = PCAPS / "derived-tshark-dns" / f"{Path(capture).stem}.dns.tsv.gz"
    rows = duckdb.sql(
        'SELECT "frame.time_epoch" AS t, "ip.src" AS src, "ip.dst" AS dst, '
        '"dns.qry.name" AS name, "dns.qry.type" AS qtype '
        f"FROM read_csv('{path}', delim='\t', header=true, all_varchar=true, quote='') "
        "WHERE \"dns.flags.response\" = '0'"
    ).fetchall()
    dns = [
        {"ts": datetime.fromtimestamp(float(t), UTC), "src_ip": src, "dst_ip": dst,
         "query": name, "qtype": QTYPE_NAMES.get(int(qtype), qtype) if qtype else None,
         "source": "tshark"}
        for t, src, dst, name, qtype in rows if name
    ]  # fmt: skip
    start = min(r["ts"] for r in dns)
    end = max(r["ts"] for r in dns) + timedelta(seconds=1)
    found = detect(DnsTunnel(), dns=dns, start=start, end=end, inventory=Inventory(site="p"))
    check(found, CAPTURES[capture])


@pytest.mark.skipif(not NETRACK.exists(), reason="netrack query names not present")
def test_netrack_query_names_one_host_per_tool(detect: Detect) -> None:
    """Names only (no times, no types): asked at 2/s as A queries, one host per tool."""
    t0 = datetime(2018, 3, 1, tzinfo=UTC)
    hosts = {"dns2tcp": "10.0.0.1", "dnscapy": "10.0.0.2", "iodine": "10.0.0.3",
             "plain": "10.0.0.4"}  # fmt: skip
    dns: list[dict[str, Any]] = []
    for tool, ip in hosts.items():
        with (NETRACK / tool / "names.csv").open(newline="", errors="replace") as f:
            dns += [
                {"ts": t0 + timedelta(seconds=i / 2), "src_ip": ip, "dst_ip": "10.0.0.53",
                 "query": row["qname"], "qtype": "A", "source": "netrack"}
                for i, row in enumerate(csv.DictReader(f))
            ]  # fmt: skip
    found = detect(DnsTunnel(), dns=dns, start=t0, end=t0 + timedelta(days=1))
    by_host = {f.host: f for f in found}
    assert sorted(by_host) == ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
    assert all(f.score >= 50 for f in found)
    assert by_host["10.0.0.2"].destination == "example.org"

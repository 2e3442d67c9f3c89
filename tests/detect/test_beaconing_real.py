"""Beaconing on real captures (read from ../shared/data, never copied): the curl C2 loop of
Stratosphere Slips' test-cc in its pcap and nfdump forms, NjRAT's C2 retries, and malware
captures without a beacon.

The test-cc host (147.32.80.37) has a public CTU address: with the default RFC 1918
``internal`` ranges it is not a site host and none of its flows is egress, so the site is
declared as the inventory would declare a university network, defaults plus 147.32.0.0/16.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import ibis
import pytest

from hemostat.config import Settings
from hemostat.detect.beaconing import Beaconing
from hemostat.detect.context import Window
from hemostat.detect.runner import detect
from hemostat.ingest import ingest
from hemostat.inventory import DEFAULT_INTERNAL, Inventory
from hemostat.schema import Finding, Table
from hemostat.store import Store

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
SLIPS = DATA / "slips-multiformat"
NFDUMP = DATA / "derived-nfdump-from-pcaps"
CTU = Inventory(site="ctu", internal=[*DEFAULT_INTERNAL, "147.32.0.0/16"])

pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason="shared data sets not present")


def findings(tmp_path: Path, source: Path, inventory: Inventory) -> list[Finding]:
    """Ingest ``source`` with hemostat's readers and run the detector over all of it."""
    with Store(tmp_path / "home") as store:
        reports = ingest(store, [source])
        assert not [r.error for r in reports if r.error]
        first, last = store.time_range(Table.FLOWS)
        assert first is not None and last is not None
        window = Window(
            first.replace(minute=0, second=0, microsecond=0), last + timedelta(seconds=1)
        )
        run = detect(
            ibis.duckdb.from_connection(store.con), inventory, window, Settings(), [Beaconing()]
        )
    assert not run.errors
    return sorted(run.findings, key=lambda f: -f.score)


@pytest.mark.parametrize(
    ("source", "destination", "least"),
    [
        (SLIPS / "test-cc" / "test-cc-capture-1.pcap", "141.193.213.21", 85),
        (NFDUMP / "slips_test-cc-capture-1" / "nfcapd", "141.193.213.21", 85),
        (SLIPS / "test-cc" / "test-cc-capture-2.pcap", "141.193.213.20", 50),
        (NFDUMP / "slips_test-cc-capture-2" / "nfcapd", "141.193.213.20", 50),
    ],
    ids=["cc1-pcap", "cc1-nfdump", "cc2-pcap", "cc2-nfdump"],
)
def test_the_test_cc_curl_loop_is_a_beacon(
    tmp_path: Path, source: Path, destination: str, least: float
) -> None:
    """capture-1: HTTPS every 2 s for 11 min; capture-2: every 2 to 3.6 s for 67 s."""
    [found] = findings(tmp_path, source, CTU)
    assert (found.host, found.destination, found.evidence["dst_port"]) == (
        "147.32.80.37", destination, 443
    )  # fmt: skip
    assert found.score >= least
    assert 2.0 <= found.evidence["period_s"] <= 3.6
    assert found.evidence["connections"] >= 20 and len(found.evidence["conn_ids"]) == 20
    assert "147.32.80.37 called 141.193.213." in found.summary


def test_njrat_c2_retries_are_a_beacon(tmp_path: Path) -> None:
    """CTU-Malware-Capture-Botnet-230-1: 237 unanswered SYNs to the C2, every ~12 s."""
    source = DATA / "stratosphere-zeek-labeled" / "001-zeek-scenario-malicious" / "conn.log"
    [found] = findings(tmp_path, source, Inventory(site="lab"))
    assert (found.host, found.destination) == ("192.168.1.115", "41.108.179.197")
    assert found.score >= 65 and found.evidence["size_mode"] == 0


@pytest.mark.parametrize(
    "source",
    [SLIPS / "test7-malicious.pcap", SLIPS / "test8-malicious.pcap",
     NFDUMP / "slips_test7-malicious" / "nfcapd", SLIPS / "test9-mixed-zeek-dir"],
    ids=["test7-pcap", "test8-pcap", "test7-nfdump", "test9-zeek"],
)  # fmt: skip
def test_captures_without_a_beacon_give_nothing(tmp_path: Path, source: Path) -> None:
    assert findings(tmp_path, source, Inventory(site="lab")) == []

"""The runner: ids stable across runs, expected transfers discounted (never hidden), one
failing detector reported without hiding the others, upserts that merge."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import ibis
import ibis.expr.types as ir
import pytest

from hemostat.config import Settings
from hemostat.detect import Window
from hemostat.detect.context import Context
from hemostat.detect.runner import detect, load, save
from hemostat.inventory import ExpectedTransfer, Inventory
from hemostat.schema import FLOWS, Kind, Table
from hemostat.store import Store
from tests.detect.conftest import DAY, HOUR, T0, Detect, arrow, flow


@dataclass(frozen=True)
class BigSender:
    """Test detector: any host that sent more than ``min_bytes`` outside in the window."""

    id: ClassVar[str] = "big_sender"
    kind: ClassVar[Kind] = Kind.EXFILTRATION
    attack: ClassVar[tuple[str, ...]] = ("T1048",)
    min_bytes: int = 1_000_000

    def run(self, ctx: Context) -> ir.Table:
        egress = ctx.egress()
        per = egress.group_by(host=egress.src_ip, destination=egress.dst_ip).aggregate(
            ts=egress.ts.min(),
            end_ts=egress.end_ts.max(),
            bytes_out=egress.bytes_out.sum(),
            dst_port=egress.dst_port.max(),
            conn_ids=egress.conn_id.collect(),
        )
        per = per.filter(per.bytes_out > self.min_bytes)
        return per.mutate(score=ibis.literal(80.0))

    def explain(self, row: Mapping[str, Any]) -> str:
        return f"{row['host']} sent {row['bytes_out']} bytes to {row['destination']}."


@dataclass(frozen=True)
class Broken:
    id: ClassVar[str] = "broken"
    kind: ClassVar[Kind] = Kind.C2
    attack: ClassVar[tuple[str, ...]] = ()

    def run(self, ctx: Context) -> ir.Table:
        raise ValueError("boom")

    def explain(self, row: Mapping[str, Any]) -> str:
        return ""


UPLOAD = [flow(ts=T0 + HOUR, src_ip="10.1.9.5", dst_ip="198.51.100.3", bytes_out=5_000_000)]


def test_finding_carries_evidence_and_internal_traffic_is_ignored(detect: Detect) -> None:
    rows = [*UPLOAD, flow(ts=T0 + HOUR, dst_ip="10.1.2.10", bytes_out=9_000_000)]
    [found] = detect(BigSender(), flows=rows, start=T0, end=T0 + DAY)
    assert (found.host, found.destination, found.bytes_out) == ("10.1.9.5", "198.51.100.3", 5e6)
    assert found.evidence["conn_ids"] == [UPLOAD[0]["conn_id"]]
    assert found.summary == "10.1.9.5 sent 5000000 bytes to 198.51.100.3."
    assert found.id.startswith("F-") and found.score == 80.0


def test_expected_transfer_lowers_the_score_but_keeps_the_finding(detect: Detect) -> None:
    inventory = Inventory(
        site="t",
        expected_transfers=[
            ExpectedTransfer(name="offsite", src="10.1.9.5", dst=["198.51.100.0/28"], ports=[443])
        ],
    )
    [found] = detect(BigSender(), flows=UPLOAD, start=T0, end=T0 + DAY, inventory=inventory)
    assert found.expected == "offsite"
    assert found.score == 40.0 and found.evidence["score_before_expected"] == 80.0
    assert "Expected transfer 'offsite'" in found.summary


def test_a_broken_detector_does_not_hide_the_others(tmp_path: Any) -> None:
    with Store(tmp_path) as store:
        store.append(Table.FLOWS, arrow(FLOWS, UPLOAD))
        run = detect(
            ibis.duckdb.from_connection(store.con), Inventory(site="t"),
            Window(T0, T0 + DAY), Settings(), [Broken(), BigSender()],
        )  # fmt: skip
    assert [f.host for f in run.findings] == ["10.1.9.5"]
    assert [(e.detector, e.error) for e in run.errors] == [("broken", "ValueError: boom")]


def test_findings_found_again_keep_their_id_and_merge(tmp_path: Any) -> None:
    with Store(tmp_path) as store:
        store.append(Table.FLOWS, arrow(FLOWS, UPLOAD))
        backend = ibis.duckdb.from_connection(store.con)
        first = detect(
            backend, Inventory(site="t"), Window(T0, T0 + DAY), Settings(), [BigSender()]
        )
        assert save(store, first.findings) == 1
        later = [flow(ts=T0 + 3 * HOUR, src_ip="10.1.9.5", dst_ip="198.51.100.3", bytes_out=7e6)]
        store.append(Table.FLOWS, arrow(FLOWS, later))
        again = detect(
            backend, Inventory(site="t"), Window(T0 + 2 * HOUR, T0 + DAY), Settings(), [BigSender()]
        )
        assert save(store, again.findings) == 0
        [stored] = load(store)
    assert stored.id == first.findings[0].id
    assert stored.ts == T0 + HOUR and stored.bytes_out == 7_000_000


def test_window_must_be_aware_and_non_empty() -> None:
    with pytest.raises(ValueError, match="empty window"):
        Window(T0, T0)


def test_a_findings_hosts_are_its_host_then_the_others_sorted() -> None:
    """Detectors collect the hosts a finding involves as a set: each engine, and each Spark
    run, lists them in another order. The stored order does not depend on it."""
    from hemostat.detect.runner import _finding

    row = {"host": "10.1.0.9", "destination": "198.51.100.7", "ts": T0, "end_ts": T0 + HOUR,
           "score": 50.0, "bytes_out": 1}  # fmt: skip
    orders = (["10.1.2.10", "10.1.0.70", "10.1.0.9"], ["10.1.0.9", "10.1.0.70", "10.1.2.10"])
    found = [_finding(BigSender(), {**row, "hosts": h}, Inventory(site="t"), Settings())
             for h in orders]  # fmt: skip
    assert found[0].hosts == found[1].hosts == ("10.1.0.9", "10.1.0.70", "10.1.2.10")
    assert _finding(BigSender(), row, Inventory(site="t"), Settings()).hosts == ("10.1.0.9",)

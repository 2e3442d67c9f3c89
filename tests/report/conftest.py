"""Realistic scopes for the report tests, built by hand (the scoping engine is tested apart).

``supplier``: DESIGN §1's case. A supplier's VPN account, RDP to the jump server 10.1.0.70, a
dump of the patient-record database dpi-db-01 (10.1.2.10) pulled to it, staged on the file
server fs-02 (10.1.8.10) and pushed as a 590 MB archive to 210.243.127.241 in 20 minutes.
Patient data proven; staff (and every other category) not reached.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hemostat.schema import Category, Incident, Kind
from hemostat.scope.model import (
    ZERO,
    Bounds,
    CategoryScope,
    Destination,
    Egress,
    EgressHost,
    Event,
    Hop,
    Reach,
    Read,
    Scope,
    Status,
)

DAY = datetime(2023, 6, 14, tzinfo=UTC)
CLOUD = "210.243.127.241"
JUMP, DB, FS = "10.1.0.70", "10.1.2.10", "10.1.8.10"
EGRESS_START = DAY + timedelta(hours=1, minutes=10)  # 03:10 in Paris
MINUTES = 20
EGRESS_BYTES = 590_000_000


def at(hours: int, minutes: int, seconds: int = 0) -> datetime:
    return DAY + timedelta(hours=hours, minutes=minutes, seconds=seconds)


def minute_bytes() -> tuple[tuple[datetime, int], ...]:
    """20 one-minute buckets, uneven, adding up to exactly 590 MB."""
    weights = [9, 10, 11, 10, 12, 10, 9, 11, 10, 10, 12, 11, 9, 10, 10, 11, 9, 10, 8, 8]
    sizes = [EGRESS_BYTES * w // sum(weights) for w in weights]
    sizes[-1] += EGRESS_BYTES - sum(sizes)
    return tuple((EGRESS_START + timedelta(minutes=i), b) for i, b in enumerate(sizes))


def _categories(reached: dict[Category, CategoryScope]) -> dict[Category, CategoryScope]:
    out = {}
    for c in Category:
        out[c] = reached.get(c) or CategoryScope(
            c, Status.NONE, ZERO, ZERO, (), f"No evidence that {c} data left."
        )
    return out


PULL = Hop(DB, JUMP, "dpi-db-01", "jump-01", 5432, "postgresql", 1_900_000_000, 1,
           at(0, 15), at(0, 41), 2, "dpi")  # fmt: skip
STAGE = Hop(
    JUMP, FS, "jump-01", "fs-02", 445, "smb", 1_900_000_000, 4, at(0, 44), at(1, 2), 1, None
)
READS = (
    Read("dpi", "postgresql://dpi/public.patients", "vx-support", JUMP, ("export",), 1,
         770_000, 770_000, 1_150_000_000, at(0, 15), at(0, 33), False, True),
    Read("dpi", "postgresql://dpi/public.documents", "vx-support", JUMP, ("export",), 2,
         410_000, 520_000, 640_000_000, at(0, 33), at(0, 41), True, True),
)  # fmt: skip
EVIDENCE = (
    "vx-support exported 770,000 rows of public.patients from 10.1.0.70 (the jump server).",
    "1.9 GB went from dpi-db-01 to 10.1.0.70, then to fs-02, which sent 590 MB outside.",
    "590 MB is 31% of the dump: an archive at a typical compression ratio of 0.3-0.6.",
    "High bound: every record of dpi (2,200,000 records, 850,000 patients) readable by vx-support.",
)


def supplier_scope() -> Scope:
    incident = Incident(
        id="INC-3f2a9c1e",
        kind=Kind.EXFILTRATION,
        score=94.0,
        hosts=(FS, JUMP, DB),
        destinations=(CLOUD, "203.0.113.24"),
        start=at(0, 5),
        end=at(1, 30),
        bytes_out=EGRESS_BYTES,
        detectors=("rare_destination", "egress_volume", "staging", "provider_access"),
        attack=("T1005", "T1021.001", "T1074.002", "T1078", "T1133", "T1560.001", "T1567.002"),
        summary=f"{FS} (fs-02) sent 590 MB to never-seen {CLOUD} over HTTPS in 20 min.",
        findings=("F-rare-1", "F-egress-1", "F-staging-1", "F-provider-1"),
    )
    patient = CategoryScope(
        Category.PATIENT, Status.PROVEN, Bounds(770_000, 2_200_000), Bounds(350_000, 850_000),
        ("dpi",), "Patient data left: 350,000 to 850,000 patients (proven by the access log).",
    )  # fmt: skip
    egress = Egress(
        bytes=EGRESS_BYTES,
        flows=3,
        destinations=(Destination(CLOUD, EGRESS_BYTES, 3, EGRESS_START, at(1, 29, 58), (FS,)),),
        hosts=(EgressHost(FS, "fs-02", EGRESS_BYTES, 3),),
        open_bytes=0,
        first=EGRESS_START,
        last=at(1, 29, 58),
        timeline=minute_bytes(),
    )
    return Scope(
        incident=incident,
        site="CHU Example",
        timezone="Europe/Paris",
        window=(at(0, 0), at(2, 0)),
        egress=egress,
        lineage=(STAGE, PULL),
        datastores=(
            Reach(
                "dpi",
                Category.PATIENT,
                DB,
                Status.PROVEN,
                Bounds(770_000, 2_200_000),
                Bounds(350_000, 850_000),
                1_790_000_000,
                2_200_000,
                850_000,
                EVIDENCE,
                READS,
                (PULL,),
            ),
        ),
        categories=_categories({Category.PATIENT: patient}),
        timeline=(
            Event(at(0, 5), "transfer", "VPN session of vx-support from 203.0.113.24"),
            Event(at(0, 15), "read", "vx-support exports public.patients (770,000 rows)"),
            Event(at(0, 44), "transfer", "jump-01 copies 1.9 GB to fs-02 over SMB"),
            Event(EGRESS_START, "egress_start", f"fs-02 starts sending to {CLOUD}"),
            Event(at(1, 16, 30), "detected", "rare_destination fires on fs-02"),
            Event(at(1, 29, 58), "egress_end", "last byte to the cloud address"),
        ),
        actions=(),
        unknowns=(
            "Whether the 590 MB archive held the whole dump (compression ratio unknown).",
            "The content of the HTTPS upload cannot be inspected.",
        ),
        settings={"lineage_depth": 3, "compression": [0.3, 0.6], "lookback": "6h"},
        generated_at=at(2, 5),
        detected_at=at(1, 16, 30),
    )


ACTIONS: tuple[dict[str, Any], ...] = (
    {"id": "A-2", "ts": at(1, 30, 20), "actor": "soc-analyst", "kind": "host", "target": FS,
     "reason": "INC-3f2a9c1e: upload to a never-seen address", "step": "apply", "result": "ok"},
    {"id": "A-1", "ts": at(1, 29, 0), "actor": "soc-analyst", "kind": "host", "target": FS,
     "reason": "INC-3f2a9c1e: upload to a never-seen address", "step": "plan", "result": "ok"},
    {"id": "A-3", "ts": "2023-06-14T01:30:25Z", "actor": "agent:fs-02", "kind": "host",
     "target": FS, "reason": "self-test after isolation", "step": "selftest", "result": "ok"},
)  # fmt: skip
CONTAINED = at(1, 30, 20)


def nothing_scope() -> Scope:
    """A workstation beaconing out with 12 MB: no data store reached, every category none."""
    base = supplier_scope()
    host, dest = "10.2.14.77", "185.220.101.4"
    start = at(9, 0)
    timeline = tuple((start + timedelta(minutes=i), 2_000_000) for i in range(6))
    egress = Egress(12_000_000, 6, (Destination(dest, 12_000_000, 6, start, at(9, 5, 50), (host,)),),
                    (EgressHost(host, "ws-cardio-12", 12_000_000, 6),), 0, start, at(9, 5, 50),
                    timeline)  # fmt: skip
    incident = dataclasses.replace(
        base.incident, id="INC-77c0de01", kind=Kind.C2, hosts=(host,), destinations=(dest,),
        attack=("T1071.001", "T1573"), detectors=("beaconing",), findings=("F-beacon-1",),
        summary=f"{host} beacons to {dest} every 60 s.",
    )  # fmt: skip
    return dataclasses.replace(
        base, incident=incident, egress=egress, lineage=(), datastores=(),
        categories=_categories({}), timeline=(Event(start, "egress_start", "beacon starts"),),
        unknowns=("What the 12 MB carried: no data store is linked to the workstation.",),
        window=(at(8, 0), at(10, 0)), detected_at=at(9, 3), generated_at=at(9, 30),
    )  # fmt: skip


@pytest.fixture
def supplier() -> Scope:
    return supplier_scope()


@pytest.fixture
def contained() -> Scope:
    return dataclasses.replace(supplier_scope(), actions=ACTIONS)


@pytest.fixture
def nothing() -> Scope:
    return nothing_scope()

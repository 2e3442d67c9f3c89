"""Access anomalies: an export by an account that never exported the store, a read far
beyond the account's usual, a share read end to end; the nightly backup and the application
account's steady queries are not reported."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import pytest

from hemostat.detect.access_anomaly import AccessAnomaly
from hemostat.inventory import Datastore, Inventory
from tests.detect.conftest import DAY, HOUR, T0, Detect, event

DB, FS, APP, JUMP, WS = "10.1.2.10", "10.1.8.10", "10.1.4.10", "10.1.0.70", "10.20.0.182"
TABLES = {"patients": (31_800, 1_600), "stays": (12_720, 3_000), "documents": (9_540, 150_000)}
RH = [f"smb://fs-01/RH/paie/2023-{m:02d}.xlsx" for m in range(1, 6)] + [
    "smb://fs-01/RH/contrats/contrats-2023.zip", "smb://fs-01/RH/personnel/annuaire.csv",
    "smb://fs-01/RH/medecine-travail/visites.xlsx", "smb://fs-01/RH/evaluations/entretiens.docx",
]  # fmt: skip
MINUTE = timedelta(minutes=1)

INVENTORY = Inventory(
    site="t",
    timezone="Europe/Paris",  # T0 is Monday 01:00 local
    datastores=[
        Datastore(name="dpi", host=DB, ports=[5432], objects=["postgresql://dpi/"],
                  category="patient", records=54_060, bytes=1_520_000_000),
        Datastore(name="rh", host=FS, ports=[445], objects=["smb://fs-01/RH/"],
                  category="staff", records=2_600, bytes=9 * 1_000_000),
    ],
)  # fmt: skip


def backup(day: int) -> list[dict[str, Any]]:
    """The nightly backup's export of every table (local, by the backup account)."""
    at = T0 + day * DAY + 50 * MINUTE
    return [
        event(ts=at + i * timedelta(seconds=1), user="backup", process="pg_dump",
              action="export", object=f"postgresql://dpi/public.{name}", rows=rows,
              bytes=rows * size, client_ip=None)
        for i, (name, (rows, size)) in enumerate(TABLES.items())
    ]  # fmt: skip


def queries(days: int, client: str = APP) -> list[dict[str, Any]]:
    """The application account's steady queries: 20 an hour, a few rows each."""
    return [
        event(ts=T0 + hour * HOUR + i * 3 * MINUTE, client_ip=client, rows=3 + (hour + i) % 7,
              object="postgresql://dpi/public.stays", bytes=3000 * (3 + (hour + i) % 7))
        for hour in range(24 * days)
        for i in range(20)
    ]  # fmt: skip


def test_a_dump_by_an_account_that_never_exported_is_reported(detect: Detect) -> None:
    dump = [
        dict(row, ts=row["ts"] + 22 * HOUR, user="postgres", client_ip=JUMP) for row in backup(1)
    ]
    rows = [*backup(0), *backup(1), *dump]
    [found] = detect(AccessAnomaly(), access=rows, start=T0 + DAY, end=T0 + 2 * DAY,
                     inventory=INVENTORY)  # fmt: skip
    assert (found.host, found.hosts) == (JUMP, (JUMP, DB))
    assert found.score == 35 + 25 + 15 + 10 and found.kind == "data_access"
    e = found.evidence
    assert e["reason"] == "bulk export" and e["user"] == "postgres" and e["store"] == "dpi"
    assert e["rows"] == sum(r for r, _ in TABLES.values()) and e["remote"] and e["off_hours"]
    assert found.summary == (
        "postgres from 10.1.0.70 exported 54,060 rows (1.5 GB) of dpi outside office hours, "
        "pulled to another host: an export this account never made before."
    )


def test_the_nightly_backup_is_not_reported_once_it_has_a_history(detect: Detect) -> None:
    rows = [*backup(0), *backup(1), *backup(2)]
    found = detect(AccessAnomaly(), access=rows, start=T0 + DAY, end=T0 + 3 * DAY,
                   inventory=INVENTORY)  # fmt: skip
    assert found == []
    # on its very first night there is nothing to compare with: medium, not an incident
    [first] = detect(AccessAnomaly(), access=rows, start=T0, end=T0 + DAY, inventory=INVENTORY)
    assert first.host == DB and 30 <= first.score < 50
    assert "no history to compare with" in first.summary


def test_one_query_returning_a_whole_table_is_a_dump(detect: Detect) -> None:
    at = T0 + DAY + 8 * HOUR + 16 * MINUTE
    dump = event(ts=at, client_ip=APP, object="postgresql://dpi/public.stays", rows=12_720,
                 bytes=38_160_000)  # fmt: skip
    rows = [*queries(days=2), dump]
    [found] = detect(AccessAnomaly(), access=rows, start=T0 + DAY, end=T0 + 2 * DAY,
                     inventory=INVENTORY)  # fmt: skip
    assert (found.host, found.hosts) == (APP, (APP, DB)) and found.score >= 65
    e = found.evidence
    assert e["reason"] == "oversized read" and e["largest"] == 12_720 and e["usual_largest"] < 10
    assert e["ratio"] > 100 and e["usual"] == pytest.approx(120, rel=0.2)
    assert "one read returned 12,720 rows" in found.summary


def test_steady_application_queries_are_not_reported(detect: Detect) -> None:
    rows = queries(days=2) + queries(days=2, client="10.1.4.11")
    # an export of a few rows (a user's CSV from the application) is not a bulk export
    rows.append(event(ts=T0 + DAY + 9 * HOUR, action="export", rows=40, bytes=60_000))
    found = detect(AccessAnomaly(), access=rows, start=T0 + DAY, end=T0 + 2 * DAY,
                   inventory=INVENTORY)  # fmt: skip
    assert found == []


def test_a_staff_share_read_end_to_end_is_reported(detect: Detect) -> None:
    at = T0 + DAY + 7 * HOUR + 45 * MINUTE
    everyday = [
        event(ts=T0 + h * HOUR, host=FS, user=f"u{h:03d}", process="System", action="read",
              object=f"smb://fs-01/Services/doc-{h:04d}.docx", rows=None, bytes=50_000,
              client_ip=f"10.20.0.{10 + h}")
        for h in range(40)
    ]  # fmt: skip
    reads = [
        event(ts=at + i * 40 * timedelta(seconds=1), host=FS, user="u00210", process="System",
              action="read", object=name, rows=None, bytes=1_000_000, client_ip=WS)
        for i, name in enumerate(RH)
    ]  # fmt: skip
    [found] = detect(AccessAnomaly(), access=everyday + reads, start=T0 + DAY,
                     end=T0 + 2 * DAY, inventory=INVENTORY)  # fmt: skip
    assert (found.host, found.hosts) == (WS, (WS, FS))
    assert found.score == 30 + 25 + 15 and found.bytes_out == 9_000_000
    e = found.evidence
    assert e["reason"] == "whole share" and e["files"] == e["known_files"] == 9
    assert e["store_fraction"] == 1.0 and e["new_to_it"] and e["part"] == "smb://fs-01/RH"
    assert found.summary == (
        "u00210 from 10.20.0.182 read smb://fs-01/RH end to end (9 of its 9 known files, "
        "100% of the data store's bytes), a first for this account."
    )
    # a third of the share is not the whole of it
    found = detect(AccessAnomaly(), access=everyday + reads[:3], start=T0 + DAY,
                   end=T0 + 2 * DAY, inventory=INVENTORY)  # fmt: skip
    assert found == []


def test_every_threshold_is_documented() -> None:
    for f in dataclasses.fields(AccessAnomaly):
        assert f.metadata.get("help"), f.name

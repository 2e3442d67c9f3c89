"""Staging: a pull from a data store far above the host's and its peers' usual hour, then a
push far above usual elsewhere; the nightly backup and steady application queries do not."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

from hemostat.detect.staging import Staging
from hemostat.inventory import Datastore, ExpectedTransfer, Host, Inventory
from tests.detect.conftest import DAY, HOUR, T0, Detect, flow

JUMP, DB, FS, BKP = "10.1.0.70", "10.1.2.10", "10.1.8.10", "10.1.9.5"
APPS = ("10.1.4.10", "10.1.4.11", "10.1.4.12")
WORKSTATIONS = tuple(f"10.20.0.{i}" for i in range(10, 22))
MB, GB = 1_000_000, 1_000_000_000

INVENTORY = Inventory(
    site="t",
    timezone="Europe/Paris",
    hosts=[
        Host(name="fs-01", ip=FS, role="fileserver"),
        Host(name="bkp-01", ip=BKP, role="backup"),
    ],
    datastores=[Datastore(name="dpi", host=DB, ports=[5432], objects=["postgresql://dpi/"])],
    expected_transfers=[
        ExpectedTransfer(
            name="internal-backup", src="10.1.0.0/16", dst=[f"{BKP}/32"], ports=[10000]
        )
    ],
)


def everyday(days: int = 1) -> list[dict[str, Any]]:
    """Application servers query the database every hour; workstations read from and write
    small files to the file server."""
    rows = []
    for hour in range(24 * days):
        ts = T0 + hour * HOUR
        for i, app in enumerate(APPS):
            rows.append(
                flow(
                    ts=ts + i * timedelta(minutes=7),
                    src_ip=app,
                    dst_ip=DB,
                    dst_port=5432,
                    bytes_out=200_000,
                    bytes_in=(30 + 5 * i) * MB,
                )
            )
        for i, ws in enumerate(WORKSTATIONS):  # each has a busy hour now and then
            read = 80 * MB if hour % 24 == 9 + i % 8 else 4 * MB
            rows.append(
                flow(
                    ts=ts + i * timedelta(minutes=3),
                    src_ip=ws,
                    dst_ip=FS,
                    dst_port=445,
                    bytes_out=300_000,
                    bytes_in=read,
                )
            )
    return rows


def dump_and_copy(at: Any) -> list[dict[str, Any]]:
    return [
        flow(ts=at, end_ts=at + timedelta(seconds=25), src_ip=JUMP, dst_ip=DB, dst_port=5432,
             bytes_out=3 * MB, bytes_in=int(1.5 * GB), conn_id="Cdump"),
        flow(ts=at + timedelta(seconds=80), end_ts=at + timedelta(seconds=95), src_ip=JUMP,
             dst_ip=FS, dst_port=445, bytes_out=int(1.5 * GB), bytes_in=3 * MB, conn_id="Ccopy"),
    ]  # fmt: skip


def test_a_dump_copied_to_a_file_server_is_staging(detect: Detect) -> None:
    at = T0 + 23 * HOUR + timedelta(minutes=32)
    rows = [*everyday(), *dump_and_copy(at)]
    [found] = detect(Staging(), flows=rows, start=T0, end=T0 + DAY, inventory=INVENTORY)
    assert found.host == JUMP and found.destination == FS
    assert found.hosts == (JUMP, DB, FS)  # the chain: staging host, store, next hop
    assert found.score >= 85 and found.bytes_out == int(1.5 * GB)
    e = found.evidence
    assert e["pulled"] == int(1.5 * GB) and e["new_client"] is True and e["gap_s"] == 80
    [source] = e["pulled_from"]
    assert source["store"] == DB and source["peer_peak"] == 40 * MB  # median app-server hour
    [target] = e["pushed_to"]
    assert target["destination"] == FS and target["port"] == 445 and not target["external"]
    assert found.summary.startswith(f"{JUMP} pulled 1.5 GB from {DB} (never read from before)")
    assert "1 min later sent 1.5 GB to 10.1.8.10:445" in found.summary


def test_a_push_outside_counts_too(detect: Detect) -> None:
    at = T0 + 10 * HOUR
    rows = [*everyday(), dump_and_copy(at)[0],
            flow(ts=at + 2 * HOUR, src_ip=JUMP, dst_ip="203.0.113.9", bytes_out=700 * MB)]  # fmt: skip
    [found] = detect(Staging(), flows=rows, start=T0, end=T0 + DAY, inventory=INVENTORY)
    assert found.destination == "203.0.113.9" and found.hosts == (JUMP, DB)
    assert found.evidence["pushed_outside"] == 700 * MB
    assert found.evidence["gap_s"] == 2 * 3600 and 65 <= found.score < 85  # not at once


def test_everyday_reads_and_uploads_are_not_staging(detect: Detect) -> None:
    # the app servers query all day and serve pages to the workstations; a workstation
    # reads 300 MB (under 5x its peers' usual busiest hour of 80 MB) and syncs 150 MB to
    # the cloud right after
    rows = [*everyday()]
    at = T0 + 14 * HOUR
    rows += [
        flow(ts=at, src_ip=APPS[0], dst_ip=DB, dst_port=5432, bytes_in=120 * MB),
        flow(ts=at, src_ip=APPS[0], dst_ip=WORKSTATIONS[0], dst_port=8443, bytes_out=80 * MB),
        flow(ts=at, src_ip=WORKSTATIONS[1], dst_ip=FS, dst_port=445, bytes_in=300 * MB),
        flow(ts=at + HOUR, src_ip=WORKSTATIONS[1], dst_ip="20.190.130.4", bytes_out=150 * MB),
    ]
    assert detect(Staging(), flows=rows, start=T0, end=T0 + DAY, inventory=INVENTORY) == []
    # twice that, and it is a pull followed by a push
    rows.append(flow(ts=at, src_ip=WORKSTATIONS[1], dst_ip=FS, dst_port=445, bytes_in=300 * MB))
    [found] = detect(Staging(), flows=rows, start=T0, end=T0 + DAY, inventory=INVENTORY)
    assert found.host == WORKSTATIONS[1] and found.destination == "20.190.130.4"


def test_the_copy_to_the_backup_server_is_not_a_push(detect: Detect) -> None:
    at = T0 + 23 * HOUR
    rows = [*everyday(), dump_and_copy(at)[0],
            flow(ts=at + HOUR, src_ip=JUMP, dst_ip=BKP, dst_port=10000, bytes_out=2 * GB)]  # fmt: skip
    assert detect(Staging(), flows=rows, start=T0, end=T0 + DAY, inventory=INVENTORY) == []


def test_a_host_that_does_it_every_day_is_judged_by_its_history(detect: Detect) -> None:
    # a reporting server extracts the database and ships it to a partner every night
    rows = everyday(days=3)
    for day in range(3):
        at = T0 + day * DAY + 2 * HOUR
        rows += [
            flow(ts=at, src_ip=JUMP, dst_ip=DB, dst_port=5432, bytes_in=GB),
            flow(ts=at + HOUR, src_ip=JUMP, dst_ip="192.0.2.30", bytes_out=GB),
        ]
    found = detect(Staging(), flows=rows, start=T0 + 2 * DAY, end=T0 + 3 * DAY,
                   inventory=INVENTORY)  # fmt: skip
    assert found == []
    # without the history the same night is staging
    [first] = detect(Staging(), flows=rows, start=T0, end=T0 + DAY, inventory=INVENTORY)
    assert first.host == JUMP


def test_every_threshold_is_documented() -> None:
    for f in dataclasses.fields(Staging):
        assert f.metadata.get("help"), f.name

"""Upload ratio: a host that turns into a pure uploader towards a network it never fed is
reported at a moderate score; uploads that are normal for the pair, the host or the site
(backups seen before, cloud sync everyone does) are not."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from hemostat.detect.upload_ratio import UploadRatio
from hemostat.inventory import ExpectedTransfer, Host, Inventory
from tests.detect.conftest import DAY, HOUR, T0, Detect, flow

MB = 1_000_000
UPDATES = "13.107.4.5"
CLOUD = "20.190.179.30"


def _inventory(**extra: Any) -> Inventory:
    hosts = [Host(name="fs-01", ip="10.1.8.10", role="fileserver"),
             Host(name="fs-02", ip="10.1.8.11", role="fileserver"),
             Host(name="bkp-01", ip="10.1.9.5", role="backup")]  # fmt: skip
    hosts += [Host(name=f"ws-{i}", ip=f"10.20.0.{i}", role="workstation") for i in range(10, 16)]
    return Inventory(site="t", timezone="Europe/Paris", hosts=hosts, **extra)


def _downloads(src: str, start: datetime, hours: int) -> list[dict[str, Any]]:
    """Hourly update downloads: 2 kB up, 5 MB down."""
    return [
        flow(ts=start + h * HOUR, src_ip=src, dst_ip=UPDATES, bytes_out=2000, bytes_in=5 * MB)
        for h in range(hours)
    ]


def test_a_file_server_that_starts_uploading_is_reported(detect: Detect) -> None:
    upload = flow(ts=T0 + 26 * HOUR, src_ip="10.1.8.10", dst_ip="142.61.255.171",
                  bytes_out=700 * MB, bytes_in=MB)  # fmt: skip
    rows = [*_downloads("10.1.8.10", T0, 48), *_downloads("10.1.8.11", T0, 48), upload]
    [found] = detect(UploadRatio(), flows=rows, start=T0 + DAY, end=T0 + 2 * DAY,
                     inventory=_inventory())  # fmt: skip
    assert (found.host, found.destination) == ("10.1.8.10", "142.61.255.171")
    assert found.bytes_out == 700 * MB and 50 <= found.score <= 58
    ev = found.evidence
    assert ev["pcr"] == pytest.approx(699 / 701, abs=1e-4) and ev["network"] == "142.61.255.0/24"
    assert ev["host_other_pcr"] == pytest.approx(-0.9992, abs=1e-3)
    assert ev["peer_pcr"] == pytest.approx(-0.9992, abs=1e-3) and ev["pair_history_pcr"] is None
    assert ev["shift"] > 1.9 and ev["conn_ids"] == [upload["conn_id"]] and ev["dst_port"] == 443
    assert ev["addresses"][0]["bytes_out"] == 700 * MB
    assert found.summary == (
        "10.1.8.10 sent 700 MB to 142.61.255.171 and its network and received 1.0 MB: "
        "producer-consumer ratio +0.997 where its other Internet traffic -1.00, "
        "fileserver peers -1.00 (shift +2.00)."
    )


def test_a_small_upload_is_a_weaker_finding(detect: Detect) -> None:
    upload = flow(ts=T0 + 5 * HOUR, src_ip="10.1.8.10", dst_ip="80.132.124.185",
                  bytes_out=8 * MB, bytes_in=20_000)  # fmt: skip
    [found] = detect(UploadRatio(), flows=[*_downloads("10.1.8.10", T0, 24), upload],
                     start=T0, end=T0 + DAY, inventory=_inventory())  # fmt: skip
    assert 35 <= found.score < 45


def _cloud_sync(size: int) -> list[dict[str, Any]]:
    """Six workstations browsing (downloads) and syncing ``size`` bytes to the cloud."""
    rows = []
    for i in range(10, 16):
        rows += _downloads(f"10.20.0.{i}", T0, 12)
        rows += [flow(ts=T0 + h * HOUR, src_ip=f"10.20.0.{i}", dst_ip=CLOUD, bytes_out=size,
                      bytes_in=size // 50) for h in range(0, 12, 3)]  # fmt: skip
    return rows


def test_uploading_where_the_whole_site_uploads_is_not_a_shift(detect: Detect) -> None:
    rows = [*_cloud_sync(2 * MB), flow(ts=T0 + 5 * HOUR, src_ip="10.20.0.12", dst_ip=CLOUD,
                                       bytes_out=300 * MB, bytes_in=10_000)]  # fmt: skip
    assert detect(UploadRatio(), flows=rows, start=T0, end=T0 + DAY, inventory=_inventory()) == []


def test_an_upload_seen_before_for_the_same_pair_is_not_a_shift(detect: Detect) -> None:
    backup = [flow(ts=T0 + d * DAY + HOUR, src_ip="10.1.9.5", dst_ip="198.51.100.2",
                   bytes_out=5000 * MB, bytes_in=20 * MB) for d in (0, 1)]  # fmt: skip
    rows = [*_downloads("10.1.9.5", T0, 48), *backup]
    assert detect(UploadRatio(), flows=rows, start=T0 + DAY, end=T0 + 2 * DAY,
                  inventory=_inventory()) == []  # fmt: skip


def test_an_expected_transfer_stays_below_the_corroboration_bar(detect: Detect) -> None:
    inventory = _inventory(expected_transfers=[ExpectedTransfer(
        name="offsite-backup", src="10.1.9.5", dst=["198.51.100.0/28"], ports=[443])])  # fmt: skip
    rows = [*_downloads("10.1.9.5", T0, 24),
            flow(ts=T0 + HOUR, src_ip="10.1.9.5", dst_ip="198.51.100.2", bytes_out=40_000 * MB,
                 bytes_in=100 * MB)]  # fmt: skip
    [found] = detect(UploadRatio(), flows=rows, start=T0, end=T0 + DAY, inventory=inventory)
    assert found.expected == "offsite-backup"
    assert found.evidence["score_before_expected"] == 58.0 and found.score == 29.0


def test_a_download_heavy_pair_is_never_an_upload(detect: Detect) -> None:
    rows = [flow(ts=T0 + HOUR, src_ip="10.1.8.10", dst_ip="93.184.216.34", bytes_out=60 * MB,
                 bytes_in=90 * MB)]  # fmt: skip
    assert detect(UploadRatio(), flows=rows, start=T0, end=T0 + DAY, inventory=_inventory()) == []

"""The live path end to end (issue 6): agent, collector, detection and alerts in network
namespaces. A bulk upload from the server is alerted on syslog and the webhook within 30 s of
its start; ordinary traffic raises no alert; a collector outage loses and duplicates nothing."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hemostat.store import Store
from tests.contain.lab import Lab, missing, wait_until
from tests.live.site import INTERNET, SERVER, Site

pytestmark = [pytest.mark.netns, pytest.mark.slow]


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    if why := missing():
        pytest.skip(why)
    lab = Lab("L", tmp_path)
    try:
        yield Site(lab, tmp_path / "collector").build()
    finally:
        lab.close()


def test_a_bulk_upload_is_alerted_within_30_s(site: Site) -> None:
    sink = site.lab.sink(site.net, 443)
    site.start_collector()
    site.start_agent()
    started = time.time()
    site.lab.upload(site.srv, INTERNET, 443, rate=25_000_000, seconds=40)
    assert wait_until(lambda: bool(site.first("syslog") and site.first("webhook")), 60), (
        f"no alert after 60 s; received {site.received()}"
    )
    syslog, webhook = site.first("syslog"), site.first("webhook")
    assert syslog is not None and webhook is not None
    delays = {"syslog": syslog["t"] - started, "webhook": webhook["t"] - started}
    at_sink = sink.bytes_from(SERVER)
    print(f"alert delays from the upload's start: {delays}; bytes at the sink: {at_sink:,}")  # noqa: T201
    assert max(delays.values()) <= 30, delays
    assert "CEF:0|hemostat|" in syslog["body"] and f"src={SERVER}" in syslog["body"]
    assert f"dst={INTERNET}" in syslog["body"]
    assert SERVER in webhook["body"] and '"class_uid": 2004' in webhook["body"].replace(
        '"class_uid":2004', '"class_uid": 2004'
    )


def test_ordinary_traffic_raises_no_alert(site: Site) -> None:
    site.lab.sink(site.net, 443)
    site.start_collector()
    site.start_agent()
    upload = site.lab.upload(site.srv, INTERNET, 443, rate=20_000, seconds=20)  # 400 kB
    upload.wait(timeout=60)
    ended = datetime.now(UTC) - timedelta(seconds=3)  # the agent's last slice starts after
    assert wait_until(lambda: any(end > ended for end in site.passes()), 90), site.passes()
    time.sleep(1)  # the alerter runs right after the pass
    site.stop_collector()
    assert site.received() == []
    with Store(site.home, read_only=True) as store:
        sent = store.con.execute(
            "SELECT sum(bytes_out), count(DISTINCT conn_id) FROM flows "
            "WHERE src_ip = ? AND dst_ip = ?",
            [SERVER, INTERNET],
        ).fetchone()
        passes = store.con.execute(
            "SELECT count(*) FROM detections WHERE until > (SELECT max(ts) FROM flows)"
        ).fetchone()
    assert sent is not None and sent[1] == 1 and 390_000 <= sent[0] <= 410_000
    assert passes is not None and passes[0] >= 1  # detection did look at the last flows


def test_an_outage_loses_and_duplicates_nothing(site: Site) -> None:
    site.lab.sink(site.net, 443)
    site.start_collector()
    site.start_agent()
    sizes = [100_000 + 7_919 * i for i in range(12)]
    site.send(site.srv, INTERNET, 443, sizes[0])
    time.sleep(4)  # delivered
    site.stop_collector()  # the agent keeps recording into its spool
    for size in sizes[1:]:
        site.send(site.srv, INTERNET, 443, size)
    time.sleep(6)  # the agent samples, spools and fails to deliver for a while
    site.start_collector()
    spool = site.home.parent / "agent"
    assert wait_until(lambda: _spool_empty(spool), 120), "the agent never drained its spool"
    time.sleep(2)
    site.stop_collector()
    with Store(site.home, read_only=True) as store:
        conns = store.con.execute(
            "SELECT sum(bytes_out) FROM flows WHERE src_ip = ? AND dst_ip = ? "
            "GROUP BY conn_id ORDER BY 1",
            [SERVER, INTERNET],
        ).fetchall()
        batches = store.con.execute("SELECT count(*), count(DISTINCT id) FROM batches").fetchone()
    assert [row[0] for row in conns] == sorted(sizes)  # each connection once, whole
    assert batches is not None and batches[0] == batches[1]


def _spool_empty(state: Path) -> bool:
    batches = state / "spool" / "batches"
    return batches.exists() and not any(batches.glob("*.json.gz"))

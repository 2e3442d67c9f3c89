"""The live loop: a detection pass when rows arrived (late rows included), then the alerter;
no alerter module, no alerts and one log line; rows noted during a pass, or given back by a
failed or halted one, go to the next pass."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import duckdb
import pytest

from hemostat import config
from hemostat.detect import Window
from hemostat.inventory import Inventory
from hemostat.schema import Table
from hemostat.server.batch import Limits, decode
from hemostat.server.live import Live
from hemostat.server.metrics import Metrics
from hemostat.store import Store
from tests.server.conftest import START, batch, gz

AGENT = "0123456789ab"


def _store(home: Path, flows: int = 5) -> Store:
    store = Store(home)
    got = decode(
        gz(batch(AGENT, 1, flows=flows)), "gzip", AGENT, "n", Limits(1 << 30, 1 << 30, 10**6)
    )
    store.append(Table.FLOWS, got.parts[0][1])
    return store


def _live(home: Path, interval: str = "0.001") -> Live:
    settings = config.load(home, environ={"HEMOSTAT_SERVER__DETECT_INTERVAL": interval})
    return Live(settings, home, lambda: Inventory(site="t"), Metrics())


def _tick(live: Live, store: Store) -> Any:
    deadline = time.monotonic() + 5
    while (done := live.tick(store)) is None and time.monotonic() < deadline:
        time.sleep(0.002)
    return done


class FakeAlerter:
    calls: ClassVar[list[tuple[list[Any], datetime]]] = []

    @classmethod
    def from_settings(cls, settings: Any, home: Path) -> FakeAlerter:
        return cls()

    def notify(self, incidents: list[Any], now: datetime) -> list[Any]:
        self.calls.append((list(incidents), now))
        return [SimpleNamespace(sink="syslog", ok=True), SimpleNamespace(sink="mail", ok=False)]


@pytest.fixture
def examined(monkeypatch: pytest.MonkeyPatch) -> list[Window]:
    """Replace ``examine`` by a recorder that finds one incident."""
    windows: list[Window] = []

    def examine(store: Store, inventory: Inventory, settings: Any, window: Window, **_: Any) -> Any:
        windows.append(window)
        run = SimpleNamespace(findings=[], errors=[])
        return SimpleNamespace(run=run, new=0, incidents=["INC-1"], seconds=0.5)

    monkeypatch.setattr("hemostat.detect.runner.examine", examine)
    FakeAlerter.calls = []
    return windows


def test_a_pass_examines_what_arrived_then_alerts(
    home: Path, examined: list[Window], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("hemostat.alerting.Alerter", FakeAlerter)
    store, live = _store(home), _live(home)
    assert live.tick(store) is None  # nothing noted yet: no pass
    live.note(5, START)
    assert _tick(live, store) == ["INC-1"]
    assert examined == [Window(START, START + timedelta(milliseconds=4, microseconds=1))]
    assert [incidents for incidents, _ in FakeAlerter.calls] == [["INC-1"]]
    assert live.metrics.alerts == {"syslog": 1} and live.metrics.alert_failures == {"mail": 1}
    assert live.metrics.detect_pass_seconds == 0.5
    live._next = 0.0
    assert live.tick(store) is None and len(examined) == 1  # no new rows, no pass

    # rows older than where the last pass stopped (an agent's spool after an outage)
    store.con.execute("INSERT INTO detections (since, until) VALUES (?, ?)",
                      [START, START + timedelta(hours=2)])  # fmt: skip
    late = START - timedelta(hours=1)
    live.note(3, late)
    assert _tick(live, store) is not None
    assert examined[-1].start == late


def test_without_an_alerter_module_passes_still_run(
    home: Path, examined: list[Window], monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    monkeypatch.setitem(sys.modules, "hemostat.alerting", None)  # import fails
    store, live = _store(home), _live(home)
    for _ in range(2):
        live.note(1, START)
        assert _tick(live, store) == ["INC-1"]
    assert caplog.text.count("alerting is not available") == 1


def test_detection_off_means_no_pass(home: Path, examined: list[Window]) -> None:
    store, live = _store(home), _live(home, interval="0")
    live.note(5, START)
    assert live.due_in() is None and live.tick(store) is None and examined == []


def test_rows_noted_during_a_pass_and_those_of_a_failed_pass_go_to_the_next(
    home: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "hemostat.alerting", None)
    store, live = _store(home), _live(home, interval="3600")
    windows: list[Window] = []
    late = [START - timedelta(hours=1), START - timedelta(hours=3)]

    def examine(store: Store, inventory: Inventory, settings: Any, window: Window,
                **_: Any) -> Any:  # fmt: skip
        windows.append(window)
        if len(windows) <= 2:  # the writer commits late rows while the pass runs
            live.note(2, late[len(windows) - 1])
        if len(windows) == 1:
            raise duckdb.IOException("disk full")
        run = SimpleNamespace(findings=[], errors=[])
        return SimpleNamespace(run=run, new=0, incidents=[], seconds=0.1)

    monkeypatch.setattr("hemostat.detect.runner.examine", examine)
    live.note(5, START)
    for _ in range(3):
        live._next = 0.0
        live.tick(store)
    assert "live detection pass failed (retried at the next interval): disk full" in caplog.text
    # pass 2: the failed pass's rows and the late ones noted meanwhile; pass 3: those
    # noted during pass 2
    assert [w.start for w in windows] == [START, late[0], late[1]]
    assert live.metrics.detect_passes == 2 and live._rows == 0 and live._first is None


def test_a_halted_pass_ends_at_its_next_detector_and_keeps_its_rows(
    home: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="hemostat.server.live")
    store, live = _store(home), _live(home, interval="3600")
    after: list[str] = []

    def examine(store: Store, inventory: Inventory, settings: Any, window: Window,
                progress: Callable[[str], None], **_: Any) -> Any:  # fmt: skip
        live.halt()  # the collector stops during the first detector
        progress("egress_volume")
        after.append("the pass went on")
        return None

    monkeypatch.setattr("hemostat.detect.runner.examine", examine)
    live.note(5, START)
    live._next = 0.0
    assert live.tick(store) is None and after == []
    assert live.metrics.detect_passes == 0 and (live._rows, live._first) == (5, START)
    assert "stopped with the collector" in caplog.text
    live._next = 0.0
    assert not live.due()  # no pass after a halt


@pytest.mark.slow
def test_a_real_pass_is_recorded(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("hemostat.alerting.Alerter", FakeAlerter)
    FakeAlerter.calls = []
    store, live = _store(home, flows=50), _live(home)
    live.note(50, START)
    assert _tick(live, store) is not None
    rows = store.con.execute("SELECT since, until, errors FROM detections").fetchall()
    assert len(rows) == 1 and rows[0][0] == START and rows[0][2] == []
    assert live.metrics.detect_passes == 1 and len(FakeAlerter.calls) == 1

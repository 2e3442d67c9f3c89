"""Live detection beside the writer (a real collector in process): batches are stored and
acknowledged while a pass runs, a pass waits for every batch acknowledged before it and its
window covers them, ``stop`` during a pass is bounded and loses nothing, /healthz reports the
thread. Passes are made slow by a test detector that waits for the test (or runs a query that
only an interruption ends), never by sleeping."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import ibis
import pyarrow as pa
import pytest

from hemostat.detect import Context, Window
from hemostat.detect import runner as runner_mod
from hemostat.schema import Kind, Table
from hemostat.server import live_thread
from hemostat.server.collector import Collector
from hemostat.server.live import Live
from hemostat.server.live_thread import LiveThread
from hemostat.server.writer import Writer
from hemostat.store import Store
from tests.server.conftest import (
    START,
    TestClient,
    Tokened,
    batch,
    flow,
    gz,
    headers,
    journal,
    running,
    stored,
)

WAIT = 60.0  # a bound for what must happen, never a guess at how long it takes
FAST = {"HEMOSTAT_SERVER__DETECT_INTERVAL": "0.05", "HEMOSTAT_SERVER__RATE": "1000",
        "HEMOSTAT_SERVER__BURST": "1000"}  # fmt: skip


@dataclass
class Seen:
    """What one pass's detector saw."""

    window: Window
    batches: set[str]


@dataclass
class Gate:
    """A detector that records what its pass sees, then waits for ``opened[n]`` (pass n), or
    (``forever``) runs a query that ends only when interrupted."""

    id: ClassVar[str] = "gate"
    kind: ClassVar[Kind] = Kind.EXFILTRATION
    attack: ClassVar[tuple[str, ...]] = ()
    forever: bool = False
    opened: list[threading.Event] = field(default_factory=list)
    entered: list[threading.Event] = field(
        default_factory=lambda: [threading.Event() for _ in range(4)]
    )
    seen: list[Seen] = field(default_factory=list)

    def run(self, ctx: Context) -> Any:
        backend = ctx.flows._find_backend()
        ids = backend.to_pyarrow(ctx.current(ctx.flows).select("conn_id")).column(0)
        self.seen.append(Seen(ctx.window, {str(c).split("/")[0] for c in ids.to_pylist()}))
        n = len(self.seen) - 1
        self.entered[n].set()
        if self.forever:
            backend.con.execute("SELECT count(*) FROM range(1000000000000) r WHERE r.range % 7 = 3")
        elif n < len(self.opened):
            assert self.opened[n].wait(WAIT), "the test never opened the gate"
        return ctx.flows.filter(ibis.literal(False))

    def explain(self, row: Any) -> str:
        return "gate"


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Gate:
    """Live passes run the real ``examine`` with the gate as their only detector."""
    gate, real = Gate(), runner_mod.examine

    def examine(store: Store, inventory: Any, settings: Any, window: Window, **kw: Any) -> Any:
        return real(store, inventory, settings, window, detectors=[gate], **kw)

    monkeypatch.setattr(runner_mod, "examine", examine)
    return gate


def _body(tokened: Tokened, seq: int, start: datetime, flows: int = 3) -> bytes:
    body = batch(tokened.agent.id, seq)
    body["flows"] = [flow(body["batch"], i, start) for i in range(flows)]
    return gz(body)


def _post(client: TestClient, tokened: Tokened, seq: int, start: datetime = START) -> str:
    answer = client.post("/api/v1/ingest", content=_body(tokened, seq, start),
                         headers=headers(tokened.agent_text))  # fmt: skip
    assert answer.status_code == 200, answer.text
    return str(answer.json()["batch"])


def _collector(client: TestClient) -> Collector:
    collector: Collector = client.app.state.collector  # type: ignore[attr-defined]
    return collector


def _in_store(client: TestClient) -> int:
    store = _collector(client).store
    assert store is not None
    with store.reading() as view:
        return int(view.con.execute("SELECT count(*) FROM flows").fetchall()[0][0])


def _until(check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT
    while not check():
        assert time.monotonic() < deadline, "never happened"
        time.sleep(0.01)


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, threading.Event]]:
    """``held[batch id]``: the writer's append of that batch waits until the event is set."""
    events: dict[str, threading.Event] = {}
    real = Store.append

    def append(self: Store, table: Table, data: Any, ingest_id: int | None = None) -> int:
        if isinstance(data, pa.Table) and "conn_id" in data.column_names:
            for ident in {str(c).split("/")[0] for c in data.column("conn_id").to_pylist()}:
                if ident in events:
                    assert events[ident].wait(WAIT), "the test never let the writer go on"
        return real(self, table, data, ingest_id)

    monkeypatch.setattr(Store, "append", append)
    yield events
    for event in events.values():
        event.set()


def test_batches_are_stored_during_a_pass_which_waits_for_every_acknowledged_batch(
    home: Path, tokened: Tokened, gate: Gate, held: dict[str, threading.Event],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    gate.opened = [threading.Event()]
    b_start, c_start = START + timedelta(hours=2), START + timedelta(hours=1)
    b_id = f"{tokened.agent.id}-{3:012d}"
    held[b_id] = threading.Event()
    asked = threading.Event()  # the live thread waits for a mark covering batch B
    real_wait = Writer.wait_written

    def wait_written(self: Writer, mark: int, timeout: float) -> bool:
        if mark >= 3:
            asked.set()
        return real_wait(self, mark, timeout)

    monkeypatch.setattr(Writer, "wait_written", wait_written)
    with running(home, **FAST) as client:
        a = _post(client, tokened, 1)
        assert gate.entered[0].wait(WAIT)  # pass 1 runs, and stays until opened
        c = _post(client, tokened, 2, c_start)
        _until(lambda: _in_store(client) == 6)  # C stored while pass 1 runs
        assert not gate.opened[0].is_set() and len(gate.seen) == 1
        assert _post(client, tokened, 3, b_start) == b_id  # acknowledged; its write is held
        gate.opened[0].set()  # pass 1 ends; pass 2 is due, with C's rows noted
        assert asked.wait(WAIT)
        assert len(gate.seen) == 1  # pass 2 has not started: the writer still holds B
        held[b_id].set()
        assert gate.entered[1].wait(WAIT)
        metrics = _collector(client).metrics
        _until(lambda: metrics.detect_passes == 2)
    first, second = gate.seen[:2]
    assert first.batches == {a} and first.window.start == START
    assert second.batches == {c, b_id}
    assert second.window.start <= c_start
    assert second.window.end > b_start + timedelta(milliseconds=2)
    assert stored(home) == (9, 3)


def test_stop_during_a_pass_interrupts_it_within_a_bound_and_loses_nothing(
    home: Path, tokened: Tokened, gate: Gate, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    gate.forever = True
    caplog.set_level(logging.INFO, logger="hemostat.server.live")
    monkeypatch.setattr(live_thread, "STOP_GRACE", 0.2)
    took: list[float] = []
    real_stop = Collector.stop

    def stop(self: Collector) -> None:
        started = time.monotonic()
        real_stop(self)
        took.append(time.monotonic() - started)

    monkeypatch.setattr(Collector, "stop", stop)
    with running(home, **FAST) as client:
        _post(client, tokened, 1)
        assert gate.entered[0].wait(WAIT)  # pass 1 is in its endless query
        for seq in range(2, 6):  # acknowledged during the pass
            _post(client, tokened, seq, START + timedelta(minutes=seq))
        thread = _collector(client).live
        assert thread is not None and thread.alive
    assert len(took) == 1 and took[0] < 0.2 + live_thread.INTERRUPT_SECONDS
    assert not thread.alive and len(gate.seen) == 1  # no pass after the stop
    assert stored(home) == (15, 5) and journal(home) == []
    with Store(home, read_only=True) as store:  # the interrupted pass is not recorded
        assert store.con.execute("SELECT count(*) FROM detections").fetchall() == [(0,)]
    assert "stopped with the collector" in caplog.text


def test_a_pass_running_at_stop_may_finish_within_the_grace(
    home: Path, tokened: Tokened, gate: Gate, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    gate.opened = [threading.Event()]
    real_stopping = LiveThread.stopping

    def stopping(self: LiveThread) -> None:
        real_stopping(self)
        gate.opened[0].set()  # the pass ends once the collector is stopping

    monkeypatch.setattr(LiveThread, "stopping", stopping)
    with running(home, **FAST) as client:
        _post(client, tokened, 1)
        assert gate.entered[0].wait(WAIT)
        _post(client, tokened, 2)
    assert len(gate.seen) == 1 and stored(home) == (6, 2)
    with Store(home, read_only=True) as store:
        assert store.con.execute("SELECT count(*) FROM detections").fetchall() == [(1,)]
    assert "interrupting" not in caplog.text


def test_health_reports_the_live_thread(
    home: Path, tokened: Tokened, monkeypatch: pytest.MonkeyPatch
) -> None:
    with running(home, **FAST) as client:
        assert client.get("/healthz").json()["detection"] == "ok"
    broken: list[BaseException] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: broken.append(args.exc_value))

    def due_in(self: Live) -> float:
        raise RuntimeError("a bug in the live loop")

    monkeypatch.setattr(Live, "due_in", due_in)
    with running(home, **FAST) as client:
        thread = _collector(client).live
        assert thread is not None
        _until(lambda: not thread.alive)
        health = client.get("/healthz")
        assert health.status_code == 503
        assert health.json()["status"] == "error" and health.json()["detection"] == "stopped"
        assert _post(client, tokened, 1)  # ingest goes on
    assert [str(e) for e in broken] == ["a bug in the live loop"]
    assert stored(home) == (3, 1)

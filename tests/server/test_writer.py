"""The writer: journalled batches replayed at start (never twice), a batch the store refuses
set aside without losing the others of its group."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from hemostat import config
from hemostat.server.app import create_app
from hemostat.server.batch import Limits, decode
from hemostat.server.journal import Journal, Meta
from hemostat.server.metrics import Metrics
from hemostat.server.writer import Entry, Writer
from hemostat.store import Store
from tests.server.conftest import TestClient, Tokened, batch, gz, headers, journal, stored

LIMITS = Limits(8 << 20, 64 << 20, 100_000)


def _journalled(home: Path, tokened: Tokened, seq: int, flows: int) -> str:
    body = batch(tokened.agent.id, seq, flows=flows)
    meta = Meta(body["batch"], tokened.agent.id, "dpi-db-01", "10.0.0.5", datetime.now(UTC),
                "gzip")  # fmt: skip
    Journal(home).write(meta, gz(body))
    return str(body["batch"])


def test_a_restart_stores_the_journal_once(home: Path, tokened: Tokened) -> None:
    settings = config.load(home, environ={"HEMOSTAT_SERVER__DETECT_INTERVAL": "0"})
    with TestClient(create_app(home, settings)) as client:
        first = client.post("/api/v1/ingest", content=gz(batch(tokened.agent.id, 1, flows=4)),
                            headers=headers(tokened.agent_text))  # fmt: skip
        assert first.status_code == 200
    # a crash after the commit of batch 1 but before its journal file went; then two
    # batches acknowledged but not stored; and half a write
    _journalled(home, tokened, 1, flows=4)
    waiting = [_journalled(home, tokened, seq, flows=3) for seq in (2, 3)]
    (home / "journal" / "partial.tmp").write_bytes(b"{")
    with TestClient(create_app(home, settings)) as client:
        assert client.get("/healthz").json()["journal_batches"] in (0, 1, 2)
        resent = client.post("/api/v1/ingest", content=gz(batch(tokened.agent.id, 2, flows=3)),
                             headers=headers(tokened.agent_text))  # fmt: skip
        assert resent.json()["duplicate"] is True  # waiting in the journal counts as received
        deadline = time.monotonic() + 30
        while client.get("/healthz").json()["journal_batches"] and time.monotonic() < deadline:
            time.sleep(0.02)
    assert stored(home) == (4 + 3 + 3, 3)
    assert journal(home) == []
    with Store(home, read_only=True) as store:
        ids = {r[0] for r in store.con.execute("SELECT id FROM batches").fetchall()}
    assert ids == {f"{tokened.agent.id}-000000000001", *waiting}


def test_a_batch_the_store_refuses_is_set_aside(
    home: Path, tokened: Tokened, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(home)
    real_append = store.append

    def append(table: Any, data: Any, ingest_id: int | None = None) -> int:
        if any(c.endswith("000000000002/0") for c in data.column("conn_id").to_pylist()):
            raise duckdb.ConversionException("simulated")
        return real_append(table, data, ingest_id)

    monkeypatch.setattr(store, "append", append)
    told: list[str] = []
    writer = Writer(store, Journal(home), LIMITS, Metrics(), told.extend)
    for seq in (1, 2, 3):
        ident = _journalled(home, tokened, seq, flows=2)
        meta, body = Journal(home).read(ident)
        writer.put(Entry(meta, decode(body, "gzip", tokened.agent.id, "dpi-db-01", LIMITS), 2))
    writer.start()
    writer.stop(30)
    flows = store.con.execute("SELECT count(*) FROM flows").fetchall()[0][0]
    batches = store.con.execute("SELECT count(*) FROM batches").fetchall()[0][0]
    store.close()
    assert (flows, batches) == (4, 2)
    assert sorted(p.name for p in (home / "journal" / "failed").iterdir()) == [
        f"{tokened.agent.id}-000000000002.batch"
    ]
    assert sorted(told) == sorted(f"{tokened.agent.id}-00000000000{s}" for s in (1, 2, 3))
    assert writer.metrics.batches == {"stored": 2, "failed": 1}
    assert writer.queued_rows == 0 and writer.error is None


def test_written_marks_count_batches_in_queue_order(
    home: Path, tokened: Tokened, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, held = Store(home), threading.Event()
    real_append = store.append

    def append(table: Any, data: Any, ingest_id: int | None = None) -> int:
        if any(c.endswith("000000000002/0") for c in data.column("conn_id").to_pylist()):
            assert held.wait(60)
        return real_append(table, data, ingest_id)

    monkeypatch.setattr(store, "append", append)
    writer = Writer(store, Journal(home), LIMITS, Metrics(), lambda ids: None, group_rows=2)
    writer.start()
    for seq in (1, 2, 3):  # one batch a group
        meta, body = Journal(home).read(_journalled(home, tokened, seq, flows=2))
        writer.put(Entry(meta, decode(body, "gzip", tokened.agent.id, "dpi-db-01", LIMITS), 2))
    assert writer.acknowledged == 3
    assert writer.wait_written(1, 60)  # batch 1 is stored
    assert not writer.wait_written(2, 0.05)  # batch 2 is held, and 3 waits behind it
    held.set()
    assert writer.wait_written(3, 60)
    writer.stop(30)
    assert store.con.execute("SELECT count(*) FROM flows").fetchall() == [(6,)]
    store.close()

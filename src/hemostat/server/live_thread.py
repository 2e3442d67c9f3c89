"""The live detection thread: ``Live.tick`` beside the writer, on a DuckDB cursor of its own.

DuckDB runs transactions of one process side by side. The writer appends ``flows``, ``dns``
and ``access`` rows (deleting Zeek snapshots of closed connections) and writes ``batches``
and ``agents``; a pass reads a snapshot of the telemetry and writes ``findings``,
``incidents``, the rollups (``pairs``, ``egress_*``), ``detections`` and, mirroring the audit
log, ``actions``. No table is written by both, so their commits never conflict; the writer's
hourly pruning deletes only old ``batches`` ids, which no pass reads.

Before a pass the thread waits until the writer has written every batch acknowledged so far,
so that the pass sees all of them. The next pass is due ``detect_interval`` seconds after the
previous one ended. Once ``stopping`` is called no pass starts; ``stop`` gives a running pass
``grace`` seconds to end, then halts it at its next detector and interrupts its queries (the
pass is not recorded: its window is examined again at the next start).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time

import duckdb

from hemostat.server.live import Live
from hemostat.server.writer import Writer
from hemostat.store import Store

log = logging.getLogger(__name__)
#: seconds a running pass may go on once the collector stops, before it is interrupted
STOP_GRACE = 10.0
#: seconds ``stop`` then keeps interrupting it before giving up on the thread
INTERRUPT_SECONDS = 5.0
#: how often the wait for the writer looks whether the collector is stopping
POLL_SECONDS = 0.2


class LiveThread:
    def __init__(self, live: Live, writer: Writer, store: Store) -> None:
        self.live = live
        self.writer = writer
        self.store = store
        self._cond = threading.Condition()
        self._stopping = False
        self._con: duckdb.DuckDBPyConnection | None = None  # the cursor, while open
        self._thread = threading.Thread(target=self._run, name="hemostat-live", daemon=True)
        self.error: BaseException | None = None

    def start(self) -> None:
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def stopping(self) -> None:
        """No pass starts from now on; a running one goes on (``stop`` bounds it)."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()

    def stop(self, grace: float | None = None) -> None:
        """End the thread: a running pass gets ``grace`` seconds (``STOP_GRACE``), then is
        interrupted."""
        self.stopping()
        self._thread.join(STOP_GRACE if grace is None else grace)
        if not self._thread.is_alive():
            return
        log.warning("interrupting the running live detection pass: the collector is stopping")
        self.live.halt()
        deadline = time.monotonic() + INTERRUPT_SECONDS
        while self._thread.is_alive() and time.monotonic() < deadline:
            con = self._con
            if con is not None:
                with contextlib.suppress(duckdb.Error):  # closed meanwhile: the pass ended
                    con.interrupt()
            self._thread.join(0.05)
        if self._thread.is_alive():
            log.error("the live detection thread did not end %.0f s after it was interrupted",
                      INTERRUPT_SECONDS)  # fmt: skip

    # ---- the thread -----------------------------------------------------------------------

    def _run(self) -> None:
        try:
            with self.store.reading() as view:  # a cursor of its own, written through too
                view.con.execute("SET enable_progress_bar = false")
                self._con = view.con
                try:
                    while self._wait_due() and self._wait_written():
                        self._tick(view)
                finally:
                    self._con = None
        except BaseException as exc:  # recorded for /healthz
            self.error = exc
            log.critical("live detection stopped: %s", exc, exc_info=exc)
            raise

    def _tick(self, view: Store) -> None:
        try:
            self.live.tick(view)
        except Exception:  # a bug in a pass must not end live detection
            log.exception("live detection pass failed")

    def _wait_due(self) -> bool:
        """Wait until the next pass is due; False once stopping."""
        with self._cond:
            self._cond.wait_for(lambda: self._stopping, self.live.due_in())
            return not self._stopping

    def _wait_written(self) -> bool:
        """Wait until every batch acknowledged until now is written; False once stopping."""
        mark = self.writer.acknowledged
        while not self.writer.wait_written(mark, POLL_SECONDS):
            if self._is_stopping():
                return False
        return not self._is_stopping()

    def _is_stopping(self) -> bool:
        with self._cond:
            return self._stopping

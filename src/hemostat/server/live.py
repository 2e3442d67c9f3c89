"""The live loop: every ``server.detect_interval`` seconds, when rows arrived, one detection
pass over the new window (``detect.runner.pending`` + ``examine``), then the automatic
response and the alerter.

Passes run in a thread of their own beside the writer (``server/live_thread.py``), on a
DuckDB cursor of their own; the writer calls ``note`` (under a lock) as it commits rows. The
window starts where the last pass stopped, or earlier when late rows arrived (an agent
emptying its spool after an outage), so that they are examined too; rows noted while a pass
runs count for the next one, and a pass that fails gives its rows back.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from hemostat.config import Settings
from hemostat.detect import Window
from hemostat.errors import HemostatError
from hemostat.inventory import Inventory
from hemostat.schema import Incident
from hemostat.server.metrics import Metrics
from hemostat.store import Store

if TYPE_CHECKING:
    from hemostat.server.respond import Responder

log = logging.getLogger(__name__)


class Halted(Exception):
    """Raised between two detectors of a pass once ``Live.halt`` was called."""


class Live:
    def __init__(
        self, settings: Settings, home: Path, inventory: Callable[[], Inventory], metrics: Metrics,
        responder: Responder | None = None,
    ) -> None:  # fmt: skip
        self.settings = settings
        self.responder = responder  # automatic response, and the audit log's mirror
        self.home = home
        self.inventory = inventory
        self.metrics = metrics
        self.interval = float(settings.get("server", "detect_interval"))
        self._lock = threading.Lock()  # the writer notes, the pass takes
        self._rows = 0
        self._first: datetime | None = None  # earliest row time since the last pass
        self._next = time.monotonic() + self.interval
        self._halted = threading.Event()
        self._alerter: Any = None  # None: not made yet; False: alerting unavailable

    @property
    def enabled(self) -> bool:
        return self.interval > 0

    def note(self, rows: int, first_ts: datetime | None) -> None:
        """Rows just committed (and the earliest of their times)."""
        with self._lock:
            self._rows += rows
            if first_ts is not None and (self._first is None or first_ts < self._first):
                self._first = first_ts

    def _take(self) -> tuple[int, datetime | None]:
        """The rows noted so far and their earliest time, forgotten here (the pass has them)."""
        with self._lock:
            taken = self._rows, self._first
            self._rows, self._first = 0, None
        return taken

    def halt(self) -> None:
        """The collector is stopping: no pass starts, a running one ends at its next step."""
        self._halted.set()

    @property
    def halted(self) -> bool:
        return self._halted.is_set()

    def _go_on(self, detector: str) -> None:
        """Called by the runner after each detector: ends a halted pass there."""
        if self.halted:
            raise Halted(f"halted after detector {detector}")

    def due_in(self) -> float | None:
        """Seconds until the next pass is due; None when live detection is off."""
        return max(self._next - time.monotonic(), 0.0) if self.enabled else None

    def due(self) -> bool:
        """Whether a pass is due (the interval runs from the end of the previous pass)."""
        return self.enabled and not self.halted and time.monotonic() >= self._next

    def tick(self, store: Store) -> list[Incident] | None:
        """Run a pass if one is due and rows arrived; the incidents, or None if no pass ran.
        ``store`` is the live thread's (its own cursor)."""
        if not self.due():
            return None
        try:
            return self._pass(store)
        finally:
            self._mirror(store)
            self._next = time.monotonic() + self.interval

    def _pass(self, store: Store) -> list[Incident] | None:
        from hemostat.detect.runner import examine, pending

        rows, first = self._take()
        if not rows:
            return None
        window = self._window(store, pending, first)
        if window is None:
            return None
        try:
            done = examine(store, self.inventory(), self.settings, window, progress=self._go_on)
        except (Halted, HemostatError, duckdb.Error) as exc:
            self.note(rows, first)  # examined again by the next pass
            if self.halted:
                log.info("live detection pass stopped with the collector (its window is "
                         "examined again at the next start): %s", exc)  # fmt: skip
            else:
                log.error("live detection pass failed (retried at the next interval): %s", exc)
            return None
        except BaseException:
            self.note(rows, first)
            raise
        self.metrics.detected(done.seconds)
        for failed in done.run.errors:
            log.warning("detector %s failed: %s", failed.detector, failed.error)
        log.info("detection pass %s - %s: %d finding(s), %d new, %d incident(s), %.1f s",
                 window.start.isoformat(), window.end.isoformat(), len(done.run.findings),
                 done.new, len(done.incidents), done.seconds)  # fmt: skip
        self._respond(done.incidents)  # before the alerts: a cut must not wait for a sink
        self._alert(done.incidents)
        return done.incidents

    def _window(
        self, store: Store, pending: Callable[..., Window | None], first: datetime | None
    ) -> Window | None:
        window: Window | None = pending(store, None, None)
        if first is not None and (window is None or first < window.start):
            window = pending(store, first, None)
        return window

    def _respond(self, incidents: Sequence[Incident]) -> None:
        if self.responder is None or not self.responder.auto.enabled:
            return
        try:
            self.responder.auto.respond(incidents, datetime.now(UTC))
        except Exception:  # a bug in the response must not stop live detection
            log.exception("automatic response failed")

    def _mirror(self, store: Store) -> None:
        if self.responder is None:
            return
        try:
            self.responder.sync(store)
        except Exception:
            if not self.halted:  # else interrupted; the collector mirrors again at its stop
                log.exception("mirroring the audit log into the store failed")

    def _alert(self, incidents: Sequence[Incident]) -> None:
        alerter = self._get_alerter()
        if not alerter:
            return
        try:
            sent = alerter.notify(incidents, datetime.now(UTC))
        except Exception:  # a bug in alerting must not stop live detection
            log.exception("alerting failed")
            return
        for s in sent:
            self.metrics.alerted(str(s.sink), bool(s.ok))

    def _get_alerter(self) -> Any:
        if self._alerter is None:
            try:
                from hemostat.alerting import Alerter
            except ImportError as exc:
                log.warning("alerting is not available (%s): incidents are not alerted", exc)
                self._alerter = False
                return False
            try:
                self._alerter = Alerter.from_settings(self.settings, self.home)
            except HemostatError as exc:
                log.error("alerting is not configured correctly: %s", exc)
                self._alerter = False
        return self._alerter

"""The writer: the one thread that owns the store's DuckDB connection.

It takes acknowledged batches in arrival order, several at a time (up to
``server.group_rows`` rows), and appends them in one transaction together with their ids in
``batches`` and their agents' ``last_seen``; then it deletes their journal files. A batch
the store refuses is retried alone, then set aside in ``journal/failed/``. ``stop`` lets it
drain what is queued first.

Live detection runs in a thread of its own (``server/live_thread.py``): the writer tells it
the rows it committed (``Live.note``) and how many of the batches queued so far are written
(``acknowledged`` and ``wait_written``: a pass waits for those acknowledged before it starts).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import duckdb
import pyarrow as pa

from hemostat.errors import HemostatError
from hemostat.schema import Table, arrow_schema
from hemostat.server.batch import Batch, Limits, decode
from hemostat.server.journal import Journal, Meta
from hemostat.server.live import Live
from hemostat.server.metrics import Metrics
from hemostat.store import Store

log = logging.getLogger(__name__)
PRUNE_SECONDS = 3600.0


@dataclass(frozen=True, slots=True)
class Entry:
    """One acknowledged batch; ``batch`` is None when it is to be read back from the journal."""

    meta: Meta
    batch: Batch | None
    rows: int


class Writer:
    def __init__(
        self, store: Store, journal: Journal, limits: Limits, metrics: Metrics,
        stored: Callable[[list[str]], None], live: Live | None = None,
        group_rows: int = 200_000, batch_days: int = 14,
    ) -> None:  # fmt: skip
        self.store = store
        self.journal = journal
        self.limits = limits
        self.metrics = metrics
        self.stored = stored  # told the ids now in the store
        self.live = live
        self.group_rows = group_rows
        self.batch_days = batch_days
        self._queue: deque[Entry] = deque()
        self._cond = threading.Condition()
        self._rows = 0  # rows queued or being written
        self._busy_since: datetime | None = None  # oldest receipt of the group being written
        self._acknowledged = 0  # batches queued so far
        self._written = 0  # of those, written (stored or set aside), in queue order
        self._progress = threading.Condition()  # notified when _written grows
        self._stopping = False
        self._pruned = 0.0
        self._thread = threading.Thread(target=self._run, name="hemostat-writer", daemon=True)
        self.error: BaseException | None = None

    # ---- the request side ---------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def put(self, entry: Entry) -> None:
        with self._cond:
            self._queue.append(entry)
            self._rows += entry.rows
            self._acknowledged += 1
            self._cond.notify()

    @property
    def acknowledged(self) -> int:
        """How many batches were queued so far: a mark for ``wait_written``."""
        with self._cond:
            return self._acknowledged

    def wait_written(self, mark: int, timeout: float) -> bool:
        """Whether the first ``mark`` batches queued are written (stored, or set aside),
        after waiting up to ``timeout`` seconds for it."""
        with self._progress:
            return self._progress.wait_for(lambda: self._written >= mark, timeout)

    @property
    def queued_rows(self) -> int:
        return self._rows

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def lag(self, now: datetime | None = None) -> float:
        """Seconds the oldest acknowledged batch not yet stored has been waiting."""
        with self._cond:
            oldest = [self._queue[0].meta.received] if self._queue else []
            if self._busy_since is not None:
                oldest.append(self._busy_since)
        if not oldest:
            return 0.0
        return max(((now or datetime.now(UTC)) - min(oldest)).total_seconds(), 0.0)

    def stop(self, timeout: float | None = None) -> None:
        """Write what is queued, then end the thread."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        self._thread.join(timeout)

    # ---- the thread ---------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while True:
                group = self._take()
                if group is None:
                    return
                if group:
                    self._write(group)
                self._prune()
        except BaseException as exc:  # recorded for /healthz; the journal keeps the batches
            self.error = exc
            log.critical("the writer stopped: %s", exc, exc_info=exc)
            raise

    def _take(self) -> list[Entry] | None:
        """The next group, [] when nothing came for a while (time to prune), None once
        stopped and empty."""
        with self._cond:
            if not self._queue and not self._stopping:
                self._cond.wait(PRUNE_SECONDS)
            if not self._queue:
                return None if self._stopping else []
            group: list[Entry] = []
            rows = 0
            while self._queue and (not group or rows + self._queue[0].rows <= self.group_rows):
                entry = self._queue.popleft()
                group.append(entry)
                rows += entry.rows
            self._busy_since = min(e.meta.received for e in group)
            return group

    def _write(self, group: list[Entry]) -> None:
        try:
            self._write_group(group)
        finally:
            with self._cond:
                self._busy_since = None
        with self._progress:
            self._written += len(group)
            self._progress.notify_all()

    def _write_group(self, group: list[Entry]) -> None:
        loaded = [(e, b) for e in group if (b := self._load(e)) is not None]
        if not loaded:
            return
        try:
            added = self._commit(loaded)
        except (HemostatError, duckdb.Error, pa.ArrowException) as exc:
            if len(loaded) > 1:  # find the one batch the store refuses
                log.warning("a group of %d batches failed (%s); writing them one by one",
                            len(loaded), exc)  # fmt: skip
                for entry, batch in loaded:
                    self._write_alone(entry, batch)
            elif loaded:
                self._set_aside(loaded[0][0], exc)
            return
        self._done([e for e, _ in loaded], added, [b for _, b in loaded])

    def _write_alone(self, entry: Entry, batch: Batch) -> None:
        try:
            added = self._commit([(entry, batch)])
        except (HemostatError, duckdb.Error, pa.ArrowException) as exc:
            self._set_aside(entry, exc)
            return
        self._done([entry], added, [batch])

    def _load(self, entry: Entry) -> Batch | None:
        if entry.batch is not None:
            return entry.batch
        try:
            meta, body = self.journal.read(entry.meta.batch)
            return decode(body, meta.encoding, meta.agent, meta.name, self.limits)
        except (HemostatError, OSError, ValueError) as exc:
            self._set_aside(entry, exc)
            return None

    def _commit(self, loaded: list[tuple[Entry, Batch]]) -> Counter[str]:
        added: Counter[str] = Counter()
        canonical: dict[Table, list[pa.Table]] = defaultdict(list)
        with self.store.transaction() as con:
            for _, batch in loaded:
                for table, part in batch.parts:
                    if part.schema.equals(arrow_schema(table)):
                        canonical[table].append(part)
                    else:  # what a raw chunk's reader gave
                        added[str(table)] += self.store.append(table, part)
            for table, parts in canonical.items():
                added[str(table)] += self.store.append(table, pa.concat_tables(parts))
            values = ", ".join(["(?, ?, ?, ?)"] * len(loaded))  # one statement: one GIL trip
            con.execute(
                f"INSERT INTO batches (id, agent, received, rows) VALUES {values}",
                [
                    v
                    for e, b in loaded
                    for v in (e.meta.batch, e.meta.agent, e.meta.received, b.rows)
                ],
            )
            self._agents(con, [e.meta for e, _ in loaded])
        return added

    def _agents(self, con: duckdb.DuckDBPyConnection, metas: list[Meta]) -> None:
        latest = {m.agent: m for m in sorted(metas, key=lambda m: m.received)}
        for m in latest.values():
            con.execute(
                "INSERT INTO agents (id, name, ip, role, last_seen) VALUES (?, ?, ?, 'agent', ?) "
                "ON CONFLICT (id) DO UPDATE SET name = excluded.name, "
                "ip = coalesce(excluded.ip, agents.ip), last_seen = excluded.last_seen",
                [m.agent, m.name, m.ip, m.received],
            )

    def _done(self, entries: list[Entry], added: Counter[str], batches: list[Batch]) -> None:
        ids = [e.meta.batch for e in entries]
        self.journal.remove(ids)
        self.stored(ids)
        with self._cond:
            self._rows -= sum(e.rows for e in entries)
        self.metrics.stored(added)
        for _ in entries:
            self.metrics.batch("stored")
        if self.live is not None:
            firsts = [t for b in batches if (t := b.first_ts) is not None]
            self.live.note(sum(added.values()), min(firsts, default=None))

    def _set_aside(self, entry: Entry, exc: BaseException) -> None:
        try:
            where = self.journal.set_aside(entry.meta.batch)
        except OSError as move:
            where = None
            log.error("cannot set batch %s aside: %s", entry.meta.batch, move)
        log.error("batch %s from agent %s cannot be stored (%s); kept in %s", entry.meta.batch,
                  entry.meta.agent, exc, where)  # fmt: skip
        self.stored([entry.meta.batch])
        with self._cond:
            self._rows -= entry.rows
        self.metrics.batch("failed")

    def _prune(self) -> None:
        """Forget the ids of batches older than ``batch_days`` (no agent resends them). Only
        ``batches``: a detection pass running meanwhile does not read it."""
        if time.monotonic() - self._pruned < PRUNE_SECONDS or self._stopping:
            return
        self._pruned = time.monotonic()
        cutoff = datetime.now(UTC) - timedelta(days=self.batch_days)
        self.store.con.execute("DELETE FROM batches WHERE received < ?", [cutoff])

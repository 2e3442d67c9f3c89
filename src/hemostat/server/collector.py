"""The collector's parts wired together: what the HTTP API calls.

``accept`` is the durability contract: a batch is decoded and checked, recognised if it was
received before (stored, or journalled and waiting), else journalled (fsync) and queued for
the writer; only then does the caller answer 200. ``start`` replays the journal: batches
acknowledged by a previous run but not stored are queued first.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import duckdb

from hemostat import inventory as inventory_mod
from hemostat.config import Settings
from hemostat.errors import ConfigError
from hemostat.server import Refused
from hemostat.server.auth import Token, Tokens
from hemostat.server.batch import Batch, Limits, decode
from hemostat.server.commands import Queue
from hemostat.server.journal import Journal, Meta
from hemostat.server.live import Live
from hemostat.server.live_thread import LiveThread
from hemostat.server.metrics import Metrics, Seen
from hemostat.server.respond import Responder
from hemostat.server.throttle import Throttle
from hemostat.server.writer import Entry, Writer
from hemostat.store import Store

log = logging.getLogger(__name__)
INVENTORY = "inventory.yaml"
RESOLVER_ROLES = frozenset({"dns", "resolver"})


@dataclass(frozen=True, slots=True)
class Accepted:
    batch: Batch
    duplicate: bool

    def body(self) -> dict[str, Any]:
        return {"batch": self.batch.id, "duplicate": self.duplicate, "rows": self.batch.counts}


class Collector:
    def __init__(self, home: Path, settings: Settings) -> None:
        self.home = Path(home)
        self.settings = settings
        get = settings.get
        self.limits = Limits(int(get("server", "max_body_bytes")),
                             int(get("server", "max_decompressed_bytes")),
                             int(get("server", "max_rows")))  # fmt: skip
        self.queue_rows = int(get("server", "queue_rows"))
        self.tokens = Tokens(self.home)
        self.metrics = Metrics()
        self.throttle = Throttle(float(get("server", "rate")), int(get("server", "burst")))
        self.commands = Queue(self.home)
        self.responder = Responder(self.home, settings, self.commands, self.tokens,
                                   self.inventory, lambda: self.metrics.agents)  # fmt: skip
        self.journal = Journal(self.home)
        self._lock = threading.Lock()
        self._pending: set[str] = set()  # journalled, not yet stored
        self._inventory: tuple[tuple[int, int, int], inventory_mod.Inventory] | None = None
        self.store: Store | None = None
        self._lookup: duckdb.DuckDBPyConnection | None = None
        self.writer: Writer | None = None
        self.live: LiveThread | None = None  # None when live detection is off

    # ---- life -----------------------------------------------------------------------------

    def start(self) -> None:
        self.store = Store(self.home)
        self._lookup = self.store.con.cursor()
        self.responder.start(self.store)
        live = Live(self.settings, self.home, self.inventory, self.metrics, self.responder)
        self.writer = Writer(
            self.store, self.journal, self.limits, self.metrics, self._stored, live,
            int(self.settings.get("server", "group_rows")),
            int(self.settings.get("server", "batch_days")),
        )  # fmt: skip
        self.live = LiveThread(live, self.writer, self.store) if live.enabled else None
        replayed = self._replay(self.writer)
        self.writer.start()
        if self.live is not None:
            self.live.start()
        if replayed:
            log.info("replaying %d journalled batch(es) not yet stored", replayed)

    def stop(self) -> None:
        """No detection pass starts any more; the writer drains its queue while a running
        pass ends (or, past ``live_thread.STOP_GRACE``, is interrupted); the store closes."""
        if self.live is not None:
            self.live.stopping()
        if self.writer is not None:
            self.writer.stop()
        if self.live is not None:
            self.live.stop()
        if self.store is not None:
            self.responder.stop(self.store)
        if self._lookup is not None:
            self._lookup.close()
        if self.store is not None:
            self.store.close()

    def _replay(self, writer: Writer) -> int:
        count = 0
        for batch in self.journal.pending():
            if self._known(batch):
                self.journal.remove([batch])  # stored; the crash came before the deletion
                continue
            try:
                meta, _ = self.journal.read(batch)
            except (OSError, ValueError, KeyError) as exc:
                log.error("journal file of batch %s is unreadable (%s); set aside", batch, exc)
                self.journal.set_aside(batch)
                continue
            self._pending.add(batch)
            writer.put(Entry(meta, None, 0))
            count += 1
        return count

    # ---- ingest ---------------------------------------------------------------------------

    def accept(self, token: Token, body: bytes, encoding: str | None, ip: str | None) -> Accepted:
        """Decode, check and make durable one batch (run in a worker thread)."""
        writer = self.writer
        if writer is None or not writer.alive:
            raise Refused(
                503, "the collector's writer is not running", headers={"Retry-After": "30"}
            )
        batch = decode(body, encoding, token.id, token.name, self.limits)
        if not self._reserve(batch.id):
            return Accepted(batch, duplicate=True)
        received = datetime.now(UTC)
        meta = Meta(batch.id, token.id, token.name, ip, received, encoding)
        try:
            if writer.queued_rows and writer.queued_rows + batch.rows > self.queue_rows:
                waiting = f"{writer.queued_rows} rows are waiting for the store"
                raise Refused(503, f"{waiting}; send this batch again later",
                              headers={"Retry-After": "5"})  # fmt: skip
            self.journal.write(meta, body)
        except OSError as exc:
            self._stored([batch.id])
            log.error("cannot journal batch %s: %s", batch.id, exc)
            raise Refused(503, f"cannot write the journal: {exc.strerror}",
                          headers={"Retry-After": "30"}) from exc  # fmt: skip
        except BaseException:
            self._stored([batch.id])
            raise
        writer.put(Entry(meta, batch, batch.rows))
        self._seen(token, ip, received, batch)
        return Accepted(batch, duplicate=False)

    def _reserve(self, batch: str) -> bool:
        """Claim a batch id; False when it is already journalled or stored. The journal is
        looked at first: the writer forgets an id there only after its commit."""
        with self._lock:
            if batch in self._pending or self._known(batch):
                return False
            self._pending.add(batch)
            return True

    def _known(self, batch: str) -> bool:
        """Whether the store holds this batch (on the lookup cursor, beside the writer's)."""
        if self._lookup is None:
            raise Refused(503, "the collector is not started", headers={"Retry-After": "30"})
        return bool(self._lookup.execute("SELECT 1 FROM batches WHERE id = ?", [batch]).fetchall())

    def _stored(self, batches: list[str]) -> None:
        with self._lock:
            self._pending.difference_update(batches)

    def _seen(self, token: Token, ip: str | None, received: datetime, batch: Batch) -> None:
        oldest = min(t for t in (batch.created, batch.stats.oldest_unsent) if t is not None)
        lag = max((received - oldest).total_seconds(), 0.0)
        self.metrics.seen(token.id, Seen(token.name, ip, received, lag, batch.stats.spool_bytes))

    # ---- health and configuration ----------------------------------------------------------

    @property
    def journal_batches(self) -> int:
        with self._lock:
            return len(self._pending)

    def health(self) -> dict[str, Any]:
        writer, live = self.writer, self.live
        detection = "off" if live is None else "ok" if live.alive else "stopped"
        ok = writer is not None and writer.alive and detection != "stopped"
        return {"status": "ok" if ok else "error",
                "writer_lag_seconds": round(writer.lag(), 3) if writer else 0.0,
                "journal_batches": self.journal_batches, "detection": detection}  # fmt: skip

    def inventory(self) -> inventory_mod.Inventory:
        """The site inventory (``HOME/inventory.yaml``), re-read when it changes: another
        modification time, size or file (an edit within one tick of the clock, or a file
        replaced by ``hemostat inventory load``)."""
        path = self.home / INVENTORY
        try:
            st = path.stat()
        except FileNotFoundError:
            return inventory_mod.Inventory(site="default")
        version = (st.st_mtime_ns, st.st_size, st.st_ino)
        if self._inventory is None or self._inventory[0] != version:
            try:
                self._inventory = (version, inventory_mod.load(path))
            except ConfigError as exc:
                log.error("%s; keeping the inventory loaded before", exc)
                return self._inventory[1] if self._inventory else inventory_mod.Inventory(
                    site="default")  # fmt: skip
        return self._inventory[1]

    def agent_config(self, token: Token) -> dict[str, Any]:
        """Contract §4: what this agent watches, and what containment must keep open."""
        site = self.inventory()
        seen = self.metrics.agents.get(token.id)
        ip = token.ip or (seen.ip if seen else None)
        keys = {token.name, *(h.name for h in site.hosts if ip and h.ip == ip)}
        if ip:
            keys.add(ip)
        watch = sorted({urlparse(obj).path for ds in site.datastores if ds.host in keys
                        for obj in ds.objects if obj.startswith("file://")})  # fmt: skip
        return {
            "agent": token.id, "name": token.name,
            "interval": float(self.settings.get("server", "agent_interval")),
            "watch": [w for w in watch if w],
            "management": list(site.management),
            "resolvers": [h.ip for h in site.hosts if (h.role or "").lower() in RESOLVER_ROLES],
            "continuity": [rule.model_dump() for rule in site.continuity],
        }  # fmt: skip

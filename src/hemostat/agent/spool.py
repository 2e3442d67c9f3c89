"""The agent's spool: batches on disk until the collector acknowledges them.

Layout under the spool directory::

    batches/<agent>-<seq>.json.gz   one batch each, the exact gzip body that is POSTed
    batches/.<name>.tmp             a batch being written (never read as a batch)
    rejected/<name>.json.gz         batches the collector refused with a 4xx, and beside
    rejected/<name>.error.json      each, why (status, answer), for an operator to look at
    state.json                      {"seq": last sequence number, "dropped": n, "cursor": ...}

A batch is written to its ``.tmp`` file and fsync'ed, then ``state.json`` (the new sequence
number and the caller's ``cursor``, e.g. how far each followed log was read) is replaced
atomically, then the ``.tmp`` file is renamed to its name and the directory fsync'ed. The
state is the commit point: on opening, a ``.tmp`` file whose number is the state's is
published (it was complete before the state named it), any other is removed. So after a kill
at any moment the spool holds whole batches only, the cursor matches exactly the batches that
exist, and a number is never given to two different batches (the collector would take the
second for a duplicate of the first).

Bounded by bytes and by batch count: when a new batch would exceed either bound, the oldest
batches are deleted and counted in ``dropped_batches``. A batch leaves only through
:meth:`Spool.ack` (the collector stored it, or already had it) or :meth:`Spool.reject`.
"""

from __future__ import annotations

import gzip
import os
import re
import threading
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from hemostat import durable
from hemostat.errors import ConfigError
from hemostat.schema import utc_text

SUFFIX = ".json.gz"
_NAME = re.compile(r"(?P<agent>[0-9A-Za-z_.]+)-(?P<seq>\d{12})\.json\.gz")
_TMP = re.compile(r"\.(?P<name>[0-9A-Za-z_.]+-(?P<seq>\d{12})\.json\.gz)\.tmp")


@dataclass(frozen=True, slots=True)
class Entry:
    """One spooled batch."""

    seq: int
    batch: str  # the batch id, "<agent>-<12-digit seq>"
    path: Path
    size: int
    created: float  # epoch seconds (the file's mtime)

    @property
    def agent(self) -> str:
        return self.batch.rsplit("-", 1)[0]


@dataclass(frozen=True, slots=True)
class SpoolStats:
    spool_batches: int
    spool_bytes: int
    dropped_batches: int
    oldest_unsent: str | None  # ISO 8601 UTC

    def as_dict(self) -> dict[str, Any]:
        return {
            "spool_batches": self.spool_batches, "spool_bytes": self.spool_bytes,
            "dropped_batches": self.dropped_batches, "oldest_unsent": self.oldest_unsent,
        }  # fmt: skip


def iso(epoch: float) -> str:
    """``2026-11-23T10:00:00.123456Z``: the wire format of a timestamp."""
    return utc_text(datetime.fromtimestamp(epoch, UTC))


def batch_id(agent: str, seq: int) -> str:
    return f"{agent}-{seq:012d}"


class Spool:
    """Crash-safe, bounded queue of batches (oldest first); safe to share between threads."""

    def __init__(self, root: Path, agent: str, max_bytes: int, max_batches: int) -> None:
        if not re.fullmatch(r"[0-9A-Za-z_.]+", agent):
            raise ConfigError(f"agent id {agent!r}: only letters, digits, '_' and '.'")
        self.root, self.agent = root, agent
        self.max_bytes, self.max_batches = max_bytes, max_batches
        self.batches, self.rejected = root / "batches", root / "rejected"
        self._lock = threading.Lock()
        try:
            for folder in (self.batches, self.rejected):
                folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            state = self._read_state()
            self._entries, self._seq = self._recover(int(state.get("seq", 0)))
        except OSError as exc:
            raise ConfigError(f"{root}: cannot use the spool directory: {exc.strerror}") from exc
        self._dropped = int(state.get("dropped", 0))
        self._cursor: Any = state.get("cursor")
        self._bytes = sum(e.size for e in self._entries)

    # -- writing ---------------------------------------------------------------------------

    def put(self, body: dict[str, Any], cursor: Any = None) -> Entry:
        """Spool ``body`` (its ``agent`` and ``batch`` are set here) and commit ``cursor``
        with it; returns the new entry once it is durable."""
        with self._lock:
            seq = self._seq + 1
            name = batch_id(self.agent, seq)
            data = gzip.compress(
                orjson.dumps({**body, "agent": self.agent, "batch": name}), 6, mtime=0
            )
            self._make_room(len(data))
            tmp = self.batches / f".{name}{SUFFIX}.tmp"
            durable.write_synced(tmp, data)
            self._seq, self._cursor = seq, cursor
            self._write_state()
            final = self.batches / f"{name}{SUFFIX}"
            os.replace(tmp, final)
            durable.sync_dir(self.batches)
            entry = Entry(seq, name, final, len(data), final.stat().st_mtime)
            self._entries.append(entry)
            self._bytes += entry.size
            return entry

    def ack(self, entry: Entry) -> None:
        """The collector has the batch: it leaves the spool (a no-op if already dropped)."""
        with self._lock:
            self._forget(entry)
            entry.path.unlink(missing_ok=True)
            durable.sync_dir(self.batches)

    def reject(self, entry: Entry, status: int, detail: str) -> Path:
        """Set a batch the collector refused aside in ``rejected/`` with why; returns where."""
        with self._lock:
            self._forget(entry)
            target = self.rejected / entry.path.name
            try:
                os.replace(entry.path, target)
            except FileNotFoundError:
                return target  # dropped meanwhile
            note = {"batch": entry.batch, "status": status, "detail": detail[:4000],
                    "at": iso(datetime.now(UTC).timestamp())}  # fmt: skip
            durable.write_synced(self.rejected / f"{entry.batch}.error.json", orjson.dumps(note))
            durable.sync_dir(self.rejected)
            durable.sync_dir(self.batches)
            self._trim_rejected()
            return target

    # -- reading ---------------------------------------------------------------------------

    def oldest(self) -> Entry | None:
        with self._lock:
            return self._entries[0] if self._entries else None

    def pending(self) -> list[Entry]:
        with self._lock:
            return list(self._entries)

    def cursor(self) -> Any:
        """The cursor committed with the last batch put (None before the first)."""
        with self._lock:
            return self._cursor

    def stats(self) -> SpoolStats:
        with self._lock:
            oldest = iso(self._entries[0].created) if self._entries else None
            return SpoolStats(len(self._entries), self._bytes, self._dropped, oldest)

    @staticmethod
    def read(entry: Entry) -> dict[str, Any]:
        """The batch body (for tests and ``agent status``)."""
        body = orjson.loads(gzip.decompress(entry.path.read_bytes()))
        return body if isinstance(body, dict) else {}

    # -- internals -------------------------------------------------------------------------

    def _make_room(self, size: int) -> None:
        while self._entries and (
            len(self._entries) + 1 > self.max_batches or self._bytes + size > self.max_bytes
        ):
            oldest = self._entries.popleft()
            self._bytes -= oldest.size
            oldest.path.unlink(missing_ok=True)
            self._dropped += 1

    def _forget(self, entry: Entry) -> None:
        if entry in self._entries:
            self._entries.remove(entry)
            self._bytes -= entry.size

    def _read_state(self) -> dict[str, Any]:
        path = self.root / "state.json"
        try:
            state = orjson.loads(path.read_bytes())
        except FileNotFoundError:
            return {}
        except orjson.JSONDecodeError as exc:  # replaced atomically: only a disk fault does this
            raise ConfigError(f"{path}: corrupt ({exc}); move it away to start afresh") from exc
        return state if isinstance(state, dict) else {}

    def _write_state(self) -> None:
        state = {"seq": self._seq, "dropped": self._dropped, "cursor": self._cursor}
        durable.replace(self.root / "state.json", orjson.dumps(state))

    def _recover(self, committed: int) -> tuple[deque[Entry], int]:
        """Entries on disk (oldest first) and the last sequence number used; a half-written
        batch is published when the state committed it, removed otherwise."""
        for path in self.batches.iterdir():
            m = _TMP.fullmatch(path.name)
            if m and int(m["seq"]) == committed:
                os.replace(path, self.batches / m["name"])
            elif path.name.endswith(".tmp"):
                path.unlink()
        durable.sync_dir(self.batches)
        entries = sorted(_entries(self.batches), key=lambda e: e.seq)
        used = [e.seq for e in (*entries, *_entries(self.rejected))]
        return deque(entries), max([committed, *used])

    def _trim_rejected(self) -> None:
        kept = sorted(_entries(self.rejected), key=lambda e: e.seq, reverse=True)
        total = 0
        for i, entry in enumerate(kept):
            total += entry.size
            if i >= self.max_batches or total > self.max_bytes:
                entry.path.unlink(missing_ok=True)
                (self.rejected / f"{entry.batch}.error.json").unlink(missing_ok=True)


def _entries(folder: Path) -> list[Entry]:
    found = []
    for path in folder.iterdir():
        m = _NAME.fullmatch(path.name)
        if m:
            st = path.stat()
            name = path.name.removesuffix(SUFFIX)
            found.append(Entry(int(m["seq"]), name, path, st.st_size, st.st_mtime))
    return found

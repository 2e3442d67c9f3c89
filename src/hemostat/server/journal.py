"""The journal: every acknowledged batch, one file each, on disk before the 200 goes out.

``HOME/journal/<batch id>.batch`` holds one JSON line of metadata (agent, name, address,
time received, content encoding) and then the request body exactly as received. A file is
written under a temporary name, fsync'ed, renamed, and the directory fsync'ed: after a
crash a journal file is whole or absent. The writer deletes it once the batch and its id
are committed to the store; at start, the files left are the batches still to store.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import orjson

from hemostat import durable
from hemostat.errors import StoreError

DIR = Path("journal")
SUFFIX = ".batch"


@dataclass(frozen=True, slots=True)
class Meta:
    """Who sent a journalled batch, and how its body is encoded."""

    batch: str
    agent: str
    name: str
    ip: str | None
    received: datetime
    encoding: str | None


class Journal:
    def __init__(self, home: Path) -> None:
        self.dir = Path(home) / DIR
        self.failed = self.dir / "failed"
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the journal {self.dir}: {exc.strerror}") from exc
        for stale in self.dir.glob("*.tmp"):  # a write the last run did not finish
            stale.unlink(missing_ok=True)

    def path(self, batch: str) -> Path:
        return self.dir / f"{batch}{SUFFIX}"

    def write(self, meta: Meta, body: bytes) -> None:
        """Make the batch durable; ``OSError`` when the disk refuses (full, read-only)."""
        head = orjson.dumps({
            "batch": meta.batch, "agent": meta.agent, "name": meta.name, "ip": meta.ip,
            "received": meta.received.isoformat(), "encoding": meta.encoding,
        })  # fmt: skip
        durable.replace(self.path(meta.batch), head + b"\n" + body)

    def read(self, batch: str) -> tuple[Meta, bytes]:
        data = self.path(batch).read_bytes()
        head, _, body = data.partition(b"\n")
        m = orjson.loads(head)
        meta = Meta(m["batch"], m["agent"], m["name"], m.get("ip"),
                    datetime.fromisoformat(m["received"]), m.get("encoding"))  # fmt: skip
        return meta, body

    def pending(self) -> list[str]:
        """Ids of the journalled batches, oldest first."""
        files = [(p.stat().st_mtime_ns, p.name) for p in self.dir.glob(f"*{SUFFIX}")]
        return [name.removesuffix(SUFFIX) for _, name in sorted(files)]

    def remove(self, batches: list[str]) -> None:
        """Forget batches now in the store. No fsync: a file a crash brings back is one the
        next start finds already stored, and deletes."""
        for batch in batches:
            self.path(batch).unlink(missing_ok=True)

    def set_aside(self, batch: str) -> Path:
        """Move a batch the store refused to ``journal/failed/`` for an operator to look at."""
        self.failed.mkdir(exist_ok=True)
        target = self.failed / self.path(batch).name
        os.replace(self.path(batch), target)
        durable.sync_dir(self.dir)
        return target

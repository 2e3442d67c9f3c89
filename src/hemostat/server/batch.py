"""One agent batch (contract §3): the request body decoded, checked and turned into Arrow.

``decode`` is all or nothing: it returns a ``Batch`` ready for the store, or raises
``Refused`` (400 bad gzip/JSON, 403 not this agent's batch, 413 too large, 422 a field);
nothing is journalled or stored before it has returned.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from hemostat.schema import Table
from hemostat.server import Refused, raw, rows

ENVELOPE = frozenset({"agent", "batch", "created", "flows", "dns", "access", "raw", "stats"})
GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True, slots=True)
class Limits:
    body: int  # compressed bytes
    decompressed: int
    rows: int


@dataclass(frozen=True, slots=True)
class Stats:
    """What the agent says about itself (its spool, its footprint)."""

    spool_batches: int = 0
    spool_bytes: int = 0
    dropped_batches: int = 0
    oldest_unsent: datetime | None = None
    cpu_seconds: float = 0.0
    rss_bytes: int = 0
    version: str = ""


@dataclass(frozen=True, slots=True)
class Batch:
    id: str
    agent: str
    created: datetime
    parts: tuple[tuple[Table, pa.Table], ...]  # canonical rows, then what raw chunks gave
    counts: dict[str, int]  # rows per section of the body: flows, dns, access, raw (lines)
    stats: Stats

    @property
    def rows(self) -> int:
        return sum(self.counts.values())

    @property
    def first_ts(self) -> datetime | None:
        """The earliest row time (where the next detection window must start)."""
        found = [pc.min(part.column("ts")).as_py() for _, part in self.parts if part.num_rows]
        return min((t for t in found if t is not None), default=None)


def decode(body: bytes, encoding: str | None, agent: str, name: str, limits: Limits) -> Batch:
    """The batch in ``body`` (gzip or identity), sent with the token of agent ``agent``."""
    doc = _json(_decompress(body, encoding, limits.decompressed))
    if not isinstance(doc, dict):
        raise Refused(422, "the body must be a JSON object", "body")
    for key in doc:
        if key not in ENVELOPE:
            raise Refused(422, f"unknown key (known: {', '.join(sorted(ENVELOPE))})", key)
    if doc.get("agent") != agent:
        raise Refused(403, "agent must be the id of the token the batch is sent with", "agent")
    ident = doc.get("batch")
    if not isinstance(ident, str) or not re.fullmatch(rf"{agent}-\d{{12}}", ident):
        raise Refused(422, f"expected '{agent}-' and a 12-digit sequence number", "batch")
    created = _time(doc.get("created"), "created")
    _count(doc, limits.rows)
    defaults = {"source": "agent", "host": name}
    parts = []
    counts = {}
    for kind in Table:
        part = rows.table(kind, doc.get(str(kind), []), str(kind), defaults)
        counts[str(kind)] = 0 if part is None else part.num_rows
        if part is not None:
            parts.append((kind, part))
    chunks = doc.get("raw", [])
    if not isinstance(chunks, list):
        raise Refused(422, "must be a list of chunks", "raw")
    parsed = [raw.parse(chunk, f"raw[{i}]") for i, chunk in enumerate(chunks)]
    counts["raw"] = sum(p.lines for p in parsed)
    parts += [part for p in parsed for part in p.parts]
    return Batch(ident, agent, created, tuple(parts), counts, _stats(doc.get("stats")))


def _decompress(body: bytes, encoding: str | None, limit: int) -> bytes:
    encoding = (encoding or "identity").strip().lower()
    if encoding not in ("gzip", "identity"):
        raise Refused(415, f"Content-Encoding {encoding!r}: use gzip or identity",
                      "Content-Encoding")  # fmt: skip
    if encoding == "identity" and not body.startswith(GZIP_MAGIC):
        if len(body) > limit:
            raise Refused(413, f"body larger than {limit} bytes", "body")
        return body
    inflate = zlib.decompressobj(wbits=31)
    try:
        out = inflate.decompress(body, limit + 1)
        if len(out) > limit:
            raise Refused(413, f"body larger than {limit} bytes once decompressed", "body")
        if not inflate.eof:
            raise Refused(400, "gzip body is truncated", "body")
    except zlib.error as exc:
        raise Refused(400, f"body is not valid gzip ({exc})", "body") from None
    if inflate.unused_data:
        raise Refused(400, "data after the end of the gzip stream", "body")
    return out


def _json(data: bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise Refused(400, f"body is not valid JSON ({exc})", "body") from None


def _count(doc: dict[str, Any], limit: int) -> None:
    total = 0
    for key in ("flows", "dns", "access"):
        value = doc.get(key, [])
        total += len(value) if isinstance(value, list) else 0
    for chunk in doc.get("raw", []) if isinstance(doc.get("raw"), list) else []:
        lines = chunk.get("lines") if isinstance(chunk, dict) else None
        total += len(lines) if isinstance(lines, list) else 0
    if total > limit:
        raise Refused(413, f"{total} rows in one batch; at most {limit}", "body")


def _time(value: Any, field: str) -> datetime:
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            parsed = None
        if parsed is not None and parsed.tzinfo is not None:
            return parsed
    raise Refused(422, "expected an ISO 8601 time with its zone (2026-11-23T10:00:00Z)", field)


_STAT_TYPES: dict[str, tuple[type, ...]] = {
    "spool_batches": (int,), "spool_bytes": (int,), "dropped_batches": (int,),
    "cpu_seconds": (int, float), "rss_bytes": (int,), "version": (str,),
}  # fmt: skip


def _stats(value: Any) -> Stats:
    """The agent's ``stats``; keys this collector does not know are ignored (newer agents)."""
    if value is None:
        return Stats()
    if not isinstance(value, dict):
        raise Refused(422, "expected an object", "stats")
    known: dict[str, Any] = {}
    for key, types in _STAT_TYPES.items():
        if key in value and value[key] is not None:
            item = value[key]
            if not isinstance(item, types) or isinstance(item, bool):
                raise Refused(422, f"expected {types[-1].__name__}", f"stats.{key}")
            known[key] = item
    if value.get("oldest_unsent") is not None:
        known["oldest_unsent"] = _time(value["oldest_unsent"], "stats.oldest_unsent")
    return Stats(**known)

"""The evidence bundle: a zip of the flows, access events, findings and actions behind every
number of a scope, with a manifest (name, size, SHA-256 and row count of each file) whose own
SHA-256 is printed in the report, and a ``SHA256SUMS`` file for ``sha256sum -c``.

Tables are CSV (readable by any tool an investigator has; UTF-8, a header line, times in UTC
ISO 8601); findings and actions are JSON Lines. Given the same store and scope the zip is
byte-for-byte the same, except ``generated_at`` in the manifest: rows are sorted on every
column, zip entries carry a fixed date.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa
import pyarrow.csv as pacsv

from hemostat import __version__
from hemostat.errors import ConfigError, StoreError
from hemostat.scope.model import Read, Scope
from hemostat.store import Store

FORMAT = "hemostat-evidence-bundle/1"
MANIFEST = "manifest.json"
SUMS = "SHA256SUMS"
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed: the same evidence gives the same zip

_EGRESS_SQL = """
SELECT * FROM flows
WHERE list_contains(?::VARCHAR[], src_ip) AND list_contains(?::VARCHAR[], dst_ip)
  AND ts < ? AND coalesce(end_ts, ts) >= ?
ORDER BY ALL
"""
_HOP_SQL = """
SELECT ?::INTEGER AS hop, * FROM flows
WHERE src_ip = ? AND dst_ip = ? AND dst_port = ? AND ts <= ? AND coalesce(end_ts, ts) >= ?
ORDER BY ALL
"""
_ACCESS_SQL = """
SELECT ?::VARCHAR AS datastore, * FROM access
WHERE object = ? AND "user" IS NOT DISTINCT FROM ? AND client_ip IS NOT DISTINCT FROM ?
  AND ts BETWEEN ? AND ?
ORDER BY ALL
"""
_FINDINGS_SQL = "SELECT * FROM findings WHERE list_contains(?::VARCHAR[], id) ORDER BY ts, id"


@dataclass(frozen=True, slots=True)
class BundleFile:
    name: str
    size: int
    sha256: str
    rows: int
    description: str


@dataclass(frozen=True)
class Bundle:
    """A written evidence bundle; ``manifest_sha256`` is the hash to print and to check."""

    path: Path
    incident: str
    generated_at: datetime
    manifest_sha256: str
    files: tuple[BundleFile, ...]


def write_bundle(
    store: Store, scope: Scope, path: Path, *, generated_at: datetime | None = None
) -> Bundle:
    """Write the evidence bundle of ``scope`` from ``store`` to the zip ``path``."""
    now = (generated_at or datetime.now(UTC)).astimezone(UTC)
    try:
        contents = _contents(store.con, scope)
    except duckdb.Error as exc:
        raise StoreError(
            f"{store.path}: cannot read the evidence of {scope.incident.id}: {exc}"
        ) from exc
    files = tuple(
        BundleFile(name, len(data), _sha(data), rows, about) for name, data, rows, about in contents
    )
    manifest = _manifest(scope, now, files)
    sums = "".join(f"{f.sha256}  {f.name}\n" for f in files) + f"{_sha(manifest)}  {MANIFEST}\n"
    entries = [(n, d) for n, d, _, _ in contents] + [(MANIFEST, manifest), (SUMS, sums.encode())]
    _write_zip(Path(path), entries)
    return Bundle(Path(path), scope.incident.id, now, _sha(manifest), files)


def _contents(con: duckdb.DuckDBPyConnection, scope: Scope) -> list[tuple[str, bytes, int, str]]:
    """(name, bytes, rows, description) of every file but the manifest, in zip order."""
    egress = _egress(con, scope)
    hops = _hops(con, scope)
    reads = _reads(con, scope)
    findings = _findings(con, scope)
    actions = list(scope.actions)
    return [
        ("egress_flows.csv", _csv(egress), egress.num_rows,
         "flows from the egress hosts to the external destinations in the scope window"),
        ("lineage_flows.csv", _csv(hops), hops.num_rows,
         "flows of each lineage hop (column hop: 1-based index in scope.json lineage)"),
        ("access_events.csv", _csv(reads), reads.num_rows,
         "access events behind each read of each data store reached"),
        ("findings.jsonl", _jsonl(findings), len(findings), "the incident's findings"),
        ("actions.jsonl", _jsonl(actions), len(actions), "containment actions (audit log)"),
        ("scope.json", _json(scope.as_json()), 1, "the scoping answer (hemostat scope --json)"),
    ]  # fmt: skip


def _egress(con: duckdb.DuckDBPyConnection, scope: Scope) -> pa.Table:
    hosts = [h.ip for h in scope.egress.hosts]
    dests = [d.address for d in scope.egress.destinations]
    start, end = scope.window
    return con.sql(_EGRESS_SQL, params=[hosts, dests, end, start]).to_arrow_table()


def _hops(con: duckdb.DuckDBPyConnection, scope: Scope) -> pa.Table:
    parts = [
        con.sql(_HOP_SQL, params=[i, h.src, h.dst, h.port, h.last, h.first]).to_arrow_table()
        for i, h in enumerate(scope.lineage, start=1)
    ]
    return _concat(parts, con, "SELECT NULL::INTEGER AS hop, * FROM flows LIMIT 0")


def _reads(con: duckdb.DuckDBPyConnection, scope: Scope) -> pa.Table:
    unique: dict[tuple[Any, ...], Read] = {}
    for reach in scope.datastores:
        for r in reach.reads:
            unique.setdefault((r.datastore, r.object, r.account, r.client, r.first, r.last), r)
    parts = [
        con.sql(
            _ACCESS_SQL, params=[r.datastore, r.object, r.account, r.client, r.first, r.last]
        ).to_arrow_table()
        for r in unique.values()
    ]
    return _concat(parts, con, "SELECT NULL::VARCHAR AS datastore, * FROM access LIMIT 0")


def _concat(parts: list[pa.Table], con: duckdb.DuckDBPyConnection, empty: str) -> pa.Table:
    return pa.concat_tables(parts) if parts else con.sql(empty).to_arrow_table()


def _findings(con: duckdb.DuckDBPyConnection, scope: Scope) -> list[dict[str, Any]]:
    table = con.sql(_FINDINGS_SQL, params=[list(scope.incident.findings)]).to_arrow_table()
    rows: list[dict[str, Any]] = table.to_pylist()
    for row in rows:
        if isinstance(row.get("evidence"), str):
            row["evidence"] = orjson.loads(row["evidence"])
    return rows


def _manifest(scope: Scope, now: datetime, files: tuple[BundleFile, ...]) -> bytes:
    return _json(
        {
            "format": FORMAT,
            "incident": scope.incident.id,
            "site": scope.site,
            "window": {"start": _iso(scope.window[0]), "end": _iso(scope.window[1])},
            "generated_at": _iso(now),
            "hemostat": __version__,
            "files": [
                {
                    "name": f.name,
                    "size": f.size,
                    "sha256": f.sha256,
                    "rows": f.rows,
                    "description": f.description,
                }
                for f in files
            ],
        }
    )


# ---- encodings ------------------------------------------------------------------------------


def _csv(table: pa.Table) -> bytes:
    out = io.BytesIO()
    pacsv.write_csv(table, out)
    return out.getvalue()


def _json(value: Any) -> bytes:
    option = orjson.OPT_INDENT_2 | orjson.OPT_PASSTHROUGH_DATETIME
    return orjson.dumps(value, default=_default, option=option) + b"\n"


def _jsonl(rows: list[dict[str, Any]]) -> bytes:
    option = orjson.OPT_PASSTHROUGH_DATETIME
    return b"".join(orjson.dumps(r, default=_default, option=option) + b"\n" for r in rows)


def _default(value: Any) -> Any:
    """Times as ISO 8601 UTC text (``Z``, like scope.json), anything else as text."""
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write_zip(path: Path, entries: list[tuple[str, bytes]]) -> None:
    """Write the zip next to ``path`` and move it in place: never a half-written bundle."""
    partial = path.with_name(path.name + ".partial")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(partial, "w") as zf:
            for name, data in entries:
                info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.create_system = 3  # unix, so the permissions below are read
                info.external_attr = 0o644 << 16
                zf.writestr(info, data)
        partial.replace(path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
        raise ConfigError(f"cannot write the evidence bundle {path}: {exc.strerror}") from exc

"""The leak index: per data store, the keyed hashes of every identifier of every record of an
export, in ``INDEX/<datastore>.parquet`` (columns datastore, category, kind, hash, record,
subject; hashes are 16 bytes, nothing in clear) beside ``INDEX/<datastore>.json`` (counts,
column map, source without password, the secret's fingerprint). Indexing a data store again
replaces its two files; other data stores stay.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from hemostat.leak import postgres
from hemostat.leak.columns import ColumnMap, Field, resolve
from hemostat.leak.errors import LeakError
from hemostat.leak.identify import identify
from hemostat.leak.reader import Table, read_table
from hemostat.leak.secret import HASH_BYTES, Hasher, fingerprint
from hemostat.schema import Category

FORMAT = "hemostat-leak-index/1"
SCHEMA = pa.schema(
    [
        ("datastore", pa.string()),
        ("category", pa.string()),
        ("kind", pa.string()),
        ("hash", pa.binary(HASH_BYTES)),
        ("record", pa.binary(HASH_BYTES)),
        ("subject", pa.binary(HASH_BYTES)),
    ]
)
_BATCH = 50_000
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")


@dataclass(frozen=True, slots=True)
class StoreIndex:
    """What the index holds for one data store (its ``.json`` file)."""

    datastore: str
    category: Category
    records: int  # rows of the export, those without identifier included
    subjects: int  # distinct people (subject keys)
    without_identifier: int  # rows no identifier could be read from: never matchable
    hashes: int
    kinds: Mapping[str, int]  # records holding each identifier kind
    columns: Mapping[str, str]  # export column -> field
    source: str
    fingerprint: str
    created: str
    path: Path  # the Parquet file

    def as_json(self) -> dict[str, object]:
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "path"}
        return {
            "format": FORMAT,
            "hash": "HMAC-SHA256/128",
            **out,
            "kinds": dict(self.kinds),
            "columns": dict(self.columns),
            "category": str(self.category),
        }


def build_index(
    source: str | Path,
    *,
    datastore: str,
    category: Category,
    secret: bytes,
    index_dir: Path,
    query: str | None = None,
    overrides: Sequence[tuple[Field, str]] = (),
    on_rows: Callable[[int], None] | None = None,
) -> StoreIndex:
    """Hash every identifier of every row of ``source`` (a CSV/JSON file, or a PostgreSQL URL
    with ``query``) into the index of ``datastore``, replacing what it held before."""
    if not _NAME.fullmatch(datastore):
        raise LeakError(f"--datastore {datastore!r}: use letters, digits, '.', '_' or '-'")
    index_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    parquet, sidecar = index_dir / f"{datastore}.parquet", index_dir / f"{datastore}.json"
    tmp = index_dir / f".{datastore}.parquet.tmp"
    try:
        with _open_source(source, query) as table:
            cmap = resolve(table.columns, table.sample, overrides, table.where)
            records, unidentified = _write(
                table, cmap, datastore, category, Hasher(secret), tmp, on_rows
            )
        subjects, hashes, kinds = _counts(tmp)
        index = StoreIndex(
            datastore=datastore, category=category, records=records, subjects=subjects,
            without_identifier=unidentified, hashes=hashes, kinds=kinds, columns=cmap.as_json(),
            source=table.where, fingerprint=fingerprint(secret),
            created=datetime.now(UTC).isoformat(timespec="seconds"), path=parquet,
        )  # fmt: skip
        os.replace(tmp, parquet)
    finally:
        tmp.unlink(missing_ok=True)
    _write_json(sidecar, index.as_json())
    return index


@contextmanager
def _open_source(source: str | Path, query: str | None) -> Iterator[Table]:
    if isinstance(source, str) and postgres.is_url(source):
        with postgres.query_table(source, query) as table:
            yield table
        return
    if query:
        raise LeakError(f"{source}: --query applies to a postgresql:// source only")
    yield read_table(Path(source))


def _write(
    table: Table,
    cmap: ColumnMap,
    datastore: str,
    category: Category,
    hasher: Hasher,
    path: Path,
    on_rows: Callable[[int], None] | None,
) -> tuple[int, int]:
    """Write the hashes of ``table`` to ``path``; returns (records, records without id)."""
    today = date.today()
    records = unidentified = 0
    columns: dict[str, list[bytes | str]] = {n: [] for n in ("kind", "hash", "record", "subject")}
    # uncompressed: hashes do not compress, and an auditor can grep the file for clear text
    with pq.ParquetWriter(path, SCHEMA, compression="none") as writer:
        for row in table.rows:
            if row is None:
                continue
            records += 1
            identity = identify(row, cmap, today)
            if identity.subject is None:
                unidentified += 1
                continue
            record = hasher.record(datastore, identity.record_id or f"row:{records}")
            subject = hasher.digest(*identity.subject)
            for kind, value in identity.keys:
                columns["kind"].append(str(kind))
                columns["hash"].append(hasher.digest(kind, value))
                columns["record"].append(record)
                columns["subject"].append(subject)
            if len(columns["hash"]) >= _BATCH:
                _flush(writer, columns, datastore, category)
            if on_rows and records % 10_000 == 0:
                on_rows(records)
        _flush(writer, columns, datastore, category)
    if on_rows:
        on_rows(records)
    return records, unidentified


def _flush(
    writer: pq.ParquetWriter,
    columns: dict[str, list[bytes | str]],
    datastore: str,
    category: Category,
) -> None:
    n = len(columns["hash"])
    if not n:
        return
    arrays = {"datastore": [datastore] * n, "category": [str(category)] * n, **columns}
    writer.write_table(pa.table(arrays, schema=SCHEMA))
    for values in columns.values():
        values.clear()


def _counts(path: Path) -> tuple[int, int, dict[str, int]]:
    """(distinct subjects, hashes, records per kind) of one written Parquet file."""
    with duckdb.connect() as con:
        source = [str(path)]
        ((subjects, hashes),) = con.execute(
            "select count(distinct subject), count(*) from read_parquet(?)", source
        ).fetchall()
        kinds = con.execute(
            "select kind, count(distinct record) from read_parquet(?) group by kind order by kind",
            source,
        ).fetchall()
    return int(subjects), int(hashes), {str(k): int(n) for k, n in kinds}


def _write_json(path: Path, data: Mapping[str, object]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def load_index(index_dir: Path, secret: bytes) -> tuple[StoreIndex, ...]:
    """Every data store of the index; LeakError if there is none, a file is missing, or one
    was built with another secret (matching it would find nothing and prove nothing)."""
    sidecars = sorted(index_dir.glob("*.json")) if index_dir.is_dir() else []
    if not sidecars:
        raise LeakError(f"{index_dir}: no leak index there; build one with `hemostat leak index`")
    expected = fingerprint(secret)
    return tuple(_load_one(path, expected) for path in sidecars)


def _load_one(path: Path, expected: str) -> StoreIndex:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        index = StoreIndex(
            datastore=data["datastore"], category=Category(data["category"]),
            records=int(data["records"]), subjects=int(data["subjects"]),
            without_identifier=int(data["without_identifier"]), hashes=int(data["hashes"]),
            kinds=dict(data["kinds"]), columns=dict(data["columns"]), source=str(data["source"]),
            fingerprint=str(data["fingerprint"]), created=str(data["created"]),
            path=path.with_suffix(".parquet"),
        )  # fmt: skip
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise LeakError(f"{path}: not a leak index file ({exc}); index the store again") from None
    if index.fingerprint != expected:
        raise LeakError(
            f"{path}: built with another secret (fingerprint {index.fingerprint}, the secret "
            f"file gives {expected}); give the secret it was built with (--secret-file)"
        )
    if not index.path.is_file():
        raise LeakError(f"{index.path}: missing; index data store {index.datastore} again")
    return index

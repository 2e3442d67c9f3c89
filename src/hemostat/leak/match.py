"""Matching published dumps against the leak index: each dump row is normalised and hashed
like an export row, the hashes are joined with the index, and the answer counts *distinct*
index records and people, per data store and per category (a row duplicated in a dump, or
found in two dumps, is counted once). The dumps' own rows are counted too: read, unreadable,
without any usable identifier, with identifiers that match nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from hemostat.leak.columns import Field, resolve
from hemostat.leak.identify import identify
from hemostat.leak.index import StoreIndex, load_index
from hemostat.leak.reader import read_table
from hemostat.leak.secret import HASH_BYTES, Hasher
from hemostat.schema import Category

_BATCH = 100_000


@dataclass(frozen=True, slots=True)
class DumpStats:
    """One dump's own rows."""

    path: str
    format: str
    rows: int  # data rows read, duplicates included
    unreadable: int  # broken JSON lines
    no_identifier: int  # rows with no NIR, e-mail, name + birth date or staff number
    unmatched: int  # rows with identifiers, none of them in the index
    matched: int  # rows with at least one identifier in the index
    columns: Mapping[str, str]  # dump column -> field


@dataclass(frozen=True, slots=True)
class StoreMatch:
    """One data store: how many of its records and people are in the dumps."""

    datastore: str
    category: Category
    matched_records: int
    matched_subjects: int
    records: int  # indexed records (rows of the export)
    subjects: int  # indexed people
    kinds: Mapping[str, int]  # matched records per identifier kind that matched

    def as_json(self) -> dict[str, Any]:
        return {
            "datastore": self.datastore,
            "category": str(self.category),
            "matched_records": self.matched_records,
            "matched_subjects": self.matched_subjects,
            "records": self.records,
            "subjects": self.subjects,
            "share_records": _share(self.matched_records, self.records),
            "share_subjects": _share(self.matched_subjects, self.subjects),
            "kinds": dict(self.kinds),
        }


@dataclass(frozen=True, slots=True)
class CategoryMatch:
    """One category over its data stores; people are told apart across stores."""

    category: Category
    indexed: bool  # False: no data store of this category is indexed, so nothing can be said
    matched_records: int
    matched_subjects: int
    records: int
    subjects: int  # sum over the stores: a person in two stores is counted twice here

    def as_json(self) -> dict[str, Any]:
        return {
            "indexed": self.indexed,
            "matched_records": self.matched_records,
            "matched_subjects": self.matched_subjects,
            "records": self.records,
            "subjects": self.subjects,
        }


@dataclass(frozen=True, slots=True)
class MatchResult:
    dumps: tuple[DumpStats, ...]
    stores: tuple[StoreMatch, ...]
    categories: tuple[CategoryMatch, ...]

    def as_json(self) -> dict[str, Any]:
        totals = {
            k: sum(getattr(d, k) for d in self.dumps)
            for k in ("rows", "unreadable", "no_identifier", "unmatched", "matched")
        }
        return {
            **totals,
            "dumps": [{**_fields(d), "columns": dict(d.columns)} for d in self.dumps],
            "datastores": [s.as_json() for s in self.stores],
            "categories": {str(c.category): c.as_json() for c in self.categories},
        }


def match(
    dumps: Sequence[Path],
    *,
    index_dir: Path,
    secret: bytes,
    overrides: Sequence[tuple[Field, str]] = (),
    on_rows: Callable[[int], None] | None = None,
) -> MatchResult:
    """Count the index records and people found in ``dumps``; ``overrides`` (``KIND=COLUMN``)
    apply to every dump."""
    stores = load_index(index_dir, secret)
    hasher = Hasher(secret)
    with duckdb.connect() as con:
        con.execute(
            "create table idx as select * from read_parquet(?)", [[str(s.path) for s in stores]]
        )
        con.execute(
            "create table hits (dump int, row bigint, datastore varchar, category varchar,"
            " kind varchar, record blob, subject blob)"
        )
        stats = tuple(
            _scan(con, n, path, hasher, overrides, on_rows) for n, path in enumerate(dumps)
        )
        return MatchResult(stats, _stores(con, stores), _categories(con, stores))


def _scan(
    con: duckdb.DuckDBPyConnection,
    dump: int,
    path: Path,
    hasher: Hasher,
    overrides: Sequence[tuple[Field, str]],
    on_rows: Callable[[int], None] | None,
) -> DumpStats:
    table = read_table(path)
    cmap = resolve(table.columns, table.sample, overrides, table.where)
    today = date.today()
    rows = unreadable = no_identifier = identified = 0
    batch: tuple[list[int], list[bytes]] = ([], [])
    for row in table.rows:
        rows += 1
        if row is None:
            unreadable += 1
            continue
        keys = identify(row, cmap, today).keys
        identified += bool(keys)
        no_identifier += not keys
        for kind, value in keys:
            batch[0].append(rows)
            batch[1].append(hasher.digest(kind, value))
        if len(batch[1]) >= _BATCH:
            _join(con, dump, batch)
        if on_rows and rows % 10_000 == 0:
            on_rows(rows)
    _join(con, dump, batch)
    ((matched,),) = con.execute(
        "select count(distinct row) from hits where dump = ?", [dump]
    ).fetchall()
    return DumpStats(
        str(path),
        table.format,
        rows - unreadable,
        unreadable,
        no_identifier,
        identified - int(matched),
        int(matched),
        cmap.as_json(),
    )


def _join(con: duckdb.DuckDBPyConnection, dump: int, batch: tuple[list[int], list[bytes]]) -> None:
    if not batch[1]:
        return
    hashes = pa.table(
        {"row": pa.array(batch[0], pa.int64()), "hash": pa.array(batch[1], pa.binary(HASH_BYTES))}
    )
    con.register("batch", hashes)
    con.execute(
        "insert into hits select ?, b.row, i.datastore, i.category, i.kind, i.record, i.subject"
        " from batch b join idx i on b.hash = i.hash",
        [dump],
    )
    con.unregister("batch")
    batch[0].clear()
    batch[1].clear()


def _stores(con: duckdb.DuckDBPyConnection, stores: Sequence[StoreIndex]) -> tuple[StoreMatch, ...]:
    counts = {
        ds: (int(r), int(s))
        for ds, r, s in con.execute(
            "select datastore, count(distinct record), count(distinct subject) from hits group by 1"
        ).fetchall()
    }
    kinds: dict[str, dict[str, int]] = {}
    for ds, kind, n in con.execute(
        "select datastore, kind, count(distinct record) from hits group by 1, 2 order by 1, 2"
    ).fetchall():
        kinds.setdefault(ds, {})[kind] = int(n)
    return tuple(
        StoreMatch(
            s.datastore,
            s.category,
            *counts.get(s.datastore, (0, 0)),
            s.records,
            s.subjects,
            kinds.get(s.datastore, {}),
        )
        for s in stores
    )


def _categories(
    con: duckdb.DuckDBPyConnection, stores: Sequence[StoreIndex]
) -> tuple[CategoryMatch, ...]:
    counts = {
        cat: (int(r), int(s))
        for cat, r, s in con.execute(
            "select category, count(distinct record), count(distinct subject) from hits group by 1"
        ).fetchall()
    }
    out = []
    for category in Category:
        mine = [s for s in stores if s.category is category]
        out.append(
            CategoryMatch(
                category,
                bool(mine),
                *counts.get(str(category), (0, 0)),
                sum(s.records for s in mine),
                sum(s.subjects for s in mine),
            )
        )
    return tuple(out)


def _share(part: int, whole: int) -> float:
    return round(part / whole, 6) if whole else 0.0


def _fields(stats: DumpStats) -> dict[str, Any]:
    return {
        k: getattr(stats, k)
        for k in ("path", "format", "rows", "unreadable", "no_identifier", "unmatched", "matched")
    }

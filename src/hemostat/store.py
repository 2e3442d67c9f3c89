"""The store: one DuckDB file under the home directory, and its hive-partitioned Parquet lake.

Every input file lands in one transaction together with its entry in ``ingests`` (keyed by a
fingerprint of its content), so a file is never counted twice and never half-written.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from hemostat import community_id
from hemostat.errors import StoreError
from hemostat.schema import SCHEMAS, Table

DB_NAME = "hemostat.duckdb"
_PART = "_hemostat_part"  # the view an append reads its rows from

_DUCK_TYPES = {
    pa.timestamp("us", tz="UTC"): "TIMESTAMPTZ",
    pa.string(): "VARCHAR",
    pa.int32(): "INTEGER",
    pa.int64(): "BIGINT",
    pa.bool_(): "BOOLEAN",
    pa.float64(): "DOUBLE",
    pa.list_(pa.string()): "VARCHAR[]",
}

_EXTRA_DDL = """
CREATE SEQUENCE IF NOT EXISTS ingest_seq START 1;
CREATE TABLE IF NOT EXISTS ingests (
    id BIGINT PRIMARY KEY DEFAULT nextval('ingest_seq'),
    path VARCHAR NOT NULL,
    fingerprint VARCHAR NOT NULL,
    format VARCHAR NOT NULL,
    rows_flows BIGINT DEFAULT 0,
    rows_dns BIGINT DEFAULT 0,
    rows_access BIGINT DEFAULT 0,
    bad_lines BIGINT DEFAULT 0,
    skipped BIGINT DEFAULT 0,
    ingested_at TIMESTAMPTZ NOT NULL,
    UNIQUE (fingerprint, format)
);
-- internal host pairs per hour (scoping's lineage reads this instead of every flow)
CREATE TABLE IF NOT EXISTS pairs (
    hour TIMESTAMPTZ, src_ip VARCHAR, dst_ip VARCHAR, dst_port INTEGER, service VARCHAR,
    bytes_out BIGINT, bytes_in BIGINT, flows BIGINT, first TIMESTAMPTZ, last TIMESTAMPTZ
);
-- egress per hour and (internal source, external destination, port), per minute and source,
-- per hour and source or destination, and the periods rolled up (scope/egress_rollup.py;
-- the dashboard reads these, not flows)
CREATE TABLE IF NOT EXISTS egress_hours (
    hour TIMESTAMPTZ, src_ip VARCHAR, dst_ip VARCHAR, dst_port INTEGER, bytes_out BIGINT,
    bytes_in BIGINT, flows BIGINT, first TIMESTAMPTZ, last TIMESTAMPTZ
);
CREATE TABLE IF NOT EXISTS egress_minutes (
    minute TIMESTAMPTZ, src_ip VARCHAR, bytes_out BIGINT, flows BIGINT
);
CREATE TABLE IF NOT EXISTS egress_sources (
    hour TIMESTAMPTZ, src_ip VARCHAR, bytes_out BIGINT, bytes_in BIGINT, flows BIGINT,
    destinations BIGINT, first TIMESTAMPTZ, last TIMESTAMPTZ
);
CREATE TABLE IF NOT EXISTS egress_targets (
    hour TIMESTAMPTZ, dst_ip VARCHAR, bytes_out BIGINT, bytes_in BIGINT, flows BIGINT,
    hosts BIGINT, first TIMESTAMPTZ, last TIMESTAMPTZ
);
CREATE TABLE IF NOT EXISTS egress_rolls (
    since TIMESTAMPTZ, until TIMESTAMPTZ, rolled_at TIMESTAMPTZ, seconds DOUBLE
);
CREATE TABLE IF NOT EXISTS findings (
    id VARCHAR PRIMARY KEY, detector VARCHAR, ts TIMESTAMPTZ, end_ts TIMESTAMPTZ,
    host VARCHAR, destination VARCHAR, score DOUBLE, severity VARCHAR, bytes_out BIGINT,
    attack VARCHAR[], evidence JSON, incident_id VARCHAR
);
ALTER TABLE findings ADD COLUMN IF NOT EXISTS kind VARCHAR;
ALTER TABLE findings ADD COLUMN IF NOT EXISTS summary VARCHAR;
ALTER TABLE findings ADD COLUMN IF NOT EXISTS hosts VARCHAR[];
ALTER TABLE findings ADD COLUMN IF NOT EXISTS expected VARCHAR;
ALTER TABLE findings ADD COLUMN IF NOT EXISTS detected_at TIMESTAMPTZ;
CREATE TABLE IF NOT EXISTS incidents (
    id VARCHAR PRIMARY KEY, kind VARCHAR, severity VARCHAR, score DOUBLE, hosts VARCHAR[],
    destinations VARCHAR[], start TIMESTAMPTZ, "end" TIMESTAMPTZ, bytes_out BIGINT,
    detectors VARCHAR[], attack VARCHAR[], status VARCHAR, updated_at TIMESTAMPTZ
);
ALTER TABLE incidents ADD COLUMN IF NOT EXISTS summary VARCHAR;
ALTER TABLE incidents ADD COLUMN IF NOT EXISTS findings VARCHAR[];
ALTER TABLE incidents ADD COLUMN IF NOT EXISTS expected VARCHAR[];
ALTER TABLE incidents ADD COLUMN IF NOT EXISTS created_at TIMESTAMPTZ;
CREATE SEQUENCE IF NOT EXISTS detection_seq START 1;
CREATE TABLE IF NOT EXISTS detections (
    id BIGINT PRIMARY KEY DEFAULT nextval('detection_seq'), started_at TIMESTAMPTZ,
    since TIMESTAMPTZ, until TIMESTAMPTZ, seconds DOUBLE, findings BIGINT, new_findings BIGINT,
    incidents BIGINT, errors VARCHAR[]
);
CREATE TABLE IF NOT EXISTS actions (
    seq BIGINT PRIMARY KEY, id VARCHAR, ts TIMESTAMPTZ, actor VARCHAR, kind VARCHAR,
    target VARCHAR, reason VARCHAR, step VARCHAR, rules VARCHAR, result VARCHAR,
    prev_hash VARCHAR, hash VARCHAR
);
CREATE TABLE IF NOT EXISTS agents (
    id VARCHAR PRIMARY KEY, name VARCHAR, ip VARCHAR, token_hash VARCHAR, role VARCHAR,
    enrolled_at TIMESTAMPTZ, last_seen TIMESTAMPTZ
);
-- agent batches stored by the collector (hemostat serve): a batch sent again is known
CREATE TABLE IF NOT EXISTS batches (
    id VARCHAR PRIMARY KEY, agent VARCHAR, received TIMESTAMPTZ, rows BIGINT
);
"""

#: identifies one ingest of one file; ``fingerprint`` keys idempotent re-ingest
IngestKey = tuple[str, str, str]  # (path, fingerprint, format)


def fingerprint(path: Path, chunk: int = 1 << 20, samples: int = 16) -> str:
    """A content fingerprint that reads at most ``samples + 2`` MiB, however large the file.

    The size, the first and last MiB and ``samples`` MiB at even offsets in between: a log
    that changed, grew, or was truncated gets a new fingerprint; the same bytes under a
    new name (a rotated copy) keep theirs.
    """
    size = path.stat().st_size
    digest = hashlib.sha256(str(size).encode())
    with path.open("rb") as fh:
        if size <= chunk * (samples + 2):
            digest.update(fh.read())
        else:
            for i in range(samples + 2):
                fh.seek(min(i * (size - chunk) // (samples + 1), size - chunk))
                digest.update(fh.read(chunk))
    return digest.hexdigest()


#: columns stored without compression: random identifiers, which DuckDB's string compression
#: shrinks by only a fifth, at a large share of the ingest's CPU. A Community ID (a hash):
#: 6 MB per million flows saved for a tenth of the CPU; a Zeek uid (17 random base62
#: characters): 4.7 MB per million (11 MB for hex ids) for 6% of it.
_UNCOMPRESSED = {(Table.FLOWS, "community_id"), (Table.FLOWS, "conn_id")}


def _column_ddl(table: Table, field: pa.Field) -> str:
    using = " USING COMPRESSION uncompressed" if (table, field.name) in _UNCOMPRESSED else ""
    return f'"{field.name}" {_DUCK_TYPES[field.type]}{using}'


def _ddl(table: Table) -> str:
    cols = ", ".join(_column_ddl(table, f) for f in SCHEMAS[table])
    return f"CREATE TABLE IF NOT EXISTS {table} ({cols})"


@dataclass(frozen=True, slots=True)
class Counts:
    flows: int
    dns: int
    access: int
    files: int


class Store:
    """The DuckDB file of one hemostat home. One writer at a time (DuckDB's own lock)."""

    def __init__(self, home: Path, read_only: bool = False) -> None:
        self.home = Path(home)
        self.path = self.home / DB_NAME
        self.read_only = read_only
        if read_only and not self.path.exists():
            raise StoreError(f"no store at {self.path}; ingest something first (hemostat ingest)")
        try:
            if not read_only:
                self.home.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create home directory {self.home}: {exc.strerror}") from exc
        try:
            self.con = duckdb.connect(str(self.path), read_only=read_only)
        except duckdb.IOException as exc:
            raise StoreError(
                f"cannot open {self.path}: {exc}; is another hemostat writing to it?"
            ) from exc
        except duckdb.Error as exc:
            raise StoreError(f"cannot open {self.path}: {exc}") from exc
        self.con.execute("SET TimeZone = 'UTC'")
        self.con.execute("SET enable_progress_bar = false")
        community_id.register(self.con)
        if not read_only:
            self._create()

    def _create(self) -> None:
        for table in Table:
            self.con.execute(_ddl(table))
            self._add_missing_columns(table)
        self.con.execute(_EXTRA_DDL)

    def _add_missing_columns(self, table: Table) -> None:
        have = {r[0] for r in self.con.execute(f"DESCRIBE {table}").fetchall()}
        for field in SCHEMAS[table]:
            if field.name not in have:
                self.con.execute(f"ALTER TABLE {table} ADD COLUMN {_column_ddl(table, field)}")

    def close(self) -> None:
        self.con.close()

    @contextmanager
    def reading(self) -> Iterator[Store]:
        """This store through a cursor of its own, for reads from another thread while this
        connection writes (the collector's dashboard); closing it closes only the cursor."""
        view = object.__new__(Store)
        view.home, view.path, view.read_only = self.home, self.path, True
        view.con = self.con.cursor()
        try:
            view.con.execute("SET TimeZone = 'UTC'")
            yield view
        finally:
            view.con.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- ingest bookkeeping -------------------------------------------------------------

    def already_ingested(self, fp: str, fmt: str) -> int | None:
        row = self._row("SELECT id FROM ingests WHERE fingerprint = ? AND format = ?", [fp, fmt])
        return None if row is None else int(row[0])

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """All or nothing: what the block appends is committed together, or not at all."""
        self.con.execute("BEGIN TRANSACTION")
        try:
            yield self.con
        except BaseException:
            self.con.execute("ROLLBACK")
            self.con.execute("RESET preserve_insertion_order")  # if an append failed midway
            raise
        self.con.execute("COMMIT")

    def begin_ingest(self, path: Path | str, fp: str, fmt: str) -> int:
        """Record the ingest of ``path`` (a file, or a source such as ``udp://0.0.0.0:2055``)."""
        row = self._row(
            "INSERT INTO ingests (path, fingerprint, format, ingested_at) "
            "VALUES (?, ?, ?, ?) RETURNING id",
            [str(path), fp, fmt, datetime.now(UTC)],
        )
        if row is None:
            raise StoreError(f"{self.path}: could not record the ingest of {path}")
        return int(row[0])

    def finish_ingest(self, ingest_id: int, rows: dict[Table, int], bad: int, skipped: int) -> None:
        self.con.execute(
            "UPDATE ingests SET rows_flows = ?, rows_dns = ?, rows_access = ?, bad_lines = ?, "
            "skipped = ? WHERE id = ?",
            [rows.get(Table.FLOWS, 0), rows.get(Table.DNS, 0), rows.get(Table.ACCESS, 0),
             bad, skipped, ingest_id],
        )  # fmt: skip

    # ---- appends --------------------------------------------------------------------------

    def append(self, table: Table, data: Any, ingest_id: int | None = None) -> int:
        """Append rows in canonical columns (an Arrow table/reader or a DuckDB relation).

        Columns absent from ``data`` are NULL; ``community_id`` is computed for flows that
        lack one; Zeek snapshots of still-open connections are replaced by later snapshots
        and dropped once the closed connection is known. Returns the number of rows
        inserted from ``data`` (older snapshots it replaced are not subtracted).

        A lazy ``data`` (a relation over a file) is read here, in one ``INSERT … SELECT``:
        errors in the file surface from this call, as the ``duckdb.Error`` that caused them.
        """
        if isinstance(data, duckdb.DuckDBPyRelation):
            data.create_view(_PART, replace=True)
        else:
            self.con.register(_PART, data)
        try:
            added = self._insert(table, data, ingest_id)
        except BaseException:
            # in an aborted transaction even DROP fails; the caller's ROLLBACK undoes the view
            with contextlib.suppress(duckdb.Error):
                self.con.execute(f"DROP VIEW IF EXISTS {_PART}")
            raise
        self.con.execute(f"DROP VIEW IF EXISTS {_PART}")
        return added

    def _insert(self, table: Table, data: Any, ingest_id: int | None) -> int:
        described = self.con.execute(f"SELECT * FROM {_PART} LIMIT 0").description
        have = {d[0].lower() for d in described}
        if table is not Table.FLOWS:
            select = ", ".join(self._column(table, f.name, have, ingest_id) for f in SCHEMAS[table])
            return self._inserted(f"INSERT INTO {table} BY NAME SELECT {select} FROM {_PART}")
        rows = self._flows_sql(have, ingest_id)
        if _may_hold_snapshots(data, have):
            added = self._merge_open(rows, ingest_id)
        else:
            added = self._inserted(f"INSERT INTO flows BY NAME {rows}")
            self._drop_closed_snapshots(ingest_id)
        return added

    def _flows_sql(self, have: set[str], ingest_id: int | None) -> str:
        """The part as canonical flows, with the Community ID of those that lack one."""
        names = [f.name for f in SCHEMAS[Table.FLOWS] if f.name != "community_id"]
        given = "community_id" if "community_id" in have else "NULL::VARCHAR"
        canonical = ", ".join(self._column(Table.FLOWS, n, have, ingest_id) for n in names)
        keyed = community_id.keyed_sql(f"(SELECT {canonical}, {given} AS _cid_given FROM {_PART})")
        computed = community_id.hash_sql("_cid_lo", "_cid_hi", "proto", community_id.PY_CALL)
        return (
            f"SELECT * EXCLUDE (_cid_given, _cid_lo, _cid_hi), "
            f"coalesce(_cid_given, {computed}) AS community_id FROM ({keyed})"
        )

    def _column(self, table: Table, name: str, have: set[str], ingest_id: int | None) -> str:
        if name == "ingest_id" and ingest_id is not None:
            return f"{ingest_id}::BIGINT AS ingest_id"
        if table is Table.FLOWS and name == "open":  # NULL means "not a snapshot"
            return "coalesce(open, false) AS open" if name in have else "false AS open"
        return f'"{name}"' if name in have else f'NULL AS "{name}"'

    def _merge_open(self, rows: str, ingest_id: int | None) -> int:
        """Open-connection snapshots: keep the latest per conn_id, and none once closed."""
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE _hemostat_new AS {rows}")
        try:
            self.con.execute("""
                DELETE FROM flows WHERE open AND conn_id IN
                    (SELECT conn_id FROM _hemostat_new WHERE conn_id IS NOT NULL)
            """)
            added = self._inserted("""
                INSERT INTO flows BY NAME
                SELECT * EXCLUDE (rk) FROM (
                    SELECT *, row_number() OVER (
                        PARTITION BY conn_id
                        ORDER BY open, end_ts DESC NULLS LAST) AS rk
                    FROM _hemostat_new)
                WHERE NOT open OR conn_id IS NULL OR rk = 1
            """)
        finally:
            with contextlib.suppress(duckdb.Error):  # see append: the ROLLBACK drops it
                self.con.execute("DROP TABLE IF EXISTS _hemostat_new")
        self._drop_closed_snapshots(None)  # new snapshots may match closed rows of any file
        return added

    def _drop_closed_snapshots(self, ingest_id: int | None) -> None:
        """Delete snapshots of connections now known closed: by any row, or (``ingest_id``
        given, when that file added no snapshot) by its rows only, so the scan skips the
        rest of the table."""
        if self._row("SELECT 1 FROM flows WHERE open LIMIT 1") is None:
            return
        closed = "NOT open AND conn_id IS NOT NULL"
        if ingest_id is not None:
            closed += f" AND ingest_id = {int(ingest_id)}"
        self.con.execute(
            "DELETE FROM flows WHERE open AND conn_id IN "
            f"(SELECT conn_id FROM flows WHERE {closed})"
        )

    def _inserted(self, sql: str) -> int:
        """Run one INSERT, letting DuckDB store the rows in any order: keeping the input's
        order costs a bulk append 7% more CPU, and nothing relies on it (a query that needs
        an order says ORDER BY). The setting is this connection's: it is put back after."""
        self.con.execute("SET preserve_insertion_order = false")
        try:
            row = self._row(sql)
        finally:
            with contextlib.suppress(duckdb.Error):  # aborted: transaction() puts it back
                self.con.execute("RESET preserve_insertion_order")
        return int(row[0]) if row else 0

    def _count(self, table: Table) -> int:
        row = self._row(f"SELECT count(*) FROM {table}")
        return int(row[0]) if row else 0

    def _row(self, sql: str, params: list[Any] | None = None) -> tuple[Any, ...] | None:
        """The first row of a query (the whole result is consumed, as DuckDB 2 requires)."""
        rows = self.con.execute(sql, params or []).fetchall()
        return rows[0] if rows else None

    # ---- reading --------------------------------------------------------------------------

    def counts(self) -> Counts:
        files = self._row("SELECT count(*) FROM ingests")
        return Counts(self._count(Table.FLOWS), self._count(Table.DNS),
                      self._count(Table.ACCESS), int(files[0]) if files else 0)  # fmt: skip

    def time_range(self, table: Table) -> tuple[datetime | None, datetime | None]:
        row = self._row(f"SELECT min(ts), max(ts) FROM {table}")
        return (row[0], row[1]) if row else (None, None)

    # ---- retention and the lake -----------------------------------------------------------

    def prune(self, older_than: timedelta, now: datetime | None = None) -> dict[Table, int]:
        """Delete telemetry older than ``older_than``; returns rows deleted per table."""
        cutoff = (now or datetime.now(UTC)) - older_than
        deleted: dict[Table, int] = {}
        with self.transaction() as con:
            for table in Table:
                before = self._count(table)
                con.execute(f"DELETE FROM {table} WHERE ts < ?", [cutoff])
                deleted[table] = before - self._count(table)
            for rollup, column in (("pairs", "hour"), ("egress_hours", "hour"),
                                   ("egress_minutes", "minute"), ("egress_sources", "hour"),
                                   ("egress_targets", "hour")):  # fmt: skip
                con.execute(f"DELETE FROM {rollup} WHERE {column} < ?", [cutoff])
        return deleted

    def export(
        self, lake: Path | str, site: str = "default", since: datetime | None = None
    ) -> dict[Table, int]:
        """Write every table (or the UTC days from ``since`` on) to the Parquet lake ``lake``,
        a directory or ``s3://bucket/prefix`` (see :mod:`hemostat.lake`): per table, site
        and day, zstd files sorted by time and host; a day exported again replaces its
        partition. Returns the rows written per table."""
        from hemostat import lake as lakes

        where = lakes.location(lake)
        lakes.site_dir(site)  # a usable name
        first = None if since is None else datetime.combine(since.astimezone(UTC).date(), time())
        written: dict[Table, int] = {}
        for table in Table:
            cond = "" if first is None else "WHERE ts >= $first"
            params = {} if first is None else {"first": first.replace(tzinfo=UTC)}
            row = self._row(f"SELECT count(*) FROM {table} {cond.replace('$first', '?')}",
                            list(params.values()))  # fmt: skip
            written[table] = n = int(row[0]) if row else 0
            if n == 0:
                continue
            rows = self.con.sql(
                f"""SELECT * EXCLUDE (ingest_id), $site::VARCHAR AS site,
                           strftime(ts AT TIME ZONE 'UTC', '%Y-%m-%d') AS date
                    FROM {table} {cond} ORDER BY {", ".join(lakes.SORT[table])}""",
                params={"site": site, **params},
            )
            lakes.write(rows.to_arrow_reader(lakes.ROW_GROUP), where, table)
        return written

    def import_lake(self, lake: Path) -> dict[Table, int]:
        """Load a lake written by :meth:`export`; each Parquet file is ingested at most once."""
        added: dict[Table, int] = dict.fromkeys(Table, 0)
        for table in Table:
            for part in sorted((lake / str(table)).glob("**/*.parquet")):
                fp = fingerprint(part)
                if self.already_ingested(fp, f"parquet:{table}") is not None:
                    continue
                rel = self.con.read_parquet(str(part), hive_partitioning=True)
                with self.transaction():
                    ingest_id = self.begin_ingest(part, fp, f"parquet:{table}")
                    n = self.append(table, rel, ingest_id)
                    self.finish_ingest(ingest_id, {table: n}, 0, 0)
                added[table] += n
        return added


def _may_hold_snapshots(data: Any, have: set[str]) -> bool:
    """Whether ``data`` may hold open-connection snapshots (rows with ``open`` true), which
    need :meth:`Store._merge_open`. An Arrow table is looked at; a lazy input is assumed to
    (readers leave the ``open`` column out when they know no row is a snapshot)."""
    if "open" not in have:
        return False
    if isinstance(data, pa.Table):
        return bool(pc.any(data.column("open")).as_py())
    return True


def default_home() -> Path:
    return Path(os.environ.get("HEMOSTAT_HOME", "hemostat-home"))

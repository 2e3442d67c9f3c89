"""The store: appends, retention, Parquet lake round trip, idempotent import."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from hemostat.errors import StoreError
from hemostat.ingest import ingest_file
from hemostat.ingest.reader import Log
from hemostat.ingest.zeek import ZeekTsv
from hemostat.schema import FLOWS, Table
from hemostat.store import Store

T0 = datetime(2026, 11, 20, 23, 30, tzinfo=UTC)


def _flows(n: int, start: datetime = T0) -> pa.Table:
    rows = {
        "ts": [start + timedelta(hours=i) for i in range(n)],
        "src_ip": ["10.1.2.3"] * n,
        "src_port": [40000 + i for i in range(n)],
        "dst_ip": ["198.51.100.7"] * n,
        "dst_port": [443] * n,
        "proto": ["tcp"] * n,
        "bytes_out": [1000 * (i + 1) for i in range(n)],
    }
    return pa.table({k: pa.array(v, type=FLOWS.field(k).type) for k, v in rows.items()})


def test_append_fills_missing_columns_and_community_id(store: Store) -> None:
    assert store.append(Table.FLOWS, _flows(3)) == 3
    rows = store.con.execute(
        "SELECT bytes_in, open, community_id LIKE '1:%' FROM flows ORDER BY ts"
    ).fetchall()
    assert rows == [(None, False, True)] * 3


def test_prune_deletes_only_old_rows(store: Store) -> None:
    store.append(Table.FLOWS, _flows(48))  # 48 hourly rows from T0
    deleted = store.prune(timedelta(days=1), now=T0 + timedelta(hours=48))
    assert deleted[Table.FLOWS] == 24
    assert store.time_range(Table.FLOWS)[0] == T0 + timedelta(hours=24)


def test_prune_also_ages_out_the_rollups_pages_read(store: Store) -> None:
    cutoff = T0 + timedelta(hours=24)
    for hour in (T0, cutoff):
        store.con.execute("INSERT INTO egress_hours (hour, src_ip, bytes_out) VALUES (?, "
                          "'10.0.0.1', 5)", [hour])  # fmt: skip
        store.con.execute("INSERT INTO egress_minutes (minute, src_ip, bytes_out) VALUES (?, "
                          "'10.0.0.1', 5)", [hour])  # fmt: skip
        store.con.execute("INSERT INTO pairs (hour, src_ip, bytes_out) VALUES (?, '10.0.0.1', 5)",
                          [hour])  # fmt: skip
    store.prune(timedelta(days=1), now=T0 + timedelta(hours=48))
    for table, column in (("egress_hours", "hour"), ("egress_minutes", "minute"),
                          ("pairs", "hour")):  # fmt: skip
        left = store.con.execute(f"SELECT min({column}), count(*) FROM {table}").fetchall()
        assert left == [(cutoff, 1)], table


def test_lake_round_trip_is_partitioned_and_idempotent(tmp_path: Path, store: Store) -> None:
    store.append(Table.FLOWS, _flows(3))  # 23:30, 00:30, 01:30: two dates
    lake = tmp_path / "lake"
    assert store.export(lake, site="CHU Test")[Table.FLOWS] == 3
    parts = sorted(p.parent.relative_to(lake).as_posix() for p in lake.rglob("*.parquet"))
    assert parts == [
        "flows/site=CHU%20Test/date=2026-11-20",  # hive partition values are URL-encoded
        "flows/site=CHU%20Test/date=2026-11-21",
    ]
    with Store(tmp_path / "other") as other:
        assert other.import_lake(lake)[Table.FLOWS] == 3
        assert other.import_lake(lake)[Table.FLOWS] == 0  # imported once only
        got = other.con.execute("SELECT ts, bytes_out FROM flows ORDER BY ts").fetchall()
    want = store.con.execute("SELECT ts, bytes_out FROM flows ORDER BY ts").fetchall()
    assert got == want


def test_reopening_keeps_data(tmp_path: Path, shared: Path) -> None:
    with Store(tmp_path / "h") as s:
        ingest_file(s, shared / "rita-zeek/open_conns/closed/conn.log")
    with Store(tmp_path / "h") as s:
        assert s.counts().flows == 59 and s.counts().files == 1


def test_a_second_writer_gets_a_clear_error(tmp_path: Path) -> None:
    import subprocess
    import sys

    home = tmp_path / "h"
    with Store(home):
        code = f"from hemostat.store import Store; Store(__import__('pathlib').Path({str(home)!r}))"
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode != 0
    assert "StoreError" in done.stderr and "another hemostat" in done.stderr


def test_failed_file_leaves_nothing(tmp_path: Path, store: Store) -> None:
    bad = tmp_path / "conn.log"
    bad.write_text("#separator \\x09\n#path\tconn\n#fields\tts\tuid\n#types\ttime\tstring\n1.0\tC1\n")
    with pytest.raises(Exception, match="lacks field"):
        ingest_file(store, bad)
    assert store.counts().files == 0


def test_store_error_on_unwritable_home(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError):
        Store(blocker / "home")


def _truncated_gzip(tmp_path: Path, shared: Path) -> Path:
    """A gzipped Zeek conn.log cut in half: its header reads, its rows end mid-stream."""
    src = shared / "stratosphere-zeek-labeled/011-zeek-mixed/data/conn.log.labeled"
    data = gzip.compress(src.read_bytes())
    cut = tmp_path / "conn.log.gz"
    cut.write_bytes(data[: len(data) // 2])
    return cut


def test_an_error_in_a_lazy_append_is_not_masked(
    tmp_path: Path, shared: Path, store: Store
) -> None:
    """The gzip error surfaces while rows are inserted; cleaning up after it in the aborted
    transaction must not replace it with DuckDB's 'transaction is aborted'."""
    cut = _truncated_gzip(tmp_path, shared)
    table, rel = next(ZeekTsv().read(cut, store.con, Log(cut)))  # lazy: nothing read yet
    with pytest.raises(duckdb.IOException, match="GZIP"), store.transaction():
        store.append(table, rel)
    assert store.counts().flows == 0
    assert _keeps_insertion_order(store)  # the append's own setting is put back
    assert store.append(Table.FLOWS, _flows(2)) == 2  # the store is still usable
    assert _keeps_insertion_order(store)


def _keeps_insertion_order(store: Store) -> bool:
    """Appends let DuckDB store rows in any order; other queries keep the default."""
    got = store.con.execute("SELECT current_setting('preserve_insertion_order')").fetchall()
    return bool(got[0][0])


def test_read_only_opens_an_existing_store(tmp_path: Path) -> None:
    with Store(tmp_path / "h") as s:
        s.append(Table.FLOWS, _flows(3))
    with Store(tmp_path / "h", read_only=True) as s:
        assert s.counts().flows == 3
        assert s.con.execute("SELECT count(community_id) FROM flows").fetchall() == [(3,)]
        with pytest.raises(duckdb.Error):
            s.append(Table.FLOWS, _flows(1))


def test_read_only_without_a_store_says_so(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no store at"):
        Store(tmp_path / "none", read_only=True)
    assert not (tmp_path / "none").exists()


def test_read_only_while_another_process_writes_is_a_clear_error(tmp_path: Path) -> None:
    import subprocess
    import sys

    home = tmp_path / "h"
    Store(home).close()
    with Store(home):
        code = (f"from hemostat.store import Store; "
                f"Store(__import__('pathlib').Path({str(home)!r}), read_only=True)")  # fmt: skip
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode != 0
    assert "StoreError" in done.stderr and "another hemostat" in done.stderr


def test_begin_ingest_takes_a_source_name(store: Store) -> None:
    with store.transaction():
        ingest_id = store.begin_ingest("udp://0.0.0.0:2055", "listen:1", "netflow_udp")
    assert store.con.execute("SELECT id, path FROM ingests").fetchall() == [
        (ingest_id, "udp://0.0.0.0:2055")
    ]


def test_random_identifiers_are_stored_uncompressed(store: Store) -> None:
    """Hashes and Zeek uids barely compress; trying costs a sixth of the ingest's CPU."""
    sql = store.con.execute("SELECT sql FROM duckdb_tables() WHERE table_name = 'flows'")
    ddl = sql.fetchall()[0][0]
    assert "community_id VARCHAR USING COMPRESSION Uncompressed" in ddl
    assert "conn_id VARCHAR USING COMPRESSION Uncompressed" in ddl
    assert "src_ip VARCHAR," in ddl  # the rest is compressed as DuckDB sees fit


def test_arrow_flows_without_snapshots_keep_repeated_conn_ids(store: Store) -> None:
    """Slices of one long connection share its conn_id: closed rows are never merged."""
    flows = _flows(3).append_column("conn_id", pa.array(["C1"] * 3))
    flows = flows.append_column("open", pa.array([False] * 3))
    assert store.append(Table.FLOWS, flows) == 3
    assert store.counts().flows == 3

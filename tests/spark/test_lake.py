"""The Parquet lake: hive partitions per site and day, zstd, sorted, idempotent per day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from hemostat import lake
from hemostat.errors import StoreError
from hemostat.schema import Table
from hemostat.store import Store

T0 = datetime(2024, 3, 4, 22, tzinfo=UTC)


def flows(n: int, start: datetime = T0) -> pa.Table:
    """``n`` flows from two hosts, one every 10 minutes from ``start``, newest first."""
    ts = [start + timedelta(minutes=10 * i) for i in reversed(range(n))]
    return pa.table({
        "ts": pa.array(ts, pa.timestamp("us", "UTC")),
        "end_ts": pa.array(ts, pa.timestamp("us", "UTC")),
        "src_ip": [f"10.1.0.{i % 2 + 1}" for i in range(n)],
        "dst_ip": ["203.0.113.9"] * n,
        "src_port": pa.array([50000 + i for i in range(n)], pa.int32()),
        "dst_port": pa.array([443] * n, pa.int32()), "proto": ["tcp"] * n, "bytes_out": list(range(n)),
        "host": [f"h{i % 2}" for i in range(n)],
    })  # fmt: skip


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "home")
    s.append(Table.FLOWS, flows(24))  # 22:00 on the 4th to 01:50 on the 5th
    return s


def files(root: Path, table: str) -> list[Path]:
    return sorted((root / table).glob("site=*/date=*/*.parquet"))


def test_each_site_and_day_is_one_sorted_zstd_partition(store: Store, tmp_path: Path) -> None:
    written = store.export(tmp_path / "lake", "CHU Nord")
    assert written[Table.FLOWS] == 24 and written[Table.DNS] == 0
    parts = files(tmp_path / "lake", "flows")
    assert [p.parent.relative_to(tmp_path / "lake") for p in parts] == [
        Path("flows/site=CHU%20Nord/date=2024-03-04"), Path("flows/site=CHU%20Nord/date=2024-03-05")
    ]  # fmt: skip
    first = pq.read_table(parts[0])
    assert first.num_rows == 12 and "ingest_id" not in first.column_names
    ts = first.column("ts").to_pylist()
    assert ts == sorted(ts)
    meta = pq.ParquetFile(parts[1]).metadata
    assert meta.row_group(0).column(0).compression == "ZSTD"
    assert not (tmp_path / "lake" / "dns").exists()


def test_exporting_a_day_again_replaces_it(store: Store, tmp_path: Path) -> None:
    store.export(tmp_path / "lake", "nord")
    store.append(Table.FLOWS, flows(3, T0 + timedelta(hours=4)))  # 3 more on the 5th
    written = store.export(tmp_path / "lake", "nord", since=T0 + timedelta(hours=3))
    assert written[Table.FLOWS] == 15  # every row of the 5th, not only the new ones
    rows = {p.parent.name: pq.read_table(p).num_rows for p in files(tmp_path / "lake", "flows")}
    assert rows == {"date=2024-03-04": 12, "date=2024-03-05": 15}


def test_sites_share_one_lake(store: Store, tmp_path: Path) -> None:
    store.export(tmp_path / "lake", "nord")
    other = Store(tmp_path / "other")
    other.append(Table.FLOWS, flows(2, T0 + timedelta(days=3)))
    other.export(tmp_path / "lake", "sud")
    assert lake.sites(lake.location(tmp_path / "lake")) == {
        "nord": ["2024-03-04", "2024-03-05"], "sud": ["2024-03-07"]
    }  # fmt: skip


@pytest.mark.parametrize(
    ("name", "part"),
    [("CHU Nord", "site=CHU%20Nord"), ("St-Malo/Hôpital", "site=St-Malo%2FH%C3%B4pital")],
)
def test_site_names_become_directory_names(name: str, part: str) -> None:
    assert lake.site_dir(name) == part


def test_a_nameless_site_or_an_unknown_url_is_refused() -> None:
    with pytest.raises(StoreError, match="give the site a name"):
        lake.site_dir("  ")
    with pytest.raises(StoreError, match="s3://bucket/prefix"):
        lake.location("ftp://example.org/lake")


def test_s3_urls_name_the_bucket_for_spark() -> None:
    where = lake.location("s3://bucket/hospitals/")
    assert where.remote and where.table(Table.DNS) == "s3a://bucket/hospitals/dns"
    assert not lake.location(Path("/srv/lake")).remote


def test_the_command_writes_the_home_lake(store: Store, tmp_path: Path) -> None:
    from hemostat.cli import lake as lake_cli
    from hemostat.cli.base import app

    store.close()
    (tmp_path / "home" / "inventory.yaml").write_text("site: CHU Sud\n")
    home = str(tmp_path / "home")
    done = CliRunner().invoke(app, ["--home", home, "lake", "export"])
    assert done.exit_code == 0, done.output
    assert lake_cli.site_of(None) == "CHU Sud"
    assert len(files(tmp_path / "home" / "lake", "flows")) == 2
    listed = CliRunner().invoke(app, ["--home", home, "lake", "sites"])
    assert "CHU Sud" in listed.output and "2024-03-05" in listed.output
    bad = CliRunner().invoke(app, ["--home", home, "lake", "export", "--since", "yesterday"])
    assert bad.exit_code != 0 and "YYYY-MM-DD" in str(bad.exception)

"""Choosing the engine: DuckDB reads the store, Spark needs a lake and a site."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from hemostat.engine import Engine, EngineError, telemetry
from hemostat.lake import location
from hemostat.schema import COLUMNS, Table
from hemostat.store import Store


def test_duckdb_reads_the_store_and_takes_no_lake(tmp_path: Path) -> None:
    with Store(tmp_path / "home") as store:
        with telemetry(Engine.DUCKDB, store) as backend:
            assert backend is None  # examine() and scope() then read the store itself
        refused = pytest.raises(EngineError, match="--lake is for --engine spark")
        with refused, telemetry(Engine.DUCKDB, store, lake=str(tmp_path / "lake")):
            pass


def test_spark_needs_a_lake_and_a_site(tmp_path: Path) -> None:
    with Store(tmp_path / "home") as store:
        for lake, site in ((None, "nord"), (str(tmp_path), None)):
            with (
                pytest.raises(EngineError, match="needs --lake"),
                telemetry(Engine.SPARK, store, lake=lake, site=site),
            ):
                pass


def test_without_java_spark_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("pyspark")
    from hemostat.engine import spark

    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(EngineError, match="openjdk-17-jre-headless"):
        spark.session("local[1]")


@pytest.fixture
def small_lake(tmp_path: Path) -> Path:
    """Site ``nord``: 24 flows over two days, two hosts, as tests/spark/test_lake.py makes."""
    from tests.spark.test_lake import flows

    with Store(tmp_path / "home") as store:
        store.append(Table.FLOWS, flows(24))
        store.export(tmp_path / "lake", "nord")
    return tmp_path / "lake"


@pytest.mark.spark
def test_a_site_reads_as_the_canonical_tables(small_lake: Path, spark_session: Any) -> None:
    from hemostat.engine import spark

    backend = spark.connect(spark_session, location(small_lake), "nord")
    f = backend.table("flows")
    assert list(f.columns) == [name for name, _ in COLUMNS[Table.FLOWS]]
    assert backend.to_pyarrow(backend.table("dns").count().as_table()).to_pylist() == [
        {"CountStar(dns)": 0}
    ]  # no DNS exported: an empty table of the right columns
    # an intermediate table used twice (a CTE, run first and checkpointed), then joined
    per = f.group_by("src_ip").aggregate(n=f.count(), out=f.bytes_out.sum(), last=f.ts.max())
    both = per.join(per.filter(per.n > 1).select("src_ip", m=per.n), "src_ip")
    got = backend.to_pyarrow(both.order_by("src_ip"))
    assert got.column("last").type == pa.timestamp("us", "UTC")
    assert got.select(["src_ip", "n", "out", "m"]).to_pylist() == [
        {"src_ip": "10.1.0.1", "n": 12, "out": sum(range(0, 24, 2)), "m": 12},
        {"src_ip": "10.1.0.2", "n": 12, "out": sum(range(1, 24, 2)), "m": 12},
    ]
    assert got.column("last").to_pylist()[0].tzinfo is not None


@pytest.mark.spark
def test_an_unknown_site_names_the_sites_the_lake_holds(
    small_lake: Path, spark_session: Any
) -> None:
    from hemostat.engine import spark

    with pytest.raises(EngineError, match=r"no site 'sud' .*\(sites: nord\)"):
        spark.connect(spark_session, location(small_lake), "sud")

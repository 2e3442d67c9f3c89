"""Every detector's expression compiles for PySpark too (the scale-out engine, DESIGN §8)."""

from __future__ import annotations

from pathlib import Path

import ibis
import pytest

from hemostat.detect import DETECTORS, Context, Window
from hemostat.inventory import Datastore, ExpectedTransfer, Host, Inventory, Provider
from hemostat.schema import ACCESS, DNS, FLOWS
from tests.detect.conftest import DAY, T0

INTEL = Path(__file__).parents[1] / "data" / "intel"
SITE = Inventory(
    site="t", timezone="Europe/Paris",
    hosts=[Host(name="dpi-db-01", ip="10.1.2.10", role="database"),
           Host(name="dns-01", ip="10.1.0.53", role="dns")],
    datastores=[Datastore(name="dpi", host="10.1.2.10", ports=[5432],
                          objects=["postgresql://dpi/"], category="patient")],
    providers=[Provider(name="vendor", sources=["203.0.113.0/24"], accounts=["vx"],
                        hosts=["10.1.3.0/24"], hours="08:00-19:00")],
    expected_transfers=[ExpectedTransfer(name="backup", src="10.1.9.5", dst=["198.51.100.0/28"])],
)  # fmt: skip


@pytest.fixture
def spark_options(monkeypatch: pytest.MonkeyPatch) -> None:
    """The pyspark option block Ibis creates when pyspark is imported (not installed here)."""
    if ibis.options.pyspark is None:

        class Options(ibis.config.Config):
            treat_nan_as_null: bool = False

        monkeypatch.setattr(ibis.options, "pyspark", Options())


@pytest.mark.usefixtures("spark_options")
@pytest.mark.parametrize("name", list(DETECTORS))
def test_the_expression_compiles_for_pyspark(name: str) -> None:
    tables = [
        ibis.table(ibis.Schema.from_pyarrow(schema), name=table)
        for schema, table in ((FLOWS, "flows"), (DNS, "dns"), (ACCESS, "access"))
    ]
    ctx = Context(*tables, Window(T0, T0 + DAY), SITE)
    cls = DETECTORS[name]
    detector = cls(indicators=str(next(INTEL.iterdir()))) if name == "threat_intel" else cls()  # type: ignore[call-arg]
    sql = ibis.to_sql(detector.run(ctx), dialect="pyspark")
    assert "SELECT" in sql and any(f"`{t}`" in sql for t in ("flows", "dns", "access"))
    assert "STR_SPLIT" not in sql.upper()  # DuckDB-only; Spark's SPLIT takes a regex

"""A PostgreSQL query as the export: a throwaway PostgreSQL cluster listening on a unix socket
only, loaded with the patient export; the index built from the query equals the CSV one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import hemostat.cli.leak  # noqa: F401  (registers `leak` on the app)
from hemostat.cli.base import app
from hemostat.leak import LeakError, build_index, load_index, match
from hemostat.schema import Category
from tests.postgres import cluster

from .conftest import SECRET, Dumps, Site

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """``postgresql://postgres@/postgres?host=DIR``: a fresh cluster, stopped and removed after."""
    with cluster("hemostat-pg-") as (url, _):
        yield url


@pytest.fixture(scope="module")
def loaded(postgres_url: str, site: Site) -> str:
    with psycopg.connect(postgres_url) as conn, conn.cursor() as cur:
        cur.execute("set datestyle = 'ISO, DMY'")
        cur.execute(
            "create table patients (ipp int primary key, nom text, prenom text, "
            "date_naissance date, nir text, email text, ville text)"
        )
        with cur.copy("copy patients from stdin (format csv, header true, delimiter ';')") as copy:
            copy.write(site.dpi_csv.read_bytes())
    return postgres_url


QUERY = "select nir as num_secu, nom, prenom, date_naissance, email from patients order by ipp"


def test_query_index_equals_csv_index(
    loaded: str, site: Site, site_index: Path, dumps: Dumps, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    (home / "secrets").mkdir(parents=True)
    (home / "secrets" / "leak.key").write_text(SECRET.hex())
    done = CliRunner().invoke(
        app,
        [
            "--home",
            str(home),
            "leak",
            "index",
            "--datastore",
            "dpi",
            "--category",
            "patient",
            "--source",
            loaded,
            "--query",
            QUERY,
        ],
    )
    assert done.exit_code == 0, done.output
    assert "2,000 records, 2,000 people" in done.output
    (via_sql,) = load_index(home / "leak-index", SECRET)
    (via_csv,) = [s for s in load_index(site_index, SECRET) if s.datastore == "dpi"]
    assert (via_sql.records, via_sql.subjects, via_sql.hashes, dict(via_sql.kinds)) == (
        via_csv.records,
        via_csv.subjects,
        via_csv.hashes,
        dict(via_csv.kinds),
    )
    assert via_sql.source.startswith("postgresql://postgres@/postgres")
    assert (
        via_sql.columns["num_secu"] == "nir" and via_sql.columns["date_naissance"] == "birth_date"
    )
    key = ["kind", "hash", "record", "subject"]
    assert (
        pq.read_table(via_sql.path)
        .select(key)
        .sort_by([(k, "ascending") for k in key])
        .equals(pq.read_table(via_csv.path).select(key).sort_by([(k, "ascending") for k in key]))
    )
    got = match([dumps.patients_csv], index_dir=home / "leak-index", secret=SECRET)
    assert (got.stores[0].matched_records, got.stores[0].matched_subjects) == (137, 137)


def test_query_errors_name_the_url_without_password(loaded: str, tmp_path: Path) -> None:
    with pytest.raises(LeakError, match=r"query failed .*select nope from patients"):
        build_index(
            loaded,
            query="select nope from patients",
            datastore="dpi",
            category=Category.PATIENT,
            secret=SECRET,
            index_dir=tmp_path,
        )
    with pytest.raises(LeakError, match="needs --query"):
        build_index(
            loaded, datastore="dpi", category=Category.PATIENT, secret=SECRET, index_dir=tmp_path
        )
    bad = "postgresql://u:hunter2@/db?host=/nonexistent-hemostat"
    with pytest.raises(LeakError, match=r"postgresql://u:\*\*\*@/db.*cannot connect") as caught:
        build_index(
            bad,
            query="select 1",
            datastore="dpi",
            category=Category.PATIENT,
            secret=SECRET,
            index_dir=tmp_path,
        )
    assert "hunter2" not in str(caught.value)
    assert not list(tmp_path.glob("*.parquet")) and not list(tmp_path.glob(".*"))

"""A PostgreSQL query as the export: a throwaway PostgreSQL cluster listening on a unix socket
only, loaded with the patient export; the index built from the query equals the CSV one."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
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

from .conftest import SECRET, Dumps, Site

pytestmark = pytest.mark.slow


def _bindir() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), reverse=True)
    which = shutil.which("initdb")
    initdb = found[0] if found else Path(which) if which else None
    return initdb.parent if initdb and (initdb.parent / "pg_ctl").exists() else None


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """``postgresql://postgres@/postgres?host=DIR``: a fresh cluster, stopped and removed after."""
    bindir = _bindir()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    as_user: list[str] = []
    root = Path(tempfile.mkdtemp(prefix="hemostat-pg-"))  # short: a socket path has 107 bytes
    if os.geteuid() == 0:  # the server refuses to run as root
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(root)
            pytest.skip("running as root and there is no `postgres` user to run the server")
        shutil.chown(root, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data, pg_ctl = root / "data", str(bindir / "pg_ctl")

    def run(*argv: str) -> None:
        subprocess.run([*as_user, *argv], check=True, capture_output=True, timeout=120)

    try:
        run(
            str(bindir / "initdb"),
            *f"-D {data} -U postgres -A trust -E UTF8 --locale=C --no-sync".split(),
        )
        options = f"-c listen_addresses='' -c unix_socket_directories='{root}' -F"
        run(pg_ctl, *f"-D {data} -l {root / 'log'} -w -t 60 start".split(), "-o", options)
        yield f"postgresql://postgres@/postgres?host={root}"
    finally:
        subprocess.run(
            [*as_user, pg_ctl, "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(root, ignore_errors=True)


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

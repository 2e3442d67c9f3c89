"""``hemostat leak index`` and ``hemostat leak match`` as a user runs them."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

import hemostat.cli.leak  # noqa: F401  (registers `leak` on the app)
from hemostat.cli.base import app

from .conftest import Dumps, Site

# the entry point with the leak commands registered, as `hemostat` will run it
MAIN = "import hemostat.cli.leak; from hemostat.cli import main; main()"


def run_cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", MAIN, "--home", str(home), *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_index_then_match_json(tmp_path: Path, site: Site, dumps: Dumps) -> None:
    runner, home = CliRunner(), tmp_path / "home"
    for source, name, category in ((site.dpi_csv, "dpi", "patient"), (site.rh_csv, "rh", "staff")):
        done = runner.invoke(
            app,
            [
                "--home",
                str(home),
                "leak",
                "index",
                "--datastore",
                name,
                "--category",
                category,
                "--source",
                str(source),
            ],
        )
        assert done.exit_code == 0, done.output
    assert "created the leak secret" in done.output or (home / "secrets" / "leak.key").exists()
    assert stat.S_IMODE((home / "secrets" / "leak.key").stat().st_mode) == 0o600
    done = runner.invoke(
        app,
        [
            "--home",
            str(home),
            "leak",
            "match",
            "--json",
            str(dumps.patients_csv),
            str(dumps.staff_json),
        ],
    )
    assert done.exit_code == 0, done.output
    out = json.loads(done.stdout)
    assert set(out) == {
        "rows",
        "unreadable",
        "no_identifier",
        "unmatched",
        "matched",
        "dumps",
        "datastores",
        "categories",
    }
    assert set(out["datastores"][0]) == {
        "datastore",
        "category",
        "matched_records",
        "matched_subjects",
        "records",
        "subjects",
        "share_records",
        "share_subjects",
        "kinds",
    }
    dpi, rh = out["datastores"]
    assert (dpi["datastore"], dpi["matched_records"], dpi["records"], dpi["share_records"]) == (
        "dpi",
        137,
        2000,
        0.0685,
    )
    assert (rh["matched_subjects"], out["unmatched"], out["no_identifier"]) == (20, 60, dumps.empty)
    assert out["categories"]["staff"] == {
        "indexed": True,
        "matched_records": 20,
        "matched_subjects": 20,
        "records": 300,
        "subjects": 300,
    }
    assert out["categories"]["research"]["indexed"] is False


def index_staff(home: Path, site: Site) -> None:
    done = run_cli(home, "leak", "index", "--datastore", "rh", "--category", "staff",
                   "--source", str(site.rh_csv))  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_match_table_and_column_override(tmp_path: Path, site: Site) -> None:
    home = tmp_path / "home"
    index_staff(home, site)
    dump = tmp_path / "dump.csv"
    person = site.staff[0]
    dump.write_text(f"agent|code\n{person.first} {person.last}|{person.matricule}\nX Y|MAT-0\n")
    done = run_cli(home, "leak", "match", str(dump), "--column", "staff=code")
    assert done.returncode == 0, done.stderr
    assert "1 / 300 (0.3%)" in done.stdout and "staff_number 1" in done.stdout
    assert "patient: no data store of this category is indexed" in done.stdout


def test_bad_dump_is_one_error_line(tmp_path: Path, site: Site) -> None:
    home = tmp_path / "home"
    index_staff(home, site)
    bad = tmp_path / "bad.json"
    bad.write_text('[{"nom": "Dupont",')
    no_ids = tmp_path / "cities.csv"
    no_ids.write_text("ville;code\nLyon;69001\n")
    for args, message in (
        ([str(bad)], "bad.json: not valid JSON"),
        ([str(no_ids)], "cities.csv: no column holds"),
        ([str(no_ids), "--column", "nir=NUM_SECU"], "--column names 'NUM_SECU'"),
        ([str(bad), "--secret-file", str(tmp_path / "none.key")], "none.key: no leak secret"),
    ):
        done = run_cli(home, "leak", "match", *args)
        assert done.returncode == 1, done.stderr
        assert done.stderr.startswith("error: ") and message in done.stderr
        assert "Traceback" not in done.stderr + done.stdout


def test_index_errors(tmp_path: Path, site: Site) -> None:
    home = tmp_path / "home"
    for args, message in (
        (["--source", str(tmp_path / "nope.csv")], "nope.csv: no such file"),
        (["--source", "postgresql://u:pw@/db?host=/nonexistent"], "needs --query"),
        (["--source", str(site.rh_csv), "--column", "colour=x"], "expected KIND=COLUMN"),
        (["--source", str(site.rh_csv), "--datastore", "../etc"], "use letters, digits"),
        (
            ["--source", str(site.rh_csv), "--secret-file", str(home / "leak-index" / "k")],
            "must not be kept inside",
        ),
    ):
        argv = ["leak", "index", "--datastore", "rh", "--category", "staff", *args]
        done = run_cli(home, *argv)
        assert done.returncode == 1 and message in done.stderr, done.stderr
        assert "Traceback" not in done.stderr

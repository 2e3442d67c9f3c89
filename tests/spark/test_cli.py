"""``--engine spark`` on the command line as a user runs it: whatever is missing (PySpark,
Java, the site in the lake) is one ``error:`` line saying what to do, never a traceback, and
is said before a JVM starts. (The commands doing real work on Spark are in
test_equivalence.py, which drives one of its sites through them.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hemostat.schema import Table
from hemostat.store import Store
from tests.spark.test_lake import flows


def hemostat(
    home: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hemostat.cli", "--home", str(home), *args],
        capture_output=True, text=True, timeout=120, check=False, env=env,
    )  # fmt: skip


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A home of site ``nord`` whose flows are exported to HOME/lake."""
    home = tmp_path / "home"
    with Store(home) as store:
        store.append(Table.FLOWS, flows(24))
        store.export(home / "lake", "nord")
    (home / "inventory.yaml").write_text("site: nord\n")
    return home


def one_error(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    return lines[0]


def test_without_pyspark_both_commands_say_which_extra_to_install(
    home: Path, tmp_path: Path
) -> None:
    hidden = tmp_path / "no-pyspark"
    hidden.mkdir()
    (hidden / "pyspark.py").write_text("raise ImportError(\"No module named 'pyspark'\")\n")
    env = {**os.environ, "PYTHONPATH": str(hidden)}  # shadows the installed PySpark
    for command in (["detect"], ["scope", "INC-00000000"]):
        done = hemostat(home, *command, "--engine", "spark", env=env)
        assert one_error(done) == "error: PySpark is not installed: pip install 'hemostat[spark]'"


def test_without_java_spark_says_to_install_java_17(home: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "JAVA_HOME"}
    env["PATH"] = str(home / "no-bin")  # no java on it
    done = hemostat(home, "detect", "--engine", "spark", env=env)
    assert one_error(done) == (
        "error: Spark needs Java 17: apt-get install openjdk-17-jre-headless (or set JAVA_HOME)"
    )


def refused(home: Path, *args: str) -> str:
    """The message a command run in process stops with (``main`` prints it as one line)."""
    from hemostat.cli import app
    from hemostat.errors import HemostatError

    done = CliRunner().invoke(app, ["--home", str(home), *args])
    assert isinstance(done.exception, HemostatError), done.output
    return str(done.exception)


def test_a_site_the_lake_lacks_is_named_with_those_it_holds(home: Path) -> None:
    assert refused(home, "detect", "--engine", "spark", "--site", "sud") == (
        f"no site 'sud' in the lake {home / 'lake'} (sites: nord); give --site, "
        "or export it with hemostat lake export"
    )
    elsewhere = refused(home, "scope", "INC-00000000", "--engine", "spark",
                        "--lake", str(home / "other"))  # fmt: skip
    assert elsewhere.startswith("no site 'nord' in the lake") and "(sites: none)" in elsewhere


def test_options_that_do_not_go_together_are_refused(home: Path) -> None:
    lake = refused(home, "detect", "--lake", str(home / "lake"))
    assert lake == "--lake is for --engine spark; DuckDB reads the store"
    report = refused(home, "scope", "INC-00000000", "--engine", "spark",
                     "--report", str(home / "r.html"))  # fmt: skip
    assert report.startswith("--report needs --engine duckdb")
    with Store(home, read_only=True) as store:  # nothing was detected or written
        assert store.con.execute("SELECT count(*) FROM detections").fetchall() == [(0,)]

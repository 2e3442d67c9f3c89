"""The command line as a user runs it: exit codes, one-line errors, no tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def hemostat(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hemostat.cli", "--home", str(home), *args],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_ingest_json_report_and_status(tmp_path: Path, shared: Path) -> None:
    done = hemostat(tmp_path, "ingest", "--json", str(shared / "rita-zeek/truncated/conn.log"))
    assert done.returncode == 0, done.stderr  # some lines skipped: reported, not a failure
    (report,) = json.loads(done.stdout)
    assert (report["rows"], report["bad_lines"]) == ({"flows": 58}, 1)
    assert report["bad"][0].endswith("truncated/conn.log:67: truncated line: "
                                     "'1517336086.507674\\tCWjAXr3YklCCTQsYPg\\t10.55.182.100"
                                     "\\t14275\\t52.'")  # fmt: skip
    status = json.loads(hemostat(tmp_path, "status", "--json").stdout)
    assert status["tables"]["flows"]["rows"] == 58 and status["files"] == 1


def test_refused_file_exits_non_zero_without_traceback(tmp_path: Path, shared: Path) -> None:
    done = hemostat(tmp_path, "ingest", str(shared / "rita-zeek/text_file/conn.log"))
    assert done.returncode == 1
    assert "not a recognised format" in done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr


def test_strict_refuses_and_stores_nothing(tmp_path: Path, shared: Path) -> None:
    done = hemostat(tmp_path, "ingest", "--strict", str(shared / "rita-zeek/truncated/conn.log"))
    assert done.returncode == 1
    assert json.loads(hemostat(tmp_path, "status", "--json").stdout)["tables"]["flows"]["rows"] == 0


def test_missing_path_is_one_line_error(tmp_path: Path) -> None:
    done = hemostat(tmp_path, "ingest", str(tmp_path / "nope.log"))
    assert done.returncode == 1
    assert done.stderr.strip().startswith("error: ") and "no such file" in done.stderr
    assert "Traceback" not in done.stderr


def test_inventory_error_names_line(tmp_path: Path) -> None:
    inv = tmp_path / "inv.yaml"
    inv.write_text("site: X\ndatastores:\n  - {name: d, category: nope}\n")
    done = hemostat(tmp_path, "inventory", "load", str(inv))
    assert done.returncode == 1
    assert "inv.yaml:3: datastores[0].category" in done.stderr


def test_every_command_has_help() -> None:
    from typer.main import get_command

    from hemostat.cli import app

    group = get_command(app)
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        assert command.help, f"`hemostat {name}` has no help text"


def test_simulate_writes_logs_and_truth(tmp_path: Path) -> None:
    out = tmp_path / "sim"
    done = hemostat(tmp_path, "simulate", "--out", str(out), "--hosts", "50", "--scenario", "c2_beacon")
    assert done.returncode == 0, done.stderr
    truth = json.loads((out / "truth.json").read_text())
    assert "c2_beacon" in json.dumps(truth)
    assert list(out.glob("conn.*.log")) and (out / "inventory.yaml").exists()
    bad = hemostat(tmp_path, "simulate", "--out", str(out), "--scenario", "nope")
    assert bad.returncode == 1 and "unknown scenario 'nope'" in bad.stderr


def test_ingest_of_a_directory_prints_totals_and_only_files_to_look_at(
    tmp_path: Path, shared: Path
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    for i in range(6):  # six good hourly files: counted, not listed
        src = shared / "rita-zeek/open_conns/closed/conn.log"
        (logs / f"conn.0{i}.log").write_text(src.read_text().replace("C", f"C{i}", 1))
    (logs / "conn.cut.log").write_bytes((shared / "rita-zeek/truncated/conn.log").read_bytes())
    (logs / "notes.txt").write_bytes((shared / "rita-zeek/text_file/conn.log").read_bytes())
    done = hemostat(tmp_path / "home", "ingest", str(logs))
    assert done.returncode == 0, done.stderr
    assert "zeek_tsv" in done.stdout and "ingest: 8 file(s)" in done.stdout
    assert "conn.0" not in done.stdout  # the good files are only in the totals
    assert f"{logs / 'conn.cut.log'}: 1 bad line(s) skipped" in done.stdout
    assert f"{logs / 'notes.txt'}: unrecognised format" in done.stdout
    assert "conn.cut.log:67: truncated line" in done.stderr
    reports = json.loads(hemostat(tmp_path / "home", "ingest", "--json", str(logs)).stdout)
    assert len(reports) == 8 and sum(r["duplicate"] for r in reports) == 7  # full detail

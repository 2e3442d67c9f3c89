"""``hemostat agent``: arguments whichever way it is called, one-line errors without
traceback, ``--once`` with the collector down (not an error: the batch waits in the spool),
``install`` (unit and 0600 token file; the shipped unit is this code's output) and
``status``."""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from hemostat.agent import service
from hemostat.agent.cli import _split, main

from .conftest import TOKEN, Collector

PACKAGED = Path(__file__).parents[2] / "packaging" / "hemostat-agent.service"


def test_whole_hemostat_argv_or_agent_options_alone() -> None:
    assert _split(["--home", "/h", "agent", "--collector", "u"]) == (
        Path("/h"),
        ["--collector", "u"],
    )
    assert _split(["--home=/h", "agent", "install", "-x"]) == (Path("/h"), ["install", "-x"])
    assert _split(["--collector", "u", "--once"]) == (None, ["--collector", "u", "--once"])
    assert _split(["agent", "status"]) == (None, ["status"])


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["agent", "--token", TOKEN], 2, "the following arguments are required: --collector"),
        (["agent", "--collector", "https://c", "--token", TOKEN, "--token-file", "f"], 2,
         "not allowed with argument"),
        (["agent", "--collector", "https://c", "--token", TOKEN, "--interval", "-1"], 2,
         "--interval: must be above 0"),
        (["agent", "--collector", "https://c", "--token-file", "/nonexistent/token"], 1,
         "error: /nonexistent/token: cannot read the token file: No such file or directory"),
        (["agent", "--collector", "https://c", "--token", "hunter2"], 1,
         "error: --token: not a hemostat token"),
        (["agent", "--collector", "ftp://c", "--token", TOKEN], 1,
         "error: --collector 'ftp://c': expected https://HOST[:PORT]"),
        (["agent", "--collector", "https://c", "--token", TOKEN, "--tail", "x.log"], 1,
         "error: --tail 'x.log': expected FORMAT:PATH"),
        (["agent", "--collector", "https://c", "--token", TOKEN, "--ca", "/nonexistent.pem"], 1,
         "error: --ca /nonexistent.pem: no such readable file"),
    ],
)  # fmt: skip
def test_bad_arguments_are_one_line_errors(
    argv: list[str], code: int, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == code and message in err and "Traceback" not in err


def test_once_with_the_collector_down_keeps_the_batch(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text(TOKEN + "\n")
    token.chmod(0o600)
    state = tmp_path / "state"
    done = subprocess.run(
        [sys.executable, "-m", "hemostat.agent.cli", "--collector", "http://127.0.0.1:9",
         "--token-file", str(token), "--state", str(state), "--no-sockets", "--once"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "collector unreachable" in done.stderr
    assert TOKEN.split("_")[2] not in done.stderr
    assert len(list((state / "spool" / "batches").glob("*.json.gz"))) == 1


def test_install_writes_the_unit_and_a_private_token(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    token_path = tmp_path / "etc" / "agent.token"
    main(["agent", "install", "--collector", "https://collector:8443", "--token", TOKEN,
          "--ca", str(ca), "--unit-dir", str(tmp_path / "units"), "--token-path",
          str(token_path), "--state", str(tmp_path / "state"), "--name", "db 01",
          "--tail", "pglog:/var/log/postgresql/postgresql-15-main.log"])  # fmt: skip
    unit = (tmp_path / "units" / service.UNIT_NAME).read_text()
    exec_start = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
    assert f"--token-file {token_path}" in exec_start and TOKEN not in unit
    assert '--name "db 01"' in exec_start and f"--ca {ca}" in exec_start
    assert "--tail pglog:/var/log/postgresql/postgresql-15-main.log" in exec_start
    assert f"ReadWritePaths={tmp_path / 'state'}" in unit and "Restart=always" in unit
    assert token_path.read_text() == TOKEN + "\n"
    assert stat.S_IMODE(token_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(token_path.parent.stat().st_mode) == 0o700
    assert "systemctl daemon-reload" in capsys.readouterr().out


def test_the_packaged_unit_is_what_install_writes() -> None:
    assert PACKAGED.read_text() == service.render(service.EXAMPLE)
    assert "CapabilityBoundingSet=" + service.CAPABILITIES in PACKAGED.read_text()


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    unit = tmp_path / service.UNIT_NAME
    unit.write_text(service.render([sys.executable, "-m", "hemostat.agent.cli", "--once"]))
    done = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0 and done.stderr.strip() == "", done.stderr


def test_status(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "agent" / "spool" / "batches").mkdir(parents=True)
    main(["--home", str(tmp_path), "agent", "status", "--json"])
    found = json.loads(capsys.readouterr().out)
    assert found["state"] == str(tmp_path / "agent") and found["spool_batches"] == 0
    with pytest.raises(SystemExit):
        main(["agent", "status", "--state", str(tmp_path / "nowhere")])
    assert "error: " in capsys.readouterr().err


def test_sigterm_stops_the_agent_cleanly(tmp_path: Path, collector: Collector) -> None:
    eve = tmp_path / "eve.json"
    eve.write_text('{"event_type": "flow"}\n')
    env = {**os.environ, "HEMOSTAT_AGENT__BATCH_SECONDS": "0.2"}
    agent = subprocess.Popen(
        [sys.executable, "-m", "hemostat.agent.cli", "--collector", collector.url, "--token",
         TOKEN, "--state", str(tmp_path / "state"), "--no-sockets", "--tail",
         f"suricata_eve:{eve}"],
        stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        collector.wait(lambda: any(b["raw"] for b in collector.batches), timeout=20)
        agent.send_signal(signal.SIGTERM)
        _, err = agent.communicate(timeout=15)
    finally:
        agent.kill()
    assert agent.returncode == 0 and "Traceback" not in err and "stopping" in err
    assert TOKEN not in err

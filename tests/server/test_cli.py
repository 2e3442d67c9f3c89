"""``hemostat init``, ``agent enroll``, ``token create|list|revoke`` and ``serve``'s refusals."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

import hemostat.cli.serve  # noqa: F401  (registers the commands)
from hemostat.cli import app
from hemostat.server.auth import Tokens
from tests.server.conftest import LAUNCH


def cli(home: Path, *args: str) -> str:
    done = CliRunner().invoke(app, ["--home", str(home), *args])
    assert done.exit_code == 0, done.output
    return done.output


def test_init_enroll_and_tokens(home: Path) -> None:
    out = cli(home, "init", "--name", "collector.chu.local", "--ip", "10.1.2.3")
    assert "created the site CA" in out and (home / "pki" / "ca.pem").exists()
    assert "kept the site CA" in cli(home, "init")

    enrolled = json.loads(cli(home, "agent", "enroll", "dpi-db-01", "--ip", "10.0.0.5", "--json"))
    assert Tokens(home).verify(enrolled["token"]).ip == "10.0.0.5"  # type: ignore[union-attr]
    plain = cli(home, "token", "create", "soc", "--role", "analyst")
    text = plain.strip().splitlines()[-1]
    assert text.startswith("hst_") and Tokens(home).verify(text) is not None

    listed = json.loads(cli(home, "token", "list", "--json"))
    assert [(t["name"], t["role"]) for t in listed] == [("dpi-db-01", "agent"), ("soc", "analyst")]
    assert enrolled["token"] not in cli(home, "token", "list")

    assert "revoked" in cli(home, "token", "revoke", enrolled["id"])
    assert Tokens(home).verify(enrolled["token"]) is None


def run(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", LAUNCH, "--home", str(home), *args],
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def test_serve_refusals_are_one_line_errors(home: Path) -> None:
    done = run(home, "serve", "--bind", "0.0.0.0:0", "--insecure-http")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip() == ("error: --insecure-http is for tests on loopback only; run "
                                   "hemostat init and serve HTTPS")  # fmt: skip
    done = run(home, "token", "create", "x", "--role", "root")
    assert done.returncode == 1 and "choose agent, analyst, responder or admin" in done.stderr

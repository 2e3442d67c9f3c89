"""``hemostat contain``, ``release`` and ``audit verify`` as a user runs them."""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from hemostat.schema import Table
from hemostat.store import Store
from tests.contain.lab import Lab, missing

INVENTORY = """\
site: CHU Test
internal: [10.1.0.0/16]
hosts:
  - {name: dns-1, ip: 10.1.0.53, role: dns}
continuity:
  - {name: inbound-mail, direction: inbound, dst: 10.1.0.25, ports: [25]}
management: [10.1.0.5]
"""


@dataclass(frozen=True)
class Done:
    returncode: int
    stdout: str
    stderr: str


Cli = Callable[..., Done]


@pytest.fixture
def hemostat(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    """Run ``hemostat --home HOME ARGS...`` in this process, as the entry point does."""
    import hemostat.cli.contain  # noqa: F401  (registers the commands)
    from hemostat.cli import main

    def run(home: Path, *args: str) -> Done:
        monkeypatch.setattr(sys, "argv", ["hemostat", "--home", str(home), *args])
        capsys.readouterr()
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        out = capsys.readouterr()
        return Done(code, out.out, out.err)

    return run


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from hemostat.server.auth import Role, Tokens

    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HEMOSTAT_TOKEN", Tokens(home).create("cert", Role.RESPONDER)[1])
    (home / "inventory.yaml").write_text(INVENTORY)
    (home / "hemostat.toml").write_text("[contain]\nselftest_port = 0\n")
    now = datetime.now(UTC)
    with Store(home) as store:
        store.append(Table.FLOWS, pa.table({
            "ts": pa.array([now - timedelta(minutes=2)] * 2, pa.timestamp("us", "UTC")),
            "src_ip": ["10.1.2.10", "10.1.2.10"], "dst_ip": ["203.0.113.9", "10.1.0.5"],
            "dst_port": pa.array([443, 8443], pa.int32()), "proto": ["tcp", "tcp"],
            "bytes_out": [48_000_000, 1_000],
        }))  # fmt: skip
    return home


def test_dry_run_prints_the_rules_and_the_flows_and_audits_the_plan(
    hemostat: Cli, home: Path
) -> None:
    done = hemostat(home, "contain", "host", "10.1.2.10", "--reason", "INC-1")
    assert done.returncode == 0, done.stderr
    assert "10.1.2.10 -> 203.0.113.9:443 tcp" in done.stdout and "10.1.0.5:8443" not in done.stdout
    assert "dry run: nothing applied" in done.stdout
    as_json = json.loads(hemostat(home, "contain", "host", "10.1.2.10", "--json").stdout)
    assert as_json["applied"] is None and as_json["flows"]["bytes_out"] == 48_000_000
    human_id, json_id = done.stdout.split(":")[0], as_json["action"]["id"]
    rules = as_json["rules"].replace(json_id, human_id)
    rules = rules.replace(json_id.replace("-", "_"), human_id.replace("-", "_"))
    assert rules.startswith("table inet hemostat\ndelete table inet hemostat\n")
    assert rules in done.stdout  # verbatim: tabs kept, no line wrapped
    entries = [json.loads(line) for line in (home / "audit/actions.jsonl").read_text().splitlines()]
    assert [(e["step"], e["reason"]) for e in entries] == [("plan", "INC-1"), ("plan", "")]
    sha = hashlib.sha256(as_json["rules"].encode()).hexdigest()
    assert entries[1]["rules_sha256"] == sha and entries[1]["action"] == json_id


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("contain", "host", "10.1.0.5"), "is a management address (the collector)"),
        (("contain", "destination", "10.1.0.0/24"), "covers a management address"),
        (("contain", "site", "--ttl", "soon"), "bad time to live 'soon'"),
        (("release", "act-000000000000"), "no action act-000000000000 in force"),
    ],
)
def test_refusals_are_one_line_errors(
    hemostat: Cli, home: Path, args: tuple[str, ...], message: str
) -> None:
    done = hemostat(home, *args)
    assert done.returncode == 1 and message in done.stderr
    assert "Traceback" not in done.stdout + done.stderr


def test_audit_verify_exit_status_follows_the_chain(hemostat: Cli, home: Path) -> None:
    hemostat(home, "contain", "site")
    hemostat(home, "contain", "destination", "203.0.113.9")
    ok = hemostat(home, "audit", "verify", "--json")
    assert ok.returncode == 0 and json.loads(ok.stdout)["entries"] == 2
    log = home / "audit/actions.jsonl"
    log.write_text(log.read_text().replace('"site"', '"sitf"', 1))
    bad = hemostat(home, "audit", "verify")
    assert bad.returncode == 1 and "line 1 (seq 1): edited" in bad.stderr


@pytest.mark.netns
@pytest.mark.skipif(missing() is not None, reason=str(missing()))
def test_apply_list_and_release_in_a_namespace(hemostat: Cli, home: Path, tmp_path: Path) -> None:
    lab = Lab("cl", tmp_path)
    try:
        ns = lab.ns("node")
        done = hemostat(home, "contain", "destination", "203.0.113.9", "--apply", "--netns", ns,
                        "--json", "--ttl", "1h")  # fmt: skip
        assert done.returncode == 0, done.stderr
        action = json.loads(done.stdout)["action"]["id"]
        assert json.loads(done.stdout)["applied"]["status"] == "done"
        assert action.replace("-", "_") in lab.nft(ns, "list", "table", "inet", "hemostat")
        listed = json.loads(hemostat(home, "contain", "list", "--json", "--netns", ns).stdout)
        assert [(a["id"], a["expired"]) for a in listed] == [(action, False)]
        assert hemostat(home, "release", action, "--netns", ns).returncode == 0
        assert "hemostat" not in lab.nft(ns, "list", "tables")
        steps = [json.loads(line)["step"] for line in
                 (home / "audit/actions.jsonl").read_text().splitlines()]  # fmt: skip
        assert steps == ["plan", "apply", "release"]
    finally:
        lab.close()

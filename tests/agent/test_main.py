"""The agent's run loop against a real local collector: socket rows (from a stand-in sampler),
followed logs and auditd records of the watches the collector asks for arrive in batches with
the agent's stats; a restart resumes the logs where the spool left them; the agent's import
stays light; its settings and status."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from hemostat.agent.audit import Watches
from hemostat.agent.main import Agent, Options, agent_settings, status
from hemostat.agent.tail import TailSpec
from hemostat.config import SETTINGS, Settings
from hemostat.errors import ConfigError

from .conftest import AGENT, TOKEN, Collector
from .test_audit import AUDITCTL, EVENT

STATS = {"spool_batches", "spool_bytes", "dropped_batches", "oldest_unsent", "cpu_seconds",
         "rss_bytes", "version"}  # fmt: skip


class FakeSampler:
    def __init__(self) -> None:
        self.n, self.closed = 0, False

    def sample(self, now: float | None = None) -> list[dict[str, Any]]:
        self.n += 1
        return [{"ts": "2026-11-23T10:00:00.000000Z", "end_ts": "2026-11-23T10:00:05.000000Z",
                 "src_ip": "10.1.0.9", "src_port": 51000 + self.n, "dst_ip": "203.0.113.9",
                 "dst_port": 443, "proto": "tcp", "bytes_out": 1000, "bytes_in": 10,
                 "conn_id": f"c{self.n}", "host": "db-01", "source": "agent",
                 "not_in_contract": 1}]  # fmt: skip

    def close(self) -> None:
        self.closed = True


def _options(tmp_path: Path, collector: Collector, **kw: Any) -> Options:
    values = {"batch_seconds": 0.1, "heartbeat_seconds": 0.2, "backoff_max_seconds": 0.2,
              "audit_log": str(tmp_path / "audit.log")}  # fmt: skip
    base: dict[str, Any] = {
        "collector": collector.url, "token": TOKEN, "agent": AGENT, "state": tmp_path / "state",
        "name": "db-01", "interval": 0.1, "settings": Settings(None, {"agent": values}),
    }  # fmt: skip
    return Options(**{**base, **kw})


def _run(agent: Agent) -> threading.Thread:
    thread = threading.Thread(target=agent.run)
    thread.start()
    return thread


def _raw_lines(collector: Collector, fmt: str) -> list[str]:
    return [line for b in collector.batches for c in b["raw"] if c["format"] == fmt
            for line in c["lines"]]  # fmt: skip


def test_flows_logs_and_audit_records_reach_the_collector(
    tmp_path: Path, collector: Collector
) -> None:
    (tmp_path / "auditctl").write_text(AUDITCTL.format(d=tmp_path))
    (tmp_path / "auditctl").chmod(0o755)
    other = EVENT.format(key="no").replace(":2301)", ":2302)")
    (tmp_path / "audit.log").write_text(EVENT.format(key="hemostat") + other)
    eve = tmp_path / "eve.json"
    eve.write_text('{"event_type": "flow", "n": 1}\n')
    collector.config = {"agent": AGENT, "interval": 9.0, "watch": ["/srv/pacs/"]}
    sampler = FakeSampler()
    options = _options(tmp_path, collector, tails=(TailSpec("suricata_eve", eve),))
    agent = Agent(options, sampler=lambda host, interval: sampler,
                  watches=Watches(str(tmp_path / "auditctl")))  # fmt: skip
    thread = _run(agent)
    try:
        collector.wait(lambda: sum(len(b["flows"]) for b in collector.batches) >= 3)
        collector.wait(lambda: len(_raw_lines(collector, "auditd")) == 4)
        assert (tmp_path / "rules").read_text() == "-w /srv/pacs/ -p r -k hemostat\n"
        with eve.open("a") as fh:
            fh.write('{"event_type": "flow", "n": 2}\n')
        collector.wait(lambda: len(_raw_lines(collector, "suricata_eve")) == 2)
    finally:
        agent.stop()
        thread.join(timeout=10)
    assert not thread.is_alive() and sampler.closed
    assert (tmp_path / "rules").read_text() == ""  # watches removed on stop
    ids = [b["batch"] for b in collector.batches]
    assert ids == sorted(ids) and ids[0] == f"{AGENT}-000000000001"
    flows = [f for b in collector.batches for f in b["flows"]]
    assert all("not_in_contract" not in f for f in flows) and flows[0]["host"] == "db-01"
    assert all(set(b["stats"]) == STATS for b in collector.batches)
    assert all(key in b for b in collector.batches for key in ("created", "dns", "access"))
    assert agent.interval == 0.1  # --interval wins over the collector's


def test_a_restart_resumes_the_logs_and_keeps_numbering(
    tmp_path: Path, collector: Collector
) -> None:
    eve = tmp_path / "eve.json"
    eve.write_text("1\n2\n")
    options = _options(tmp_path, collector, tails=(TailSpec("suricata_eve", eve),),
                       sockets=False, once=True)  # fmt: skip
    Agent(options).run()
    with eve.open("a") as fh:
        fh.write("3\n")
    Agent(options).run()
    assert [[line for c in b["raw"] for line in c["lines"]] for b in collector.batches] == [
        ["1", "2"],
        ["3"],
    ]
    assert [b["batch"][-1] for b in collector.batches] == ["1", "2"]


def test_one_state_directory_one_agent(tmp_path: Path, collector: Collector) -> None:
    options = _options(tmp_path, collector, sockets=False)
    first = Agent(options)
    try:
        with pytest.raises(ConfigError, match="another agent is running"):
            Agent(options)
    finally:
        first.close()


def test_importing_the_agent_stays_light() -> None:
    code = ("import sys, hemostat.agent.main, hemostat.agent.cli; "
            "print(' '.join(m for m in ('pyarrow', 'duckdb', 'fastapi', 'typer', 'rich', "
            "'pandas', 'ibis', 'starlette', 'uvicorn', 'numpy') if m in sys.modules))")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=60)  # fmt: skip
    assert done.stdout.strip() == ""


def test_settings_from_file_and_environment(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text("[agent]\nbatch_seconds = 2\nspool_max_batches = 10\n[server]\nrate = 1.0\n")
    settings = agent_settings(path, {"HEMOSTAT_AGENT__SPOOL_MAX_BATCHES": "20"})
    assert settings.get("agent", "batch_seconds") == 2
    assert settings.get("agent", "spool_max_batches") == 20
    assert settings.get("agent", "heartbeat_seconds") == 60.0  # default
    with pytest.raises(ConfigError, match=r"unknown setting agent\.nope"):
        agent_settings(None, {"HEMOSTAT_AGENT__NOPE": "1"})
    with pytest.raises(ConfigError, match=r"agent\.spool_max_batches must be like 20000"):
        agent_settings(None, {"HEMOSTAT_AGENT__SPOOL_MAX_BATCHES": "'many'"})


def test_status_reads_the_spool(tmp_path: Path) -> None:
    options = _options(tmp_path, Collector(port=9), sockets=False, once=True)
    eve = tmp_path / "eve.json"
    eve.write_text("1\n")
    Agent(Options(**{**options.__dict__, "tails": (TailSpec("suricata_eve", eve),)})).run()
    found = status(tmp_path / "state")
    assert found["spool_batches"] == 1 and found["last_batch"] == 1
    assert found["tails"][f"suricata_eve:{eve}"]["line"] == 1
    with pytest.raises(ConfigError, match="no agent spool here"):
        status(tmp_path / "nowhere")


def test_every_agent_setting_is_documented() -> None:
    page = (Path(__file__).parents[2] / "docs" / "agent.md").read_text()
    names = [s.name for s in SETTINGS if s.section == "agent"]
    assert len(names) >= 8 and all(f"| `{name}` |" in page for name in names)

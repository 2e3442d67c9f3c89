"""Containment through the live path (issue 7): the collector's API (or its automatic
response) sends the action to the agent in ``srv``, which applies it for real; every client
runs in a lab namespace (the API calls from ``col``). Figures are printed (``pytest -s``)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hemostat.audit import AuditLog
from hemostat.store import Store
from tests.contain.lab import Lab, Sink, missing, wait_until
from tests.live.site import BIN, COLLECTOR, INTERNET, PORT, SERVER, SETTINGS, Site, hemostat

pytestmark = [pytest.mark.netns, pytest.mark.slow]

CLIENT = """
import json, ssl, sys, time, httpx
method, url, token, body, ca = sys.argv[1:6]
with httpx.Client(verify=ssl.create_default_context(cafile=ca), timeout=30) as client:
    sent = time.time()
    r = client.request(method, url, headers={"Authorization": "Bearer " + token},
                       json=json.loads(body) if body else None)
print(json.dumps({"sent": sent, "status": r.status_code, "body": r.json()}))
"""


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    if why := missing():
        pytest.skip(why)
    lab = Lab("R", tmp_path)
    try:
        yield lab
    finally:
        lab.close()


def make_site(lab: Lab, tmp_path: Path, settings: str = "", management: str = COLLECTOR) -> Site:
    site = Site(lab, tmp_path / "collector").build()
    inventory = site.home / "inventory.yaml"
    inventory.write_text(inventory.read_text().replace(f"[{COLLECTOR}]", f"[{management}]"))
    (site.home / "hemostat.toml").write_text(SETTINGS + settings)
    return site


def token(site: Site, name: str, role: str) -> str:
    out = hemostat("--home", str(site.home), "token", "create", name, "--role", role, "--json")
    return str(json.loads(out)["token"])


def api(site: Site, method: str, path: str, tok: str, body: Any = None) -> dict[str, Any]:
    """One API call from the collector's namespace: {"sent", "status", "body"}."""
    argv = ["ip", "netns", "exec", site.col, sys.executable, "-c", CLIENT, method,
            f"https://{COLLECTOR}:{PORT}{path}", tok, json.dumps(body) if body else "",
            str(site.home / "pki" / "ca.pem")]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def action(site: Site, tok: str, ident: str) -> dict[str, Any]:
    found = api(site, "GET", "/api/v1/actions", tok)["body"]["actions"]
    return next(a for a in found if a["id"] == ident)


def status_becomes(site: Site, tok: str, ident: str, wanted: str, timeout: float) -> bool:
    return wait_until(lambda: action(site, tok, ident)["status"] == wanted, timeout, 0.5)


class Recorder:
    """Samples the sink's byte count from one peer every 50 ms: bytes at any past moment."""

    def __init__(self, sink: Sink, ip: str) -> None:
        self.sink, self.ip = sink, ip
        self.samples: list[tuple[float, int]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.wait(0.05):
            status = self.sink.status()
            self.samples.append((status["t"], int(status["bytes"].get(self.ip, 0))))

    def at(self, t: float) -> int:
        return max((b for s, b in self.samples if s <= t), default=0)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)


def ingests(site: Site) -> int:
    return (
        (site.home.parent / "collector.log")
        .read_text(errors="replace")
        .count("POST /api/v1/ingest")
    )


def check_audit(site: Site) -> None:
    """(e): the audit log verifies, and the store's ``actions`` mirrors it entry for entry."""
    site.stop_collector()
    assert hemostat("--home", str(site.home), "audit", "verify").startswith("audit log intact")
    entries = AuditLog(site.home).entries()
    with Store(site.home, read_only=True) as store:
        rows = store.con.execute("SELECT seq, id, step, hash FROM actions ORDER BY seq").fetchall()
    assert [(e.seq, e.action, e.step, e.hash) for e in entries] == [tuple(r) for r in rows]
    agent_log = AuditLog(site.home.parent / "agent")
    assert agent_log.verify().ok and agent_log.entries()


def test_host_isolation_through_the_api_stops_an_upload_and_is_released(
    lab: Lab, tmp_path: Path
) -> None:
    site = make_site(lab, tmp_path)
    responder, analyst = token(site, "cert", "responder"), token(site, "soc", "analyst")
    sink = lab.sink(site.net, 443)
    site.start_collector()
    site.start_agent()
    upload = lab.upload(site.srv, INTERNET, 443, rate=2_000_000, seconds=50)
    recorder = Recorder(sink, SERVER)
    assert wait_until(lambda: sink.bytes_from(SERVER) > 500_000, 15), "the upload never ran"

    body = {"kind": "host", "target": SERVER, "apply": True, "reason": "live test"}
    refused = api(site, "POST", "/api/v1/contain", analyst, body)  # (d) analysts may not
    assert refused["status"] == 403 and not (site.home / "commands.jsonl").exists()
    dry = api(site, "POST", "/api/v1/contain", responder, {**body, "apply": False})["body"]
    assert dry["agent"]["name"] == "srv-01" and f"isolate {SERVER}" in dry["rules"]
    assert not (site.home / "commands.jsonl").exists()  # a dry run sends nothing
    before = ingests(site)
    answer = api(site, "POST", "/api/v1/contain", responder, body)
    assert answer["status"] == 200, answer
    t0, ident = answer["sent"], answer["body"]["action"]

    assert wait_until(lambda: sink.quiet(SERVER, 1.0), 10), "the upload did not stop"
    stopped = sink.last_from(SERVER) - t0
    after = sink.bytes_from(SERVER) - recorder.at(t0)
    recorder.close()
    assert upload.wait(timeout=10) == 3  # its socket was killed: the program knows at once
    assert status_becomes(site, analyst, ident, "active", 20)
    assert wait_until(lambda: ingests(site) >= before + 3, 20), "the agent stopped delivering"
    denied = api(site, "POST", f"/api/v1/release/{ident}", analyst, {"reason": "x"})
    assert denied["status"] == 403  # (d)
    figures = f"upload stopped {stopped:.2f} s after the call; {after:,} bytes after it"
    print(f"host isolation via the API: {figures}")  # noqa: T201
    assert stopped < 5.0

    assert site.agent is not None  # a restart (the table lost, as after a reboot) restores it
    site.agent.terminate()
    assert site.agent.wait(timeout=20) == 0
    lab.nft(site.srv, "delete", "table", "inet", "hemostat")
    site.start_agent()
    assert wait_until(lambda: "hemostat" in lab.nft(site.srv, "list", "tables"), 20)
    assert not lab.probe(site.srv, INTERNET, 443, timeout=1.0)

    released = api(site, "POST", f"/api/v1/release/{ident}", responder, {"reason": "done"})
    assert released["status"] == 200, released
    assert status_becomes(site, analyst, ident, "released", 20)
    assert "hemostat" not in lab.nft(site.srv, "list", "tables")
    assert lab.probe(site.srv, INTERNET, 443, timeout=3.0)  # traffic is back
    check_audit(site)
    steps = [e.step for e in AuditLog(site.home).entries() if e.action == ident]
    assert steps == ["plan", "apply", "release", "release"]


def test_an_isolation_that_cuts_the_collector_is_rolled_back(lab: Lab, tmp_path: Path) -> None:
    site = make_site(lab, tmp_path, management="10.231.1.99")  # not the collector's address
    responder = token(site, "cert", "responder")
    site.start_collector()
    site.start_agent()
    # through the CLI, which finds the collector running on HOME and goes through its API
    cli = ["ip", "netns", "exec", site.col, str(BIN / "hemostat"), "--home", str(site.home),
           "contain", "host", SERVER, "--apply", "--reason", "wrong inventory"]  # fmt: skip
    refused = subprocess.run(cli, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1 and "acting needs a responder token" in refused.stderr
    key = tmp_path / "responder.token"
    key.write_text(responder)
    done = subprocess.run([*cli, "--token-file", str(key), "--json"], capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    ident = json.loads(done.stdout)["action"]
    assert status_becomes(site, responder, ident, "rolled_back", 40)
    found = action(site, responder, ident)
    print(f"rollback: {found['detail']}")  # noqa: T201
    assert "self-test failed" in found["detail"]
    assert "hemostat" not in lab.nft(site.srv, "list", "tables")
    check_audit(site)
    steps = [e.step for e in AuditLog(site.home).entries() if e.action == ident]
    assert steps == ["plan", "rollback"]


def test_auto_response_cuts_a_bulk_upload_within_30_s(lab: Lab, tmp_path: Path) -> None:
    site = make_site(lab, tmp_path, '\n[respond]\nauto = ["exfiltration:medium:host"]\n')
    analyst = token(site, "soc", "analyst")
    sink = lab.sink(site.net, 443)
    site.start_collector()
    site.start_agent()
    started = time.time()
    upload = lab.upload(site.srv, INTERNET, 443, rate=25_000_000, seconds=50)
    assert wait_until(lambda: sink.quiet(SERVER, 1.5) and sink.bytes_from(SERVER) > 0, 50), (
        "the upload was not cut"
    )
    cut = sink.last_from(SERVER) - started
    sent = sink.bytes_from(SERVER)
    assert upload.wait(timeout=10) == 3
    found = api(site, "GET", "/api/v1/actions", analyst)["body"]["actions"]
    figures = f"upload cut {cut:.1f} s after its start; {sent:,} bytes reached the sink"
    print(f"auto-response: {figures}; {found}")  # noqa: T201
    assert cut < 30.0
    assert [(a["by"], a["target"], a["status"]) for a in found] == [("auto", SERVER, "active")]
    assert "automatic response to incident" in found[0]["reason"]
    check_audit(site)

"""Containment through the collector's API (in process): roles, dry run, sending the action
to the right agent, following its answer, release, the audit log and its mirror in the store,
and the automatic response."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from hemostat import config
from hemostat.audit import AuditLog
from hemostat.errors import ConfigError
from hemostat.inventory import load as load_inventory
from hemostat.schema import Incident, Kind
from hemostat.server.auth import Tokens
from hemostat.server.autorespond import AutoResponse, Rule
from hemostat.server.commands import Queue
from hemostat.server.respond import Responder
from hemostat.store import Store
from tests.server.conftest import Tokened, batch, gz, headers, running

AGENT_IP = "10.0.0.5"  # the Tokened agent "dpi-db-01" was enrolled with this address
INVENTORY = """site: Test
management: [10.9.0.1]
"""


@pytest.fixture
def site(tokened: Tokened) -> Tokened:
    (tokened.home / "inventory.yaml").write_text(INVENTORY)
    return tokened


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def contain(client: Any, token: str, **body: Any) -> Any:
    return client.post("/api/v1/contain", json=body, headers=bearer(token))


def poll(client: Any, token: str, gateway: bool = False) -> list[dict[str, Any]]:
    extra = {"X-Hemostat-Gateway": "1"} if gateway else {}
    answer = client.get("/api/v1/commands", headers={**bearer(token), **extra})
    assert answer.status_code == 200
    return list(answer.json()["commands"])


def answer(client: Any, token: str, command: str, status: str, detail: str = "") -> None:
    body = {"status": status, "detail": detail, "at": "2026-11-23T10:00:00.000000Z"}
    assert client.post(f"/api/v1/commands/{command}", json=body,
                       headers=bearer(token)).status_code == 200  # fmt: skip


def status(client: Any, token: str, action: str) -> str:
    found = client.get("/api/v1/actions", headers=bearer(token)).json()["actions"]
    return str(next(a for a in found if a["id"] == action)["status"])


def test_analysts_may_not_contain_or_release(site: Tokened) -> None:
    with running(site.home) as client:
        for apply in (False, True):
            denied = contain(client, site.analyst_text, kind="host", target=AGENT_IP, apply=apply)
            assert denied.status_code == 403 and "needs responder" in denied.json()["error"]
        released = client.post(
            "/api/v1/release/act-000000000000", headers=bearer(site.analyst_text)
        )
        assert released.status_code == 403
        assert contain(client, site.agent_text, kind="site").status_code == 403
        assert client.get("/api/v1/actions", headers=bearer(site.analyst_text)).json() == {
            "actions": []
        }
    assert not (site.home / "commands.jsonl").exists()
    assert not AuditLog(site.home).path.exists()


def test_dry_run_gives_the_rules_the_flows_and_the_agent(site: Tokened) -> None:
    with running(site.home) as client:
        sent = client.post("/api/v1/ingest", content=gz(batch(site.agent.id, 1, flows=5)),
                           headers=headers(site.agent_text))  # fmt: skip
        assert sent.status_code == 200
        deadline, dry = time.monotonic() + 20, None
        while time.monotonic() < deadline:  # until the writer stored the batch
            dry = contain(client, site.responder_text, kind="host", target="10.1.0.7").json()
            if dry["flows"]["connections"]:
                break
            time.sleep(0.1)
        assert dry is not None and dry["applied"] is False
        assert dry["flows"]["flows"][0]["dst_ip"] == "203.0.113.9"
        assert dry["flows"]["flows"][0]["bytes_out"] == 1000  # flow 0 of the batch
        assert "isolate 10.1.0.7" in dry["rules"] and dry["agent"] is None
        assert "no agent runs on 10.1.0.7" in dry["agent_note"]
        mine = contain(client, site.responder_text, kind="host", target=AGENT_IP).json()
        assert mine["agent"]["name"] == "dpi-db-01"
        assert poll(client, site.agent_text) == []  # a dry run sends nothing
    steps = [(e.step, e.result) for e in AuditLog(site.home).entries()]
    assert steps[-1] == ("plan", "planned (dry run)")


def test_an_isolation_goes_to_the_hosts_agent_and_is_followed_to_its_release(
    site: Tokened,
) -> None:
    with running(site.home) as client:
        sent = contain(client, site.responder_text, kind="host", target=AGENT_IP, apply=True,
                       ttl="2h", reason="INC-1")  # fmt: skip
        assert sent.status_code == 200, sent.text
        action = sent.json()["action"]
        assert poll(client, site.other_text) == []  # not the other agent's
        [command] = poll(client, site.agent_text)
        assert command["action"] == "isolate" and command["args"]["plan"]["id"] == action
        assert command["by"] == "cert" and command["reason"] == "INC-1"
        assert status(client, site.analyst_text, action) == "pending"
        answer(client, site.agent_text, command["id"], "done", "ended 1 connection")
        answer(client, site.agent_text, command["id"], "done", "ended 1 connection")  # again
        assert status(client, site.analyst_text, action) == "active"

        released = client.post(f"/api/v1/release/{action}", json={"reason": "clean"},
                               headers=bearer(site.responder_text))  # fmt: skip
        assert released.status_code == 200
        [undo] = poll(client, site.agent_text)
        assert undo["action"] == "release" and undo["args"]["action"] == action
        assert status(client, site.analyst_text, action) == "releasing"
        answer(client, site.agent_text, undo["id"], "done", "its rules are removed")
        assert status(client, site.analyst_text, action) == "released"
        again = client.post(f"/api/v1/release/{action}", headers=bearer(site.responder_text))
        assert again.status_code == 409 and "released" in again.json()["error"]
    entries = AuditLog(site.home).entries()
    assert [(e.step, e.actor) for e in entries] == [
        ("plan", "cert"), ("apply", "cert"), ("release", "cert"), ("release", "cert")]  # fmt: skip
    assert entries[1].result.startswith("done: ended 1 connection (agent dpi-db-01)")
    with Store(site.home, read_only=True) as store:  # mirrored when the collector stopped
        rows = store.con.execute("SELECT seq, id, step, hash FROM actions ORDER BY seq").fetchall()
    assert [tuple(r) for r in rows] == [(e.seq, e.action, e.step, e.hash) for e in entries]


def test_no_agent_is_a_409_and_the_gateway_carries_site_cuts(site: Tokened) -> None:
    with running(site.home) as client:
        nobody = contain(client, site.responder_text, kind="host", target="10.1.2.3", apply=True)
        assert nobody.status_code == 409 and "no agent runs on 10.1.2.3" in nobody.json()["error"]
        cut = contain(client, site.responder_text, kind="site", apply=True)
        assert cut.status_code == 409 and "--gateway" in cut.json()["error"]
        poll(client, site.other_text, gateway=True)  # web-01 declares itself the gateway
        cut = contain(client, site.responder_text, kind="site", apply=True)
        assert cut.status_code == 200 and cut.json()["agent"]["name"] == "web-01"
        [command] = poll(client, site.other_text, gateway=True)
        assert command["action"] == "isolate" and command["args"]["plan"]["kind"] == "site"
        block = contain(client, site.responder_text, kind="destination", target="203.0.113.9",
                        apply=True)  # fmt: skip
        assert block.json()["agent"]["name"] == "web-01"
        answer(client, site.other_text, command["id"], "rolled_back", "self-test failed")
        assert status(client, site.analyst_text, cut.json()["action"]) == "rolled_back"
        late = client.post(f"/api/v1/release/{cut.json()['action']}",
                           headers=bearer(site.responder_text))  # fmt: skip
        assert late.status_code == 409
    steps = [(e.step, e.result.split(":")[0]) for e in AuditLog(site.home).entries()]
    assert steps == [("plan", "planned; not sent"), ("plan", "planned; not sent"),
                     ("plan", "planned; sent to agent web-01 (" + site.other.id + ")"),
                     ("plan", "planned; sent to agent web-01 (" + site.other.id + ")"),
                     ("rollback", "rolled_back")]  # fmt: skip


# ---- refusal and warning codes (the dashboard words them; the API keeps its English) -------

#: every refusal of a contain or release request: (body, status, the exact English, field, code)
REFUSALS = [
    ({"kind": "host", "target": "10.1.2.3", "apply": True}, 409,
     "no agent runs on 10.1.2.3 (none enrolled with --ip 10.1.2.3 or sending from it): isolate "
     "it with `hemostat contain host` on the host itself, or block what it talks to at the "
     "gateway", "target", "no_host_agent"),
    ({"kind": "site", "apply": True}, 409,
     "no gateway agent has polled this collector: a site action runs on the Linux gateway; "
     "start its agent with `hemostat agent --gateway`", "kind", "no_gateway_agent"),
    ({"kind": "host", "target": AGENT_IP, "ttl": "3x"}, 422,
     "bad time to live '3x': use e.g. 90s, 30m, 12h or 2d", "ttl", "bad_ttl"),
    ({"kind": "host", "target": "10.9.0.1"}, 422,
     "10.9.0.1 is a management address (the collector): isolating it would cut every agent; "
     "block destinations instead", "target", "bad_target"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "code", "message", "field", "name"), REFUSALS)
def test_contain_refusals_keep_message_and_field_and_add_a_code(
    site: Tokened, body: dict[str, Any], code: int, message: str, field: str, name: str
) -> None:
    with running(site.home) as client:
        answer = contain(client, site.responder_text, **body)
    assert answer.status_code == code
    assert answer.json() == {"error": message, "field": field, "code": name}


def test_release_refusals_have_codes_too(site: Tokened) -> None:
    with running(site.home) as client:
        unknown = client.post("/api/v1/release/act-000000000000",
                              headers=bearer(site.responder_text))  # fmt: skip
        sent = contain(client, site.responder_text, kind="host", target=AGENT_IP, apply=True)
        [command] = poll(client, site.agent_text)
        answer(client, site.agent_text, command["id"], "failed", "nft failed")
        action = sent.json()["action"]
        failed = client.post(f"/api/v1/release/{action}", headers=bearer(site.responder_text))
    assert (unknown.status_code, unknown.json()) == (404, {
        "error": "no containment action act-000000000000 (GET /api/v1/actions)", "field": "id",
        "code": "unknown_action"})  # fmt: skip
    assert (failed.status_code, failed.json()) == (409, {
        "error": f"{action} is failed: nothing to release", "field": "action",
        "code": "not_releasable"})  # fmt: skip


def test_a_refusal_without_code_still_says_code_null(site: Tokened) -> None:
    with running(site.home) as client:
        answer = contain(client, "not-a-token", kind="site")
    assert answer.status_code == 401
    assert answer.json() == {"error": "unknown or revoked token", "field": "Authorization",
                             "code": None}  # fmt: skip


def test_the_dry_run_gives_each_warning_and_the_missing_agent_a_code(site: Tokened) -> None:
    (site.home / "inventory.yaml").write_text(INVENTORY + "internal: [10.0.0.0/8]\n")  # no IPv6
    with running(site.home) as client:
        host = contain(client, site.responder_text, kind="host", target="10.1.2.3").json()
        cut = contain(client, site.responder_text, kind="site").json()
        inside = contain(client, site.responder_text, kind="destination",
                         target="10.0.0.0/30").json()  # fmt: skip
        mine = contain(client, site.responder_text, kind="host", target=AGENT_IP).json()
    assert host["warnings"] == [
        "no internal DNS resolver in the inventory: the isolated host resolves no name"
    ]
    assert host["warning_codes"] == [{"code": "no_resolver", "values": {}}]
    assert (host["agent_code"], host["agent_note"]) == ("no_host_agent", REFUSALS[0][2])
    assert cut["warnings"] == [
        "no continuity rule: incoming mail and every external service stop",
        "no IPv6 range among the internal networks: IPv6 forwarding is not cut",
    ]
    assert [w["code"] for w in cut["warning_codes"]] == ["no_continuity", "no_ipv6_range"]
    assert cut["agent_code"] == "no_gateway_agent"
    assert inside["warnings"] == ["10.0.0.0/30 is internal: traffic with it inside the site "
                                  "stops too"]  # fmt: skip
    assert inside["warning_codes"] == [{"code": "internal_destination",
                                        "values": {"net": "10.0.0.0/30"}}]  # fmt: skip
    assert (mine["agent_code"], mine["agent_note"]) == (None, None)


def test_every_plan_warning_text_comes_from_its_code() -> None:
    from hemostat.contain.plan import WARNINGS, plan_destination
    from hemostat.contain.site import Site

    bare = Site(internal=("10.0.0.0/8",), management=("10.9.0.1/32",))
    plan = plan_destination(bare, "nowhere.example.org", addresses=())
    assert plan.warnings == ("nowhere.example.org resolves to no address now: blocked once a "
                             "refresh resolves it",)  # fmt: skip
    assert [(w.code, dict(w.values)) for w in plan.coded] == [
        ("name_unresolved", {"name": "nowhere.example.org"})
    ]
    assert set(WARNINGS) == {"no_resolver", "no_continuity", "no_ipv6_range", "name_unresolved",
                             "internal_destination"}  # fmt: skip


# ---- automatic response ---------------------------------------------------------------------


def incident(ident: str, score: float, end: datetime, kind: Kind = Kind.EXFILTRATION) -> Incident:
    return Incident(ident, kind, score, (AGENT_IP, "10.9.0.1", "203.0.113.9"), ("203.0.113.9",),
                    end - timedelta(minutes=5), end, 300_000_000, ("egress_volume",), ("T1048",),
                    "10.0.0.5 sent 300 MB to 203.0.113.9", ())  # fmt: skip


def auto(site: Tokened, rules: list[str]) -> tuple[AutoResponse, Queue]:
    settings = config.Settings(None, {"respond": {"auto": rules}})
    queue = Queue(site.home)
    responder = Responder(site.home, settings, queue, Tokens(site.home),
                          lambda: load_inventory(site.home / "inventory.yaml"), dict)  # fmt: skip
    return responder.auto, queue


def test_auto_response_isolates_the_hosts_of_a_matching_incident_once(site: Tokened) -> None:
    now = datetime.now(UTC)
    response, queue = auto(site, ["exfiltration:critical:host"])
    high, old = incident("INC-high", 70, now), incident("INC-old", 95, now - timedelta(hours=3))
    other = incident("INC-c2", 95, now, Kind.C2)
    assert response.respond([high, old, other], now) == []
    critical = incident("INC-crit", 90, now)
    [action] = response.respond([high, critical], now)
    [command] = queue.all()
    assert (command.agent, command.action, command.by) == (site.agent.id, "isolate", "auto")
    plan = command.args["plan"]
    assert plan["id"] == action and plan["target"] == AGENT_IP and plan["actor"] == "auto"
    assert "incident INC-crit (exfiltration, critical, score 90)" in plan["reason"]
    assert response.respond([critical], now) == []  # once per incident
    response, queue = auto(site, ["*:high:host"])  # a restart remembers, and the host is busy
    assert response.respond([critical, incident("INC-2", 70, now)], now) == []
    assert len(queue.all()) == 1
    assert [e.step for e in AuditLog(site.home).entries()] == ["plan"]


@pytest.mark.parametrize(
    ("rule", "message"),
    [("exfiltration:critical", "expected kind:min_severity:action"),
     ("exfil:high:host", r"kind must be \* or one of exfiltration, dns_tunnel"),
     ("*:urgent:host", "severity must be one of"),
     ("*:high:site", "the only automatic action is host")],
)  # fmt: skip
def test_bad_rules_are_config_errors(rule: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Rule.parse(rule)


def test_the_auto_state_survives_and_is_plain_json(site: Tokened) -> None:
    now = datetime.now(UTC)
    response, _ = auto(site, ["*:medium:host"])
    response.respond([incident("INC-9", 50, now)], now)
    assert orjson.loads((site.home / "respond" / "auto.json").read_bytes()) == ["INC-9"]
    assert Path(site.home / "respond").stat().st_mode & 0o077 == 0

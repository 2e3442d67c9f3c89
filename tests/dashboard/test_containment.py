"""The containment page, its release form and the overview's agents and containment fragments,
in process: actions sent through the API as a responder, answered as their agent would,
then read back from the page and checked against the command queue and the audit log."""

from __future__ import annotations

import html
import json
import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any

import pytest

from hemostat import inventory
from hemostat.audit import AuditLog
from hemostat.contain.plan import WARNINGS
from hemostat.report.lang import Lang, load
from hemostat.server import Refused
from hemostat.server.auth import Role, Tokens
from hemostat.server.dashboard.containment import refusal
from hemostat.server.dashboard.views import ui_words
from hemostat.server.metrics import Seen
from tests.dashboard.conftest import Site, TestClient, login

pytestmark = pytest.mark.slow  # the hospital is simulated and detected once per session


class Rows(HTMLParser):
    """The rows of one table (by id): each row's attributes and its cells' text."""

    def __init__(self, table: str) -> None:
        super().__init__()
        self.table, self.depth = table, 0
        self.rows: list[tuple[dict[str, str], list[str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        if tag == "table" and (self.depth or found.get("id") == self.table):
            self.depth += 1
        elif self.depth and tag == "tr":
            self.rows.append((found, []))
        elif self.depth and tag in ("td", "th") and self.rows:
            self.rows[-1][1].append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "table" and self.depth:
            self.depth -= 1

    def handle_data(self, data: str) -> None:
        if self.depth and self.rows and self.rows[-1][1]:
            cells = self.rows[-1][1]
            cells[-1] = " ".join((cells[-1] + " " + data).split())


def rows(html: str, table: str) -> list[tuple[dict[str, str], list[str]]]:
    parser = Rows(table)
    parser.feed(html)
    keys = ("data-action", "data-seq", "data-agent")
    return [r for r in parser.rows if any(k in r[0] for k in keys)]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def a_host(site: Site) -> str:
    """An internal host of the hospital that is not its management address."""
    found = inventory.load(site.home / "inventory.yaml")
    return next(h.ip for h in found.hosts if h.ip not in found.management)


def isolate(client: TestClient, site: Site, host: str, ttl: str | None = "2h") -> str:
    body = {"kind": "host", "target": host, "apply": True, "reason": "exfiltration seen",
            "ttl": ttl}  # fmt: skip
    answer = client.post("/api/v1/contain", json=body, headers=bearer(site.responder))
    assert answer.status_code == 200, answer.text
    return str(answer.json()["action"])


def answer_all(client: TestClient, agent: str, status: str = "done") -> list[dict[str, Any]]:
    """Do what the agent does: take its commands and post a result for each."""
    found = client.get("/api/v1/commands", headers=bearer(agent)).json()["commands"]
    for command in found:
        done = client.post(f"/api/v1/commands/{command['id']}", headers=bearer(agent),
                           json={"status": status, "detail": f"{command['action']} {status}",
                                 "at": datetime.now(UTC).isoformat()})  # fmt: skip
        assert done.status_code == 200, done.text
    return list(found)


@pytest.fixture
def agent(site: Site) -> tuple[str, str]:
    """An agent enrolled for one host of the hospital: (host, token text)."""
    host = a_host(site)
    _, text = Tokens(site.home).create("srv-agent", Role.AGENT, host)
    return host, text


def listing(client: TestClient, site: Site) -> dict[str, dict[str, Any]]:
    found = client.get("/api/v1/actions", headers=bearer(site.analyst)).json()["actions"]
    return {a["id"]: a for a in found}


def test_an_active_action_is_listed_with_its_agent_time_left_and_audit(
    client: TestClient, site: Site, agent: tuple[str, str]
) -> None:
    host, agent_token = agent
    ident = isolate(client, site, host)
    answer_all(client, agent_token)
    login(client, site.responder)
    client.get("/lang/en?next=/containment")
    page = client.get("/containment")
    assert page.status_code == 200
    active = rows(page.text, "active-table")
    assert [(r[0]["data-action"], r[0]["data-status"]) for r in active] == [(ident, "active")]
    action, status, ordered, expires, carrier, release = active[0][1]
    assert host in action and "isolation of host" in action
    assert status.startswith("active") and "isolate done" in status
    assert ordered.startswith("test-responder") and "exfiltration seen" in ordered
    assert carrier == "srv-agent"
    left = listing(client, site)[ident]["expires"]
    remaining = datetime.fromisoformat(left.replace("Z", "+00:00")) - datetime.now(UTC)
    assert timedelta(hours=1, minutes=58) < remaining <= timedelta(hours=2)
    assert "2 h 00 min left" in expires, expires  # rounded to the minute
    assert release == "Release" and f'action="/containment/{ident}/release"' in page.text
    rules = AuditLog(site.home).rules(str(AuditLog(site.home).entries()[-1].rules_sha256))
    assert rules and "table inet hemostat {" in rules
    assert html.escape(rules.splitlines()[2], quote=False) in page.text  # the rules in force

    entries = AuditLog(site.home).entries()
    shown = rows(page.text, "audit-table")
    assert [int(r[0]["data-seq"]) for r in shown] == [e.seq for e in reversed(entries)]
    assert [r[0]["data-step"] for r in shown] == ["apply", "plan"]
    assert [r[1][3] for r in shown] == ["apply", "plan"]  # words, not "plan (dry run)"
    assert all(e.hash[:12] in r[1][-1] for r, e in zip(shown, reversed(entries), strict=True))
    assert 'id="audit-verdict" class="verdict state state-ok" data-ok="1"' in page.text
    assert "the 2 entries is intact" in page.text


def test_the_release_form_sends_the_release_and_audits_who_and_why(
    client: TestClient, site: Site, agent: tuple[str, str]
) -> None:
    host, agent_token = agent
    ident = isolate(client, site, host, ttl=None)
    answer_all(client, agent_token)
    csrf = login(client, site.responder)
    sent = client.post(f"/containment/{ident}/release", data={"csrf": csrf, "reason": "cleaned"},
                       follow_redirects=False)  # fmt: skip
    assert sent.status_code == 303 and sent.headers["location"] == f"/containment?released={ident}"
    assert listing(client, site)[ident]["status"] == "releasing"
    page = client.get(sent.headers["location"])
    assert f'id="notice" data-action="{ident}"' in page.text
    assert [r[0]["data-status"] for r in rows(page.text, "active-table")] == ["releasing"]

    [command] = answer_all(client, agent_token)
    assert command["action"] == "release" and command["args"]["action"] == ident
    assert command["by"] == "test-responder" and command["reason"] == "cleaned"
    fragment = client.get("/fragments/containment/actions").text
    assert 'id="no-active"' in fragment
    [(attrs, cells)] = rows(fragment, "past-table")
    assert (attrs["data-action"], attrs["data-status"]) == (ident, "released")
    assert "release done" in cells[1] and "isolate done" not in cells[1]  # the release's answer
    assert "test-responder" in cells[3]
    steps = [(e.step, e.actor, e.reason) for e in AuditLog(site.home).entries()]
    assert steps[-2:] == [("release", "test-responder", "cleaned")] * 2


def test_a_refused_release_is_shown_in_words(
    client: TestClient, site: Site, agent: tuple[str, str]
) -> None:
    host, agent_token = agent
    ident = isolate(client, site, host)
    csrf = login(client, site.responder)
    client.get("/lang/en?next=/containment")
    empty = client.post(f"/containment/{ident}/release", data={"csrf": csrf, "reason": " "})
    assert empty.status_code == 422 and "Give a reason to release" in empty.text
    unknown = client.post("/containment/act-000000000000/release",
                          data={"csrf": csrf, "reason": "x"})  # fmt: skip
    assert unknown.status_code == 404
    assert 'id="refused"' in unknown.text and "no containment action act-000000000000" in (
        unknown.text)  # fmt: skip
    answer_all(client, agent_token, "failed")  # the apply failed: nothing to release
    failed = client.post(f"/containment/{ident}/release", data={"csrf": csrf, "reason": "x"})
    assert failed.status_code == 409 and f"{ident} is failed: nothing to release" in failed.text
    forged = client.post(f"/containment/{ident}/release", data={"csrf": "forged", "reason": "x"})
    assert forged.status_code == 403
    assert answer_all(client, agent_token) == []  # no release was ever sent


def test_an_analyst_sees_actions_but_no_release_and_the_post_is_refused(
    client: TestClient, site: Site, agent: tuple[str, str]
) -> None:
    host, agent_token = agent
    ident = isolate(client, site, host)
    answer_all(client, agent_token)
    csrf = login(client, site.analyst)
    page = client.get("/containment")
    assert [r[0]["data-action"] for r in rows(page.text, "active-table")] == [ident]
    assert "/release" not in page.text and 'name="reason"' not in page.text
    assert 'id="read-only"' in page.text
    words = html.unescape(page.text)  # a French site: French words by default
    assert '<html lang="fr">' in words and "Actions en cours" in words
    assert "Journal d'audit" in words
    refused = client.post(f"/containment/{ident}/release", data={"csrf": csrf, "reason": "x"},
                          follow_redirects=False)  # fmt: skip
    assert refused.status_code == 403
    assert listing(client, site)[ident]["status"] == "active"
    assert answer_all(client, agent_token) == []


def test_a_tampered_audit_log_is_shown_broken_at_its_first_bad_entry(
    client: TestClient, site: Site, agent: tuple[str, str]
) -> None:
    host, agent_token = agent
    isolate(client, site, host)
    answer_all(client, agent_token)
    isolate(client, site, host)
    log = AuditLog(site.home).path
    lines = log.read_text().splitlines()
    second = json.loads(lines[1])
    second["actor"] = "someone else"
    lines[1] = json.dumps(second, sort_keys=True)
    log.write_text("\n".join(lines) + "\n")
    login(client, site.analyst)
    client.get("/lang/en?next=/containment")
    page = client.get("/containment").text
    assert 'data-ok="0"' in page and "FAILED at line 2 (entry 2)" in page
    assert "edited: the entry does not match its hash" in page
    shown = rows(page, "audit-table")
    unverified = [int(r[0]["data-seq"]) for r in shown if r[0].get("class") == "unverified"]
    assert unverified == [3, 2]
    glance = client.get("/fragments/containment").text
    assert 'data-audit-ok="0"' in glance


def test_the_glance_counts_actions_by_state(
    client: TestClient, site: Site, agent: tuple[str, str]
) -> None:
    host, agent_token = agent
    isolate(client, site, host)
    answer_all(client, agent_token)  # active
    isolate(client, site, host)
    answer_all(client, agent_token, "rolled_back")
    isolate(client, site, host)  # waiting
    states = [a["status"] for a in listing(client, site).values()]
    assert sorted(states) == ["active", "pending", "rolled_back"]
    login(client, site.analyst)
    client.get("/lang/en?next=/")
    glance = client.get("/fragments/containment").text
    figures = {attrs["data-figure"]: text for attrs, text in _figures(glance)}
    assert figures == {"host": "1", "destination": "0", "site": "no", "waiting": "1",
                       "failed": "1"}  # fmt: skip
    assert 'data-audit-ok="1"' in glance and 'href="/containment"' in glance


def _figures(html: str) -> list[tuple[dict[str, str], str]]:
    found: list[tuple[dict[str, str], str]] = []

    class Figures(HTMLParser):
        value = False

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            named = {k: v or "" for k, v in attrs}
            if tag == "li" and "data-figure" in named:
                found.append((named, ""))
            self.value = tag == "span" and "value" in named.get("class", "").split()

        def handle_data(self, data: str) -> None:
            if self.value and found:
                found[-1] = (found[-1][0], found[-1][1] + data.strip())

    Figures().feed(html)
    return found


def test_agents_fragment_shows_lag_and_spool_and_flags_stale_agents(
    client: TestClient, site: Site, agent: tuple[str, str]
) -> None:
    now = datetime.now(UTC)
    metrics = client.app.state.collector.metrics
    tokens = {t.name: t.id for t in Tokens(site.home).all()}
    metrics.seen(tokens["srv-agent"], Seen("srv-agent", agent[0], now, 3.4, 2_500_000))
    metrics.seen(tokens["test-agent"], Seen("test-agent", "10.9.9.9", now - timedelta(hours=2),
                                            1.0, 0))  # fmt: skip
    login(client, site.analyst)
    answer = client.get("/fragments/agents")
    assert answer.status_code == 200
    zone = inventory.load(site.home / "inventory.yaml").timezone or "UTC"
    words = load("fr" if zone == "Europe/Paris" else "en", zone)
    table = rows(answer.text, "agents-table")
    found = {a["data-agent"]: (a["data-stale"], cells) for a, cells in table}
    assert set(found) == {"srv-agent", "test-agent"}
    stale, cells = found["srv-agent"]
    assert stale == "0" and cells[1] == agent[0]
    assert cells[3] == words.duration(timedelta(seconds=3.4)).replace("\u00a0", " ")
    assert cells[4] == words.size(2_500_000).replace("\u00a0", " ")
    assert found["test-agent"][0] == "1"
    assert words.duration(timedelta(hours=2)).replace("\u00a0", " ") in found["test-agent"][1][2]


def test_fragments_need_a_session(client: TestClient) -> None:
    for path in ("/fragments/agents", "/fragments/containment", "/fragments/containment/actions"):
        answer = client.get(path, follow_redirects=False)
        assert answer.status_code == 401 and answer.json()["field"] == "session"
    assert client.get("/containment", follow_redirects=False).status_code == 303


def _refused(page: str) -> str:
    found = re.search(r'<p class="error" role="alert" id="refused">(.*?)</p>', page, re.S)
    assert found, page
    return html.unescape(found[1])


def test_a_refused_release_is_worded_in_the_pages_language(
    client: TestClient, site: Site, agent: tuple[str, str]
) -> None:
    host, agent_token = agent
    ident = isolate(client, site, host)
    answer_all(client, agent_token, "failed")  # nothing to release
    csrf = login(client, site.responder)  # a French site reads French
    said = {}
    for language in ("fr", "en"):
        client.get(f"/lang/{language}?next=/containment")
        for action in ("act-000000000000", ident):
            answer = client.post(f"/containment/{action}/release",
                                 data={"csrf": csrf, "reason": "x"})  # fmt: skip
            said[language, action] = (answer.status_code, _refused(answer.text))
    unknown, failed = "act-000000000000", ident
    assert said["fr", unknown] == (404, "Levée refusée : aucune action de confinement "
                                   f"{unknown} (liste : GET /api/v1/actions)")  # fmt: skip
    assert said["fr", failed] == (409, f"Levée refusée : l'action {failed} est dans l'état "
                                  "« échouée » : rien à lever")  # fmt: skip
    assert said["en", unknown] == (404, "Release refused: no containment action "
                                   f"{unknown} (GET /api/v1/actions)")  # fmt: skip
    assert said["en", failed] == (409, f"Release refused: {failed} is failed: nothing to release")


def _words(code: str) -> Lang:
    words = load(code, "Europe/Paris")
    return Lang(words.code, words.zone, {**words.words, "ui": ui_words(words.code)})


@pytest.mark.parametrize(("refused", "fr"), [
    (Refused(409, "no agent here", "target"), "no agent here"),  # no code: its English
    (Refused(409, "no agent here", "target", code="nobody_knows"), "no agent here"),
    (Refused(409, "no agent here", code="no_host_agent"), "no agent here"),  # a value missing
    (Refused(404, "gone", code="unknown_action", values={"id": "act-1"}),
     "aucune action de confinement act-1 (liste : GET /api/v1/actions)"),
])  # fmt: skip
def test_a_refusal_is_worded_from_its_code_or_else_shown_in_english(
    refused: Refused, fr: str
) -> None:
    assert refusal(_words("fr"), refused) == fr


def test_every_code_has_words_in_both_languages() -> None:
    refusals = {"bad_ttl", "bad_target", "bad_kind", "target_not_in_incident", "no_host_agent",
                "no_gateway_agent", "not_releasable", "unknown_action"}  # fmt: skip
    for code in ("fr", "en"):
        words = ui_words(_words(code).code)
        assert set(words["refusal"]) == refusals
        assert set(words["warning"]) == set(WARNINGS)
    english = ui_words(_words("en").code)["warning"]
    assert english == WARNINGS  # the English of the page is the API's

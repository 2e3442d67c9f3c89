"""The incident page, in process, against the simulated hospital's top incident: its numbers
against ``hemostat scope ID --json`` (run as a separate process on a copy of the home) and
direct SQL, the CSV exports (spreadsheet-safe), who may contain and how the preview and
confirmation behave, the action worded in the page's language, the reports, and the 404 of
an unknown incident."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import shutil
import subprocess
import sys
import zipfile
from datetime import datetime
from html import unescape
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from hemostat.audit import AuditLog
from hemostat.detect.runner import load
from hemostat.schema import COLUMNS, Table, utc_text
from hemostat.scope.reads import accounts
from hemostat.server.auth import Role, Tokens
from hemostat.store import Store
from tests.dashboard.conftest import Site, TestClient, login
from tests.dashboard.test_containment import rows

pytestmark = pytest.mark.slow  # the hospital is simulated and detected once per session


class Marked(HTMLParser):
    """Attributes of the elements carrying ``attribute``, with their text."""

    def __init__(self, attribute: str) -> None:
        super().__init__()
        self.attribute = attribute
        self.found: list[tuple[dict[str, str], str]] = []
        self._open: list[tuple[str, int]] = []  # (tag, index in found)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if self.attribute in values:
            self.found.append((values, ""))
            self._open.append((tag, len(self.found) - 1))

    def handle_endtag(self, tag: str) -> None:
        if self._open and self._open[-1][0] == tag:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        for _, i in self._open:
            attrs, text = self.found[i]
            self.found[i] = (attrs, " ".join(f"{text} {data}".split()))


def marked(page: str, attribute: str) -> list[tuple[dict[str, str], str]]:
    parser = Marked(attribute)
    parser.feed(page)
    return parser.found


def english(client: TestClient) -> None:
    client.get("/lang/en", follow_redirects=False)


@pytest.fixture(scope="module")
def scope_json(hospital: Site, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``hemostat scope TOP --json``, run as its own process on a copy of the home."""
    home = tmp_path_factory.mktemp("scope") / "home"
    shutil.copytree(hospital.home, home)
    cli = Path(sys.executable).with_name("hemostat")
    done = subprocess.run([str(cli), "--home", str(home), "scope", hospital.top_incident,
                           "--json"], capture_output=True, text=True, check=True, timeout=300)  # fmt: skip
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


def test_the_page_shows_the_scope_of_hemostat_scope_json(
    client: TestClient, site: Site, scope_json: dict[str, Any]
) -> None:
    login(client, site.analyst)
    english(client)
    first = client.get(f"/incidents/{site.top_incident}")
    assert first.status_code == 200
    assert f'data-refresh="/fragments/incidents/{site.top_incident}/scope"' in first.text
    part = client.get(f"/fragments/incidents/{site.top_incident}/scope")
    assert part.status_code == 200
    rows = {a["data-category"]: (a, text) for a, text in marked(part.text, "data-records-low")
            if "data-category" in a}  # fmt: skip
    assert set(rows) == set(scope_json["categories"])
    for category, expected in scope_json["categories"].items():
        attrs, text = rows[category]
        for what in ("records", "subjects"):
            low, high = expected[what]["low"], expected[what]["high"]
            assert (int(attrs[f"data-{what}-low"]), int(attrs[f"data-{what}-high"])) == (low, high)
            assert f"{low:,} \u2013 {high:,}" in text  # what a person reads
        assert attrs["data-status"] == expected["status"]
    reached = [c for c, v in scope_json["categories"].items() if v["status"] != "none"]
    assert reached, "the simulated leak reached no category: the check above proves little"
    statements = unescape(part.text)
    for expected in scope_json["categories"].values():
        assert expected["statement"] in statements  # the "no evidence" statements too
    stores = {a["data-store"]: a for a, _ in marked(part.text, "data-store")}
    assert {s["name"] for s in scope_json["datastores"]} == set(stores)
    for s in scope_json["datastores"]:
        assert int(stores[s["name"]]["data-records-high"]) == s["records"]["high"]
    egress = marked(part.text, "data-bytes")
    assert int(egress[0][0]["data-bytes"]) == scope_json["egress"]["bytes"]
    assert f"{scope_json['egress']['bytes']:,} bytes" in egress[0][1]
    assert "<svg" in part.text and 'class="lineage"' in part.text  # the report's diagram
    again = client.get(f"/incidents/{site.top_incident}")  # now kept: shown inline
    assert 'id="scope-categories"' in again.text and "data-lazy" not in again.text


def test_the_timeline_chart_matches_the_scope_per_minute(
    client: TestClient, site: Site, scope_json: dict[str, Any]
) -> None:
    login(client, site.analyst)
    page = client.get(f"/incidents/{site.top_incident}").text
    found = re.search(r'<script type="application/json" id="incident-chart">(.*?)</script>',
                      page, re.S)  # fmt: skip
    assert found, "no chart spec in the page"
    spec = json.loads(found.group(1))
    assert spec["step"] == 1  # a short incident: one bar per minute
    per_minute = {x: sum(s["values"][i] for s in spec["series"]) for i, x in enumerate(spec["x"])}
    for point in scope_json["egress"]["timeline"]:
        minute = _ms(point["ts"])
        assert per_minute[minute] == point["bytes"], point["ts"]
    labels = " ".join(m["label"] for m in spec["markers"])
    assert "egress_volume" in labels and "staging" in labels
    assert "containment" not in labels  # nothing contained yet


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def test_each_csv_export_has_every_row_a_direct_query_finds(
    hospital: Site, client: TestClient, site: Site
) -> None:
    login(client, site.analyst)
    with Store(hospital.home, read_only=True) as store:
        expected = _expected_counts(store, site.top_incident)
    page = client.get(f"/incidents/{site.top_incident}").text
    totals = [int(a["data-total"]) for a, _ in marked(page, "data-total")]
    assert totals == [expected[t][0] for t in Table]
    for table in Table:
        answer = client.get(f"/incidents/{site.top_incident}/evidence/{table}.csv")
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/csv")
        assert "attachment" in answer.headers["content-disposition"]
        rows = list(csv.reader(io.StringIO(answer.text)))
        assert rows[0] == [name for name, _ in COLUMNS[table]]
        assert all(len(r) == len(rows[0]) for r in rows)
        count, total = expected[table]
        assert len(rows) - 1 == count > 0, table
        if table is Table.FLOWS:
            column = rows[0].index("bytes_out")
            assert sum(int(r[column] or 0) for r in rows[1:]) == total


def _expected_counts(store: Store, ident: str) -> dict[Table, tuple[int, int]]:
    """(rows, bytes out) per evidence table, from the incident's row, by plain SQL."""
    con = store.con
    row = con.execute('SELECT hosts, destinations, start, "end", findings FROM incidents '
                      "WHERE id = ?", [ident]).fetchall()[0]  # fmt: skip
    hosts, dests, start, end, ids = row
    names = sorted(accounts(f for f in load(store) if f.id in set(ids)))
    ends = list(dict.fromkeys([*dests, *hosts]))
    flows = con.execute(
        "SELECT count(*), coalesce(sum(bytes_out), 0) FROM flows WHERE ts < ? "
        "AND coalesce(end_ts, ts) >= ? AND ((list_contains(?, src_ip) AND list_contains(?, "
        "dst_ip)) OR (list_contains(?, dst_ip) AND list_contains(?, src_ip)))",
        [end, start, hosts, ends, hosts, ends]).fetchall()[0]  # fmt: skip
    dns = con.execute("SELECT count(*), 0 FROM dns WHERE ts BETWEEN ? AND ? "
                      "AND list_contains(?, src_ip)", [start, end, hosts]).fetchall()[0]  # fmt: skip
    access = con.execute(
        'SELECT count(*), 0 FROM access WHERE ts BETWEEN ? AND ? AND (list_contains(?, client_ip) '
        'OR list_contains(?, host) OR list_contains(?, "user"))',
        [start, end, hosts, hosts, names]).fetchall()[0]  # fmt: skip
    return {Table.FLOWS: flows, Table.DNS: dns, Table.ACCESS: access}


def test_an_analyst_sees_no_containment_and_is_refused_by_hand(
    client: TestClient, site: Site
) -> None:
    csrf = login(client, site.analyst)
    page = client.get(f"/incidents/{site.top_incident}").text
    assert "data-contain=" not in page and 'id="no-contain"' in page
    for step in ("preview", "apply"):
        answer = client.post(f"/incidents/{site.top_incident}/contain/{step}",
                             data={"csrf": csrf, "kind": "site", "reason": "by hand"},
                             follow_redirects=False)  # fmt: skip
        assert answer.status_code == 403, step
    assert _audited(site) == []
    assert "Chronologie" in page and "Preuves" in page  # a French site reads French


def test_a_responder_previews_then_is_told_no_agent_can_carry_it_out(
    client: TestClient, site: Site
) -> None:
    csrf = login(client, site.responder)
    english(client)
    page = client.get(f"/incidents/{site.top_incident}").text
    hosts = [a["value"] for a, _ in marked(page, "value") if a.get("name") == "target"]
    assert "10.1.8.11" in hosts  # the file server that sent the data out
    form = {"csrf": csrf, "kind": "host", "target": "10.1.8.11"}
    preview = client.post(f"/incidents/{site.top_incident}/contain/preview", data=form)
    assert preview.status_code == 200
    text = unescape(preview.text)
    assert "no agent runs on 10.1.8.11" in text  # the collector's 409, in words
    assert re.search(r'<pre class="rules" id="rules">[^<]*isolate 10\.1\.8\.11', preview.text)
    assert 'data-confirm="Isolate 10.1.8.11 now?' in preview.text
    applied = client.post(f"/incidents/{site.top_incident}/contain/apply",
                          data={**form, "reason": "exfiltration seen", "ttl": "2h"},
                          follow_redirects=False)  # fmt: skip
    assert applied.status_code == 409
    assert "Refused (409)" in unescape(applied.text) and "Traceback" not in applied.text
    assert client.app.state.collector.responder.listing() == []  # type: ignore[attr-defined]
    steps = [(e.step, e.reason) for e in _audited(site)]
    assert steps[-1] == ("plan", f"{site.top_incident}: exfiltration seen")  # named, not sent
    bad = client.post(f"/incidents/{site.top_incident}/contain/preview",
                      data={**form, "target": "10.1.99.99"})  # not the incident's  # fmt: skip
    assert bad.status_code == 422 and "is not a host or destination" in unescape(bad.text)


def _audited(site: Site) -> list[Any]:
    log = AuditLog(site.home)
    return log.entries() if log.path.exists() else []


def test_a_confirmed_isolation_is_sent_and_a_forged_form_is_not(
    client: TestClient, site: Site
) -> None:
    Tokens(site.home).create("agent-fs-02", Role.AGENT, ip="10.1.8.11")
    csrf = login(client, site.responder)
    url = f"/incidents/{site.top_incident}/contain/apply"
    form = {"kind": "host", "target": "10.1.8.11", "reason": "", "ttl": ""}
    forged = client.post(url, data={**form, "csrf": "forged"}, follow_redirects=False)
    assert forged.status_code == 403
    responder = client.app.state.collector.responder  # type: ignore[attr-defined]
    assert responder.listing() == []
    done = client.post(url, data={**form, "csrf": csrf}, follow_redirects=False)
    assert done.status_code == 303
    assert done.headers["location"].startswith("/containment?action=act-")
    [action] = responder.listing()
    assert (action["kind"], action["target"], action["status"]) == ("host", "10.1.8.11", "pending")
    assert action["reason"] == site.top_incident  # the report finds it by the incident's id


def test_reports_download_and_cite_the_bundle_they_come_with(
    client: TestClient, site: Site
) -> None:
    login(client, site.analyst)  # reading reports is an analyst's job
    pdf = client.get(f"/incidents/{site.top_incident}/report.pdf?lang=fr")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert pdf.headers["content-disposition"] == (
        f'attachment; filename="{site.top_incident}-report-fr.pdf"'
    )
    report = client.get(f"/incidents/{site.top_incident}/report.html?lang=en")
    assert report.status_code == 200 and "attachment" in report.headers["content-disposition"]
    bundle = client.get(f"/incidents/{site.top_incident}/evidence.zip")
    assert bundle.status_code == 200
    with zipfile.ZipFile(io.BytesIO(bundle.content)) as zf:
        manifest = hashlib.sha256(zf.read("manifest.json")).hexdigest()
    assert manifest in report.text  # the report names the zip downloaded beside it


def test_an_unknown_incident_is_a_404_page_everywhere(client: TestClient, site: Site) -> None:
    csrf = login(client, site.responder)
    client.get("/lang/fr", follow_redirects=False)
    for path in ("/incidents/INC-nope", "/incidents/INC-nope/evidence/flows.csv",
                 "/incidents/INC-nope/report.pdf", "/fragments/incidents/INC-nope/scope"):  # fmt: skip
        answer = client.get(path)
        assert answer.status_code == 404, path
        assert "INC-nope" in answer.text
    page = client.get("/incidents/INC-nope")
    assert "Incident introuvable" in page.text
    posted = client.post("/incidents/INC-nope/contain/preview", data={"csrf": csrf, "kind": "site"})
    assert posted.status_code == 404


def test_csv_cells_a_spreadsheet_would_run_get_a_quote_and_numbers_do_not(
    client: TestClient, site: Site
) -> None:
    store = client.app.state.collector.store  # type: ignore[attr-defined]
    hosts, start, end = store.con.execute(
        'SELECT hosts, start, "end" FROM incidents WHERE id = ?', [site.top_incident]
    ).fetchall()[0]
    crafted = {"ts": start, "src_ip": hosts[0], "query": "=cmd|' /C calc'!A0", "qtype": "+A",
               "rcode": "@SUM(1)", "answers": ["-1+1", "10.0.0.1"], "source": "\tzeek",
               "dst_ip": "10.1.0.53", "conn_id": "\rC1", "host": "a-b=c.example",
               "ingest_id": -7}  # fmt: skip
    names = ", ".join(f'"{c}"' for c in crafted)
    store.con.execute(f"INSERT INTO dns ({names}) VALUES ({', '.join('?' * len(crafted))})",
                      list(crafted.values()))  # fmt: skip
    login(client, site.analyst)
    answer = client.get(f"/incidents/{site.top_incident}/evidence/dns.csv")
    header, *rows = list(csv.reader(io.StringIO(answer.text)))
    shown = [dict(zip(header, r, strict=True)) for r in rows]
    [row] = [r for r in shown if r["ingest_id"] == "-7"]  # a negative number stays a number
    assert row == {"ts": utc_text(start), "src_ip": hosts[0], "query": "'=cmd|' /C calc'!A0",
                   "qtype": "'+A", "rcode": "'@SUM(1)", "answers": "'-1+1 10.0.0.1",
                   "source": "'\tzeek", "dst_ip": "10.1.0.53", "conn_id": "'\rC1",
                   "host": "a-b=c.example", "ingest_id": "-7"}  # fmt: skip
    found = store.con.execute(
        "SELECT query, ingest_id FROM dns WHERE ts BETWEEN ? AND ? AND list_contains(?, src_ip) "
        "AND ingest_id <> -7", [start, end, hosts]).fetchall()  # fmt: skip
    others = [r for r in shown if r is not row]
    assert len(others) == len(found) > 0
    assert sorted((r["query"], int(r["ingest_id"])) for r in others) == sorted(found)


def test_the_action_is_worded_in_the_pages_language(client: TestClient, site: Site) -> None:
    Tokens(site.home).create("agent-fs-02", Role.AGENT, ip="10.1.8.11")
    csrf = login(client, site.responder)  # a French site reads French
    url = f"/incidents/{site.top_incident}/contain"
    form = {"csrf": csrf, "kind": "host", "target": "10.1.8.11"}
    french = unescape(client.post(f"{url}/preview", data=form).text)
    assert re.search(r"<h1>Simulation\s*:\s*isoler la machine 10\.1\.8\.11</h1>", french)
    done = client.post(f"{url}/apply", data={**form, "reason": "", "ttl": ""},
                       follow_redirects=False)  # fmt: skip
    ident = done.headers["location"].rsplit("=", 1)[1]
    [(_, cells)] = rows(client.get("/containment").text, "active-table")
    assert cells[0].endswith(f"{ident} · isoler la machine 10.1.8.11"), cells[0]
    english(client)
    preview = unescape(client.post(f"{url}/preview", data=form).text)
    assert "<h1>Preview: isolate host 10.1.8.11</h1>" in preview
    [(_, cells)] = rows(client.get("/containment").text, "active-table")
    assert cells[0].endswith(f"{ident} · isolate host 10.1.8.11"), cells[0]


#: the verbs the English sentences of the detectors open with (none is French)
_ENGLISH_VERB = re.compile(r"\b(sent|called|pulled|asked|looked up|read|exported|Supplier)\b")


def test_the_findings_are_worded_in_the_page_language_and_old_ones_stay_english(
    client: TestClient, site: Site
) -> None:
    login(client, site.analyst)
    store = client.app.state.collector.store  # type: ignore[attr-defined]
    ids, summary = store.con.execute(
        "SELECT findings, summary FROM incidents WHERE id = ?", [site.top_incident]
    ).fetchall()[0]
    found = {f.id: f for f in load(store) if f.id in set(ids)}
    page = client.get(f"/incidents/{site.top_incident}").text  # French: a French site
    said = _summary(page)
    assert said != summary and not _ENGLISH_VERB.search(said) and "Corroborated" not in said
    assert " Corroborated by " not in summary or "Confirmé par d'autres détecteurs : " in said
    rows = {a["data-finding"]: text for a, text in marked(page, "data-finding")}
    assert set(rows) == set(found)
    for ident, f in found.items():
        assert f.summary not in rows[ident] and f.host in rows[ident]
        assert not _ENGLISH_VERB.search(rows[ident].replace(f"({f.expected})", "")), rows[ident]
    report = client.get(f"/incidents/{site.top_incident}/report.html?lang=fr")
    quoted = unescape(re.sub(r"<[^>]+>", "", report.text))
    assert f"« {said} »" in " ".join(quoted.split())
    old = next(iter(found))
    store.con.execute("UPDATE findings SET evidence = '{}' WHERE id = ?", [old])
    again = client.get(f"/incidents/{site.top_incident}").text
    rows = {a["data-finding"]: text for a, text in marked(again, "data-finding")}
    assert " ".join(found[old].summary.split()) in rows[old]  # no evidence: the stored English
    english(client)
    assert _ENGLISH_VERB.search(_summary(client.get(f"/incidents/{site.top_incident}").text))


def _summary(page: str) -> str:
    return next(text for a, text in marked(page, "id") if a["id"] == "summary")


#: the collector's refusals and the plan's warnings as the incident's preview words them, by
#: code, written out here for a French and an English page (the English is the API's message)
_SAID = {
    "no_host_agent": (
        "aucun agent ne tourne sur 10.1.8.11 (aucun n'a été enrôlé avec --ip 10.1.8.11 ni "
        "n'envoie depuis cette adresse) : isolez la machine avec `hemostat contain host` sur la "
        "machine elle-même, ou bloquez à la passerelle ce avec quoi elle communique",
        "no agent runs on 10.1.8.11 (none enrolled with --ip 10.1.8.11 or sending from it): "
        "isolate it with `hemostat contain host` on the host itself, or block what it talks to "
        "at the gateway",
    ),
    "no_gateway_agent": (
        "aucun agent de passerelle n'a interrogé ce collecteur : une coupure du site ou un "
        "blocage de destination s'exécute sur la passerelle Linux ; démarrez son agent avec "
        "`hemostat agent --gateway`",
        "no gateway agent has polled this collector: a site action runs on the Linux gateway; "
        "start its agent with `hemostat agent --gateway`",
    ),
    "bad_ttl": (
        "durée de validité « 3x » invalide : écrivez par exemple 90s, 30m, 12h ou 2d",
        "bad time to live '3x': use e.g. 90s, 30m, 12h or 2d",
    ),
    "bad_kind": (
        "type de confinement inconnu « bogus » : choisissez host, destination ou site",
        "unknown containment kind 'bogus': choose host, destination or site",
    ),
    "target_not_in_incident": (
        "10.1.99.99 n'est ni une machine ni une destination de {id} : confinez-la depuis la page "
        "Confinement ou avec `hemostat contain`",
        "10.1.99.99 is not a host or destination of {id}: contain it from the containment page "
        "or with `hemostat contain`",
    ),
}
_WARNED = {  # the warnings a cut of the hospital's egress can carry
    "no_continuity": (
        "aucune règle de continuité : le courrier entrant et tous les services exposés à "
        "l'extérieur s'arrêtent",
        "no continuity rule: incoming mail and every external service stop",
    ),
    "no_ipv6_range": (
        "aucune plage IPv6 parmi les réseaux internes : le routage IPv6 n'est pas coupé",
        "no IPv6 range among the internal networks: IPv6 forwarding is not cut",
    ),
}


def _refusal(page: str) -> str:
    return next(text for a, text in marked(page, "id") if a["id"] == "refused")


def _note(page: str) -> str:
    return next(text for a, text in marked(page, "id") if a["id"] == "no-carrier")


def _warnings(page: str) -> list[str]:
    found = re.search(r'<ul class="warnings" id="warnings">(.*?)</ul>', unescape(page), re.S)
    return re.findall(r"<li>(.*?)</li>", found[1]) if found else []


@pytest.mark.parametrize("language", ["fr", "en"])
def test_each_refusal_and_warning_is_worded_in_the_pages_language(
    client: TestClient, site: Site, language: str
) -> None:
    csrf = login(client, site.responder)  # a French site reads French
    if language == "en":
        english(client)
    said = {code: texts[language == "en"] for code, texts in _SAID.items()}
    url, ident = f"/incidents/{site.top_incident}/contain", site.top_incident
    host = {"csrf": csrf, "kind": "host", "target": "10.1.8.11"}
    refused = "Refused ({status}): {said}" if language == "en" else "Refusé ({status}) : {said}"

    def shown(step: str, form: dict[str, str], status: int) -> str:
        answer = client.post(f"{url}/{step}", data=form, follow_redirects=False)
        assert answer.status_code == status, answer.text
        assert "Traceback" not in answer.text
        return answer.text

    assert said["no_host_agent"] in _note(shown("preview", host, 200))
    assert _refusal(shown("apply", {**host, "reason": ""}, 409)) == refused.format(
        status=409, said=said["no_host_agent"])  # fmt: skip
    cut = shown("preview", {"csrf": csrf, "kind": "site"}, 200)
    assert said["no_gateway_agent"] in _note(cut)
    codes = [w["code"] for w in _api_cut(client, site)["warning_codes"]]
    assert codes and set(codes) <= set(_WARNED)
    assert _warnings(cut) == [_WARNED[c][language == "en"] for c in codes]
    for form, status, code in [
        ({**host, "ttl": "3x"}, 422, "bad_ttl"),
        ({"csrf": csrf, "kind": "bogus", "target": "10.1.8.11"}, 422, "bad_kind"),
        ({**host, "target": "10.1.99.99"}, 422, "target_not_in_incident"),
    ]:
        text = said[code].format(id=ident)
        assert _refusal(shown("preview", form, status)) == refused.format(status=status, said=text)


def _api_cut(client: TestClient, site: Site) -> dict[str, Any]:
    answer = client.post("/api/v1/contain", json={"kind": "site"},
                         headers={"Authorization": f"Bearer {site.responder}"})  # fmt: skip
    assert answer.status_code == 200, answer.text
    return dict(answer.json())

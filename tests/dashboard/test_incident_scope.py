"""The incident page's scoping section and its cache: kept while nothing changes, computed
again when the inventory changes (``hemostat inventory load``, an edit the collector reloads)."""

from __future__ import annotations

import re
from html import unescape
from typing import Any

import pytest

from hemostat.scope import scope
from hemostat.server.dashboard import incident_scope
from tests.dashboard.conftest import Site, TestClient, login

pytestmark = pytest.mark.slow  # the hospital is simulated and detected once per session

NEW_RECORDS = 987_654


def store_figures(html: str) -> dict[str, str]:
    """Per data store of the scoping table, its size cell ("records / people")."""
    rows = re.findall(r'<tr data-store="([^"]+)".*?</tr>', html, flags=re.S)
    cells = re.findall(r'<tr data-store="[^"]+".*?<td class="num">([^<]*)</td>\s*</tr>', html,
                       flags=re.S)  # fmt: skip
    assert len(rows) == len(cells)
    return {name: " ".join(cell.split()) for name, cell in zip(rows, cells, strict=True)}


def counted(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The incident ids scoped from now on (the cache's misses)."""
    calls: list[str] = []

    def counting(store: Any, site: Any, ident: str, settings: Any) -> Any:
        calls.append(ident)
        return scope(store, site, ident, settings)

    monkeypatch.setattr(incident_scope, "scope", counting)
    return calls


def test_a_changed_inventory_gives_a_new_scope(
    client: TestClient, site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = counted(monkeypatch)
    login(client, site.analyst)
    client.get("/lang/en", follow_redirects=False)
    url = f"/fragments/incidents/{site.top_incident}/scope"
    first = client.get(url)
    assert first.status_code == 200
    before = store_figures(first.text)
    assert before, "the top incident reaches no data store"
    name, shown = next(iter(before.items()))
    assert f"{NEW_RECORDS:,}" not in shown
    assert store_figures(client.get(url).text) == before
    assert calls == [site.top_incident]  # kept, not computed again
    page = client.get(f"/incidents/{site.top_incident}").text
    assert store_figures(page)[name] == shown  # the page shows the kept answer inline

    path = site.home / "inventory.yaml"
    text = path.read_text(encoding="utf-8")
    edited, n = re.subn(rf"(- name: {re.escape(name)}\n(?:  .*\n)*?  records: )\d+",
                        rf"\g<1>{NEW_RECORDS}", text, count=1)  # fmt: skip
    assert n == 1
    path.write_text(edited, encoding="utf-8")

    page = client.get(f"/incidents/{site.top_incident}").text
    assert name not in store_figures(page)  # no stale answer inline: the section loads lazily
    after = client.get(url).text
    assert store_figures(after)[name].startswith(f"{NEW_RECORDS:,} / ")
    assert calls == [site.top_incident] * 2
    assert store_figures(client.get(f"/incidents/{site.top_incident}").text) == store_figures(after)


def listed(html: str, opening: str) -> list[str]:
    """The items of the list that opens with ``opening`` (tags dropped, entities read)."""
    found = re.search(rf"{re.escape(opening)}(.*?)</(?:ul|ol)>", html, flags=re.S)
    assert found, opening
    items = re.findall(r"<li[^>]*>(.*?)</li>", found.group(1), flags=re.S)
    # white space as written in the template; the no-break spaces of French figures stay
    return [re.sub(r"[ \t\n]+", " ", unescape(re.sub(r"<[^>]+>", "", i))).strip() for i in items]


def test_the_french_scope_gives_its_reasoning_in_french(client: TestClient, site: Site) -> None:
    login(client, site.analyst)
    client.get("/lang/fr", follow_redirects=False)
    html = client.get(f"/fragments/incidents/{site.top_incident}/scope").text
    statements = listed(html, '<ul id="scope-statements">')
    reasoning = listed(html, '<ol class="reasoning">')
    unknowns = listed(html, '<ul id="scope-unknowns">')
    assert statements and reasoning and unknowns
    for sentence in statements + reasoning + unknowns:
        for word in ("No evidence", "rows", "read", "compressed", "unknown", "left", "records"):
            assert not re.search(rf"\b{word}\b", sentence), (word, sentence)
    assert "en anglais" not in html
    rows = re.findall(r'<tr data-category="(\w+)" data-status="proven" data-records-low="(\d+)" '
                      r'data-records-high="(\d+)"', html)  # fmt: skip
    assert rows, "the top incident proves no category: the check below proves little"
    nbsp = "\u00a0"
    for _, low, high in rows:
        figures = f"{int(low):,} à {int(high):,} enregistrements".replace(",", nbsp)
        assert any(s.startswith("Des données ") and figures in s for s in statements), figures
    assert any(s.startswith("Aucun élément n'indique que des données") for s in statements)
    assert any(s.startswith("Le contenu de la sortie chiffrée") for s in unknowns)

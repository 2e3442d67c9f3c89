"""The issue's "must show", in real headless Chromium (Debian's, driven by Playwright): a
responder logs in, opens the simulator's top incident, finds its numbers equal to
``hemostat scope --json``, isolates its host (dry-run rules, confirmation), sees the action
active once the real agent applied it in its namespace, audited with the chain intact, and
releases it; an analyst sees no button and is refused (403) when posting anyway. Every page
is saved as a screenshot (docs/screenshots/). Lab and browser: ``tests/dashboard/browser.py``.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from hemostat.audit import AuditLog
from tests.contain.lab import Lab, wait_until
from tests.contain.lab import missing as lab_missing
from tests.dashboard.browser import Served, Shots, chromium, context, csrf, log_in, scope_json
from tests.dashboard.browser import missing as browser_missing
from tests.dashboard.conftest import Site

if TYPE_CHECKING:  # the module is skipped without playwright
    from playwright.sync_api import Browser, Page

pytestmark = [pytest.mark.browser, pytest.mark.netns, pytest.mark.slow]
PAGES = {"login", "overview", "incident", "preview", "containment", "host", "destination"}


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    if why := lab_missing() or browser_missing():
        pytest.skip(why)
    lab = Lab("D", tmp_path)
    try:
        yield lab
    finally:
        lab.close()


@pytest.fixture
def served(hospital: Site, lab: Lab, tmp_path: Path) -> tuple[Served, dict[str, Any]]:
    """The hospital's home served in the lab, its agent enrolled for the incident's host;
    and ``hemostat scope --json`` of the top incident, computed before the collector starts."""
    started = time.monotonic()
    home = tmp_path / "collector" / "home"
    shutil.copytree(hospital.home, home)
    facts = scope_json(home, hospital.top_incident)
    site = Served(lab, home).prepare(facts["egress"]["hosts"][0]["ip"])
    site.start()
    print(f"lab ready (scope, PKI, collector, agent): {time.monotonic() - started:.1f} s")  # noqa: T201
    return site, facts


def test_a_responder_isolates_and_releases_and_an_analyst_cannot(
    hospital: Site, served: tuple[Served, dict[str, Any]], tmp_path: Path
) -> None:
    site, facts = served
    shots = Shots(tmp_path)
    started = time.monotonic()
    with chromium(tmp_path, site.col, site.pin()) as browser:
        ident = responder(browser, site, hospital, facts, shots)
        analyst(browser, site, hospital, facts, ident)
    assert set(shots.taken) == PAGES
    print(f"browser flow: {time.monotonic() - started:.1f} s")  # noqa: T201


def responder(
    browser: Browser, site: Served, hospital: Site, facts: dict[str, Any], shots: Shots
) -> str:
    host, incident = facts["egress"]["hosts"][0]["ip"], hospital.top_incident
    page = context(browser, site.url).new_page()
    page.goto("/lang/en?next=/login")
    shots.take(page, "login")
    log_in(page, hospital.responder)
    shots.take(page, "overview")
    page.locator(f'a[href="/incidents/{incident}"]').first.click()
    page.wait_for_url(f"**/incidents/{incident}")
    page.wait_for_selector("#scope-categories")
    check_scope(page, facts)
    shots.take(page, "incident")

    page.locator(f'#contain-buttons form:has(input[name=target][value="{host}"]) '
                 "button[data-contain=host]").click()  # fmt: skip
    page.wait_for_url("**/contain/preview")
    rules = page.inner_text("#rules")
    assert f"isolate host {host}" in rules and "table inet hemostat {" in rules
    assert "agent-srv" in page.inner_text("#plan")
    shots.take(page, "preview")
    page.once("dialog", lambda dialog: dialog.accept())  # the confirmation step
    page.click("#apply")
    page.wait_for_url(re.compile(r"/containment\?action=act-"))
    ident = page.url.rsplit("=", 1)[1]
    row = f'#active-table tr[data-action="{ident}"]'
    page.wait_for_selector(f'{row}[data-status="active"]', timeout=30_000)  # the agent's answer
    assert "table inet hemostat" in site.tables()
    page.reload()
    check_audit(page, site, ident, ["apply", "plan"])
    shots.take(page, "containment")

    page.fill(f"{row} input[name=reason]", "host cleaned, back in service")
    page.click(f"{row} form.release button[type=submit]")
    page.wait_for_url(f"**/containment?released={ident}")
    page.wait_for_selector(f'#past-table tr[data-action="{ident}"][data-status="released"]',
                           timeout=30_000)  # fmt: skip
    assert wait_until(lambda: "hemostat" not in site.tables(), 10)
    page.reload()
    check_audit(page, site, ident, ["release", "release", "apply", "plan"])
    shots.take(page, "containment-released", docs=False)

    shot_page(page, shots, f"/hosts/{host}", "host")
    shot_page(page, shots, f"/destinations/{facts['egress']['destinations'][0]['address']}",
              "destination")  # fmt: skip
    page.context.close()
    return ident


def analyst(
    browser: Browser, site: Served, hospital: Site, facts: dict[str, Any], ident: str
) -> None:
    host, incident = facts["egress"]["hosts"][0]["ip"], hospital.top_incident
    audited = len(AuditLog(site.home).entries())
    page = context(browser, site.url).new_page()
    log_in(page, hospital.analyst)
    page.goto(f"/incidents/{incident}")
    assert page.locator("#no-contain").is_visible()
    assert page.locator("#contain-buttons, button[data-contain]").count() == 0
    page.goto("/containment")
    assert page.locator(f'#past-table tr[data-action="{ident}"]').count() == 1
    assert page.locator("form.release, input[name=reason]").count() == 0
    token = csrf(page)
    form = {"csrf": token, "kind": "host", "target": host, "reason": "not mine to do"}
    for path in (f"/incidents/{incident}/contain/preview", f"/incidents/{incident}/contain/apply",
                 f"/containment/{ident}/release"):  # fmt: skip
        assert post(page, path, form) == 403, path
    assert len(AuditLog(site.home).entries()) == audited  # nothing planned, sent or released
    page.context.close()


def post(page: Page, path: str, form: dict[str, str]) -> int:
    """A form POST sent by the page itself (the analyst's session cookie, same origin)."""
    status: int = page.evaluate(
        "([path, form]) => fetch(path, {method: 'POST', body: new URLSearchParams(form),"
        " credentials: 'same-origin'}).then(r => r.status)",
        [path, form],
    )
    return status


def check_scope(page: Page, facts: dict[str, Any]) -> None:
    """The page's egress and bounds per category are those of ``hemostat scope --json``, in
    the attributes and in the words the person reads."""
    egress = page.locator("#scope-egress")
    assert int(egress.get_attribute("data-bytes") or -1) == facts["egress"]["bytes"]
    assert f"{facts['egress']['bytes']:,}" in egress.inner_text()
    for category, c in facts["categories"].items():
        row = page.locator(f'#scope-categories tr[data-category="{category}"]')
        cells = row.locator("td").all_inner_texts()
        for n, measure in ((2, "records"), (3, "subjects")):
            low, high = c[measure]["low"], c[measure]["high"]
            assert row.get_attribute(f"data-{measure}-low") == str(low)
            assert row.get_attribute(f"data-{measure}-high") == str(high)
            assert " ".join(cells[n].split()) == f"{low:,} \u2013 {high:,}", (category, cells)


def check_audit(page: Page, site: Served, ident: str, steps: list[str]) -> None:
    """The audit table lists the action's steps, newest first, as the log holds them; the
    page says the chain is intact, as ``AuditLog.verify`` does."""
    assert page.locator("#audit-verdict").get_attribute("data-ok") == "1"
    assert AuditLog(site.home).verify().ok
    rows = page.locator(f'#audit-table tr[data-action="{ident}"]')
    assert [r.get_attribute("data-step") for r in rows.all()] == steps
    logged = [e for e in reversed(AuditLog(site.home).entries()) if e.action == ident]
    assert [r.get_attribute("data-seq") for r in rows.all()] == [str(e.seq) for e in logged]


def shot_page(page: Page, shots: Shots, path: str, name: str) -> None:
    answer = page.goto(path)
    assert answer is not None and answer.ok, (path, answer.status if answer else None)
    shots.take(page, name)

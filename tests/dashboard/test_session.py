"""Login, roles, CSRF, language, security headers: the dashboard's front door."""

from __future__ import annotations

import html

import pytest

from hemostat.server.auth import Tokens
from tests.dashboard.conftest import Site, TestClient, csrf_of, login

pytestmark = pytest.mark.slow  # the hospital is simulated and detected once per session


def test_a_page_without_a_session_sends_to_the_login_page(client: TestClient) -> None:
    answer = client.get("/?x=1", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=%2F%3Fx%3D1"


def test_each_human_role_logs_in_and_an_agent_token_does_not(
    client: TestClient, site: Site
) -> None:
    for token, shown in ((site.analyst, "test-analyst"), (site.responder, "test-responder")):
        client.cookies.clear()
        login(client, token)
        page = client.get("/")
        assert page.status_code == 200
        assert shown in page.text
    client.cookies.clear()
    form = client.get("/login")
    refused = client.post("/login", data={"token": site.agent, "csrf": csrf_of(form.text)},
                          follow_redirects=False)  # fmt: skip
    assert refused.status_code == 401
    assert "hemostat_session" not in refused.cookies
    assert client.get("/", follow_redirects=False).status_code == 303


def test_login_without_the_forms_csrf_value_is_refused(client: TestClient, site: Site) -> None:
    client.get("/login")
    refused = client.post("/login", data={"token": site.admin, "csrf": "forged"},
                          follow_redirects=False)  # fmt: skip
    assert refused.status_code == 401
    assert client.get("/", follow_redirects=False).status_code == 303


def test_an_open_redirect_after_login_goes_home(client: TestClient, site: Site) -> None:
    form = client.get("/login?next=//evil.example/x")
    done = client.post(
        "/login",
        data={"token": site.analyst, "csrf": csrf_of(form.text), "next": "//evil.example/x"},
        follow_redirects=False,
    )
    assert done.headers["location"] == "/"


def test_revoking_the_token_ends_its_session(client: TestClient, site: Site) -> None:
    login(client, site.analyst)
    assert client.get("/", follow_redirects=False).status_code == 200
    tokens = Tokens(site.home)
    ident = next(t.id for t in tokens.all() if t.name == "test-analyst")
    tokens.revoke(ident)
    assert client.get("/", follow_redirects=False).status_code == 303


def test_logout_needs_the_csrf_value_and_ends_the_session(client: TestClient, site: Site) -> None:
    csrf = login(client, site.responder)
    forged = client.post("/logout", data={"csrf": "nope"}, follow_redirects=False)
    assert forged.status_code == 403
    assert client.get("/", follow_redirects=False).status_code == 200
    done = client.post("/logout", data={"csrf": csrf}, follow_redirects=False)
    assert done.status_code == 303
    assert client.get("/", follow_redirects=False).status_code == 303


def test_a_post_from_another_site_is_refused(client: TestClient, site: Site) -> None:
    csrf = login(client, site.responder)
    answer = client.post("/logout", data={"csrf": csrf}, follow_redirects=False,
                         headers={"Origin": "https://evil.example"})  # fmt: skip
    assert answer.status_code == 403
    assert client.get("/", follow_redirects=False).status_code == 200


def test_language_follows_the_choice_and_pages_carry_security_headers(
    client: TestClient, site: Site
) -> None:
    login(client, site.analyst)
    client.get("/lang/en?next=/", follow_redirects=False)
    english = client.get("/")
    assert '<html lang="en">' in english.text and "Overview" in english.text
    client.get("/lang/fr?next=/", follow_redirects=False)
    french = client.get("/")
    assert '<html lang="fr">' in french.text and "Vue d'ensemble" in html.unescape(french.text)
    csp = french.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "default-src 'self'" in csp
    assert french.headers["x-frame-options"] == "DENY"
    assert french.headers["cache-control"] == "no-store"


def test_chart_library_is_served_locally(client: TestClient) -> None:
    js = client.get("/static/vendor/chart.umd.min.js")
    assert js.status_code == 200
    assert "Chart.js v4" in js.text[:200]
    assert client.get("/static/dashboard.js").status_code == 200

"""The SOC dashboard served by ``hemostat serve`` (issue 9; docs/dashboard.md).

Server-rendered pages for people, beside the API for agents: FastAPI routes render Jinja2
templates, a little vanilla JavaScript refreshes the live parts and draws the charts with
the vendored Chart.js. One module per group of pages, each with its ``router``:

* ``account``: log in (an API token of a human role), log out, language;
* ``overview``: ``/`` — site egress over time, live incidents, agents, containment at a glance;
* ``incident``: ``/incidents/ID`` — explanation, timeline, evidence, lineage, scoping bounds,
  containment buttons with a dry-run preview and a confirmation, reports;
* ``hosts``: ``/hosts/IP`` and ``/destinations/ADDR``;
* ``containment``: ``/containment`` — active actions, release, the audit log and its check.

``session`` holds the login, the roles and CSRF; ``views`` the templates and words;
``data`` the read queries (each request reads on its own cursor of the collector's store).
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from hemostat.config import Settings
from hemostat.server.collector import Collector
from hemostat.server.dashboard import account, containment, hosts, incident, overview
from hemostat.server.dashboard.session import Forbidden, LoginNeeded, Sessions, optional
from hemostat.server.dashboard.views import PACKAGE, page

ROUTERS = (account.router, overview.router, incident.router, hosts.router, containment.router)
#: fragments and downloads answer a JSON 401/403 instead of a page (the script reloads)
_NOT_PAGES = ("/fragments/", "/api/")


def mount(app: FastAPI, collector: Collector, settings: Settings) -> None:
    """Add the dashboard's pages, static files and session store to the collector's app."""
    app.state.sessions = Sessions(
        collector.tokens,
        idle=60 * float(settings.get("dashboard", "session_idle_minutes")),
        lifetime=3600 * float(settings.get("dashboard", "session_hours")),
    )  # fmt: skip
    app.mount("/static", StaticFiles(packages=[(PACKAGE, "static")]), name="static")
    for router in ROUTERS:
        app.include_router(router)
    app.add_exception_handler(LoginNeeded, _login_needed)  # type: ignore[arg-type]
    app.add_exception_handler(Forbidden, _forbidden)  # type: ignore[arg-type]
    app.middleware("http")(_headers)


async def _login_needed(request: Request, exc: LoginNeeded) -> Response:
    if request.url.path.startswith(_NOT_PAGES) or request.method != "GET":
        return JSONResponse({"error": "log in again", "field": "session"}, status_code=401)
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    suffix = f"&why={exc.reason}" if exc.reason else ""
    return RedirectResponse(f"/login?next={quote(target, safe='')}{suffix}", status_code=303)


async def _forbidden(request: Request, exc: Forbidden) -> Response:
    if request.url.path.startswith(_NOT_PAGES):
        return JSONResponse({"error": exc.message, "field": "session"}, status_code=403)
    return page(request, optional(request), "forbidden.html.j2", status=403,
                message=exc.message)  # fmt: skip


async def _headers(request: Request, call_next):  # type: ignore[no-untyped-def]
    response: Response = await call_next(request)
    if not request.url.path.startswith(("/api/", "/metrics", "/healthz")):
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self'; "
            "script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        )  # fmt: skip
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
    return response

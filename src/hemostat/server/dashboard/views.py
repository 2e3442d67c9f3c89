"""Rendering pages: the Jinja2 environment, the viewer's language, the read cursor.

Pages are plain server-rendered HTML (``templates/``, one per page, all extending
``base.html.j2``); live parts are small fragments the page's script fetches again
(``static/dashboard.js``). Charts are drawn in the browser by Chart.js, served from
``static/vendor/`` (no CDN: the site's Internet access may be cut), from JSON the page
embeds in a ``<script type="application/json">`` element.

Words come from the report's translation tables plus the dashboard's own
(``locales/<code>/*.yaml``, under the key ``ui``), so a number, a size or a time reads the
same in a page and in the report. The language is the viewer's choice (cookie), else the
``[dashboard] language`` setting, else French for a French site.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any

import orjson
import yaml
from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from hemostat.errors import ConfigError
from hemostat.report.lang import Code, Lang, language, load
from hemostat.server.collector import Collector
from hemostat.server.dashboard.session import LANG_COOKIE, Viewer
from hemostat.store import Store

PACKAGE = "hemostat.server.dashboard"


def collector(request: Request) -> Collector:
    found: Collector = request.app.state.collector
    return found


@contextmanager
def reader(request: Request) -> Iterator[Store]:
    """The collector's store through a cursor of its own, for one request's reads (DuckDB
    lets each thread read on its own cursor while the writer appends)."""
    store = collector(request).store
    if store is None:
        raise ConfigError("the collector's store is not open")
    with store.reading() as view:
        yield view


# ---- language -------------------------------------------------------------------------------


@cache
def ui_words(code: Code) -> dict[str, Any]:
    """The dashboard's words in one language: every ``locales/<code>/<part>.yaml`` merged
    (one file per group of pages, each under its own top-level keys)."""
    words: dict[str, Any] = {}
    folder = resources.files(PACKAGE).joinpath(f"locales/{code}")
    for part in sorted(folder.iterdir(), key=lambda p: p.name):
        if not part.name.endswith(".yaml"):
            continue
        loaded = yaml.safe_load(part.read_text("utf-8"))
        if not isinstance(loaded, dict):
            raise ConfigError(f"dashboard locales/{code}/{part.name}: not a mapping; "
                              "reinstall hemostat")  # fmt: skip
        clash = words.keys() & loaded.keys()
        if clash:
            raise ConfigError(f"dashboard locales/{code}/{part.name}: keys {sorted(clash)} "
                              "are defined twice")  # fmt: skip
        words.update(loaded)
    return words


def lang(request: Request) -> Lang:
    """The viewer's language, times in the site's time zone."""
    site = collector(request).inventory()
    zone = site.timezone or "UTC"
    chosen = request.cookies.get(LANG_COOKIE) or ""
    if chosen not in {c.value for c in Code}:
        setting = str(collector(request).settings.get("dashboard", "language") or "")
        chosen = setting if setting in {c.value for c in Code} else language(zone)
    words = load(chosen, zone)
    return Lang(words.code, words.zone, {**words.words, "ui": ui_words(words.code)})


# ---- templates ------------------------------------------------------------------------------


@cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader(PACKAGE, "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["json"] = to_json
    return env


def to_json(value: Any) -> Markup:
    """``value`` as JSON safe inside a ``<script type="application/json">`` element."""
    text = orjson.dumps(value, default=_default).decode()
    safe = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(safe)  # noqa: S704 - JSON with <, > and & escaped: no markup can start


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    raise TypeError(f"{type(value).__name__} is not JSON")


def _render(request: Request, viewer: Viewer | None, template: str, status: int,
            context: dict[str, Any]) -> HTMLResponse:  # fmt: skip
    words = lang(request)
    html = environment().get_template(template).render(
        request=request, viewer=viewer, lang=words, t=words.t,
        site=collector(request).inventory(), path=request.url.path, **context,
    )  # fmt: skip
    response = HTMLResponse(html, status_code=status)
    response.headers["Cache-Control"] = "no-store"
    return response


def page(
    request: Request, viewer: Viewer | None, template: str, status: int = 200, **context: Any
) -> HTMLResponse:
    """The page ``template`` for ``viewer`` (None: the login page)."""
    return _render(request, viewer, template, status, context)


def fragment(request: Request, viewer: Viewer, template: str, **context: Any) -> HTMLResponse:
    """A part of a page (``templates/fragments/``), fetched again by the page's script."""
    return _render(request, viewer, template, 200, context)

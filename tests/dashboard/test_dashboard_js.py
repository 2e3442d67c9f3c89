"""``static/dashboard.js`` in headless Chromium, without a collector (Playwright serves the
script, Chart.js and a fragment itself): a ``data-refresh`` element holding a chart is
replaced again and again, and each chart drawn in the replaced content is destroyed, so
Chart.js keeps one chart, not one per refresh."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from hemostat.server import dashboard
from tests.dashboard.browser import ARGS, CHROMIUM, missing

if TYPE_CHECKING:  # the module is skipped without playwright
    from playwright.sync_api import Page, Route

pytestmark = pytest.mark.browser
STATIC = Path(dashboard.__file__).parent / "static"
ORIGIN = "http://dashboard.test"
REFRESHES = 3
SPEC = {"kind": "line", "unit": "count", "x": [0, 60_000, 120_000],
        "series": [{"name": "n", "values": [1, 3, 2]}]}  # fmt: skip
PAGE = """<!doctype html><html><head><style>.chart {{ height: 200px; }}</style>
<script src="/static/vendor/chart.umd.min.js"></script></head>
<body data-lang="en" data-zone="UTC">
<div id="part" data-refresh="/fragment" data-every="1">{part}</div>
<script src="/static/dashboard.js"></script></body></html>"""


def part(serial: int) -> str:
    """A fragment with one chart; ``serial``: which answer it is (0: the page's own)."""
    return (f'<div class="chart"><canvas data-chart="spec" data-serial="{serial}"></canvas></div>'
            f'<script type="application/json" id="spec">{json.dumps(SPEC)}</script>')  # fmt: skip


@pytest.fixture
def page() -> Iterator[Page]:
    if why := missing():
        pytest.skip(why)
    from playwright.sync_api import sync_playwright

    served = {"n": 0}

    def answer(route: Route) -> None:
        path = route.request.url.removeprefix(ORIGIN)
        if path.startswith("/static/"):
            route.fulfill(path=str(STATIC / path.removeprefix("/static/")))
        elif path == "/fragment":
            served["n"] += 1
            route.fulfill(body=part(served["n"]), content_type="text/html")
        else:
            route.fulfill(body=PAGE.format(part=part(0)), content_type="text/html")

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, timeout=30_000)
        try:
            tab = browser.new_page()
            tab.set_default_timeout(15_000)
            tab.route(f"{ORIGIN}/**", answer)
            yield tab
        finally:
            browser.close()


def test_a_refresh_destroys_the_charts_of_the_content_it_replaces(page: Page) -> None:
    page.goto(f"{ORIGIN}/")
    page.wait_for_function("() => document.querySelector('canvas[data-serial=\"0\"]').chart")
    assert page.evaluate("() => Object.keys(Chart.instances).length") == 1
    page.wait_for_function(
        f"() => document.querySelector('canvas[data-serial=\"{REFRESHES}\"]')?.chart"
    )
    alive = page.evaluate("() => Object.values(Chart.instances).map(c => c.canvas.dataset.serial)")
    assert alive == [str(REFRESHES)]  # the three charts before it were destroyed
    assert page.evaluate("() => Chart.getChart(document.querySelector('canvas')) !== undefined")

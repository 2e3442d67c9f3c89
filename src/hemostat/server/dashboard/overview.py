"""``/``: the site at a glance — egress over time, live incidents, agents, containment.

The page renders every part at once (it reads without script); each part is also a
fragment the page fetches again: its own under ``/fragments/overview/`` (figures and
incidents every 10 s, the chart every minute), and the containment page's agents' health
and containment at a glance (``/fragments/agents``, ``/fragments/containment``, every 10 s).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from hemostat.incidents import Listed, listing
from hemostat.report.lang import Lang
from hemostat.server.dashboard import traffic
from hemostat.server.dashboard.containment import at_a_glance, health, in_force
from hemostat.server.dashboard.session import ViewerDep
from hemostat.server.dashboard.views import collector, fragment, lang, page, reader

router = APIRouter(include_in_schema=False)
HOURS, TOP = 24, 8


def _chart(request: Request, words: Lang) -> dict[str, Any]:
    """The egress chart of the last ``HOURS`` hours of data and its figures."""
    site = collector(request).inventory()
    names = {h.ip: h.name for h in site.hosts}
    with reader(request) as store:
        period = traffic.last_minutes(store, HOURS)
        if period is None or period.covered.until is None:  # nothing rolled up: no figures
            return {"period": period, "spec": None, "last_hour": None, "top": []}
        stacked = traffic.stack(store, period, TOP)
    spec = stacked.spec(lambda ip: f"{names[ip]} ({ip})" if ip in names else ip,
                        words.t("ui.overview.others"))  # fmt: skip
    last_hour = stacked.total(period.end - traffic.HOUR)
    return {"period": period, "spec": spec, "last_hour": last_hour, "top": stacked.top}


def _incidents(request: Request) -> list[Listed]:
    with reader(request) as store:
        return listing(store)


def _parts(request: Request) -> dict[str, Any]:
    """The headline figures' data (and the agents' health they count)."""
    found = _incidents(request)
    return {"incidents": found, "open": sum(1 for i in found if i.status == "open"),
            "in_force": in_force(request), **health(request)}  # fmt: skip


@router.get("/")
def overview(request: Request, viewer: ViewerDep) -> Response:
    chart = _chart(request, lang(request))
    return page(request, viewer, "overview.html.j2", **chart, **_parts(request),
                **at_a_glance(request))  # fmt: skip


@router.get("/fragments/overview/egress")
def egress_fragment(request: Request, viewer: ViewerDep) -> Response:
    return fragment(request, viewer, "fragments/overview_egress.html.j2",
                    **_chart(request, lang(request)))  # fmt: skip


@router.get("/fragments/overview/figures")
def figures_fragment(request: Request, viewer: ViewerDep) -> Response:
    with reader(request) as store:
        period = traffic.last_minutes(store, 1)
        rolled = period is not None and period.covered.until is not None
        last_hour = traffic.sent(store, period) if period and rolled else None
    return fragment(request, viewer, "fragments/overview_figures.html.j2",
                    last_hour=last_hour, **_parts(request))  # fmt: skip


@router.get("/fragments/overview/incidents")
def incidents_fragment(request: Request, viewer: ViewerDep) -> Response:
    return fragment(request, viewer, "fragments/overview_incidents.html.j2",
                    incidents=_incidents(request))  # fmt: skip

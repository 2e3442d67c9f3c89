"""``/``: the site at a glance — egress over time, live incidents, agents, containment.

The page renders every part at once (it reads without script); each part is also a
fragment under ``/fragments/overview/`` the page fetches again (incidents, agents and
containment every 10 s, the chart every minute).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from hemostat.incidents import Listed, listing
from hemostat.report.lang import Lang
from hemostat.server.auth import Role
from hemostat.server.dashboard import traffic
from hemostat.server.dashboard.session import ViewerDep
from hemostat.server.dashboard.views import collector, fragment, lang, page, reader
from hemostat.server.metrics import SEEN_SECONDS

router = APIRouter(include_in_schema=False)
HOURS, TOP = 24, 8
#: containment states whose rules are (or may still be) in force
IN_FORCE = ("active", "pending", "releasing", "release_failed")


@dataclass(frozen=True, slots=True)
class Agent:
    name: str
    ip: str | None
    seen: datetime | None
    lag: float | None
    spool: int | None

    @property
    def stale(self) -> bool:
        return self.seen is None or (datetime.now(UTC) - self.seen).total_seconds() > SEEN_SECONDS


def agents(request: Request) -> list[Agent]:
    """Every enrolled agent (active agent token) with its latest batch, stale ones first."""
    found = collector(request)
    seen = dict(found.metrics.agents)
    out = []
    for token in found.tokens.all():
        if token.role is not Role.AGENT or not token.active:
            continue
        s = seen.get(token.id)
        out.append(Agent(token.name, token.ip or (s.ip if s else None), s.at if s else None,
                         s.lag if s else None, s.spool_bytes if s else None))  # fmt: skip
    return sorted(out, key=lambda a: (not a.stale, a.name))


def containment(request: Request) -> Counter[str]:
    """Containment actions in force, per kind (host, site, destination)."""
    return Counter(a["kind"] for a in collector(request).responder.listing()
                   if a["status"] in IN_FORCE)  # fmt: skip


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
    found = _incidents(request)
    known = agents(request)
    return {"incidents": found, "open": sum(1 for i in found if i.status == "open"),
            "agents": known, "agents_ok": sum(1 for a in known if not a.stale),
            "containment": containment(request), "now": datetime.now(UTC)}  # fmt: skip


@router.get("/")
def overview(request: Request, viewer: ViewerDep) -> Response:
    chart = _chart(request, lang(request))
    return page(request, viewer, "overview.html.j2", **chart, **_parts(request))


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


@router.get("/fragments/overview/agents")
def agents_fragment(request: Request, viewer: ViewerDep) -> Response:
    return fragment(request, viewer, "fragments/overview_agents.html.j2",
                    agents=agents(request), now=datetime.now(UTC))  # fmt: skip


@router.get("/fragments/overview/containment")
def containment_fragment(request: Request, viewer: ViewerDep) -> Response:
    return fragment(request, viewer, "fragments/overview_containment.html.j2",
                    containment=containment(request))  # fmt: skip

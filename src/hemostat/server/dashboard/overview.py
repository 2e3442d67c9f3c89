"""``/``: the site at a glance — egress over time, live incidents, agents, containment."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from hemostat.incidents import listing
from hemostat.server.dashboard.session import ViewerDep
from hemostat.server.dashboard.views import page, reader

router = APIRouter(include_in_schema=False)


@router.get("/")
def overview(request: Request, viewer: ViewerDep) -> Response:
    with reader(request) as store:
        incidents = listing(store)
    return page(request, viewer, "overview.html.j2", incidents=incidents)

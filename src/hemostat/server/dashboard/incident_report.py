"""The incident's report (``hemostat.report.render``, HTML or PDF, French or English) and its
evidence bundle, as downloads. Reading is an analyst's job: any logged-in viewer may.

The bundle is written with the scope's own time (``generated_at``), so the report's
manifest SHA-256 is the one of the zip downloaded beside it, as long as the incident and its
audit log have not changed in between.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import Response

from hemostat.incidents import Listed
from hemostat.report import Bundle, render, write_bundle
from hemostat.report.lang import Code
from hemostat.scope import Scope
from hemostat.server.dashboard import views
from hemostat.server.dashboard.incident_data import find, findings
from hemostat.server.dashboard.incident_scope import scoped
from hemostat.server.dashboard.session import Viewer, ViewerDep
from hemostat.server.dashboard.views import collector, page, reader
from hemostat.store import Store

router = APIRouter(include_in_schema=False)
TYPES = {"html": "text/html; charset=utf-8", "pdf": "application/pdf"}
ZIP = "application/zip"


@router.get("/incidents/{ident}/report.{suffix}")
def report(
    request: Request, viewer: ViewerDep, ident: str, suffix: str, lang: str = ""
) -> Response:
    """The report as a download; ``lang`` fr or en (default: the viewer's language)."""
    code = _code(request, lang)
    if suffix not in TYPES:
        return _missing(request, viewer, ident)
    with reader(request) as store, tempfile.TemporaryDirectory(prefix="hemostat-") as tmp:
        listed = find(store, ident)
        if listed is None:
            return _missing(request, viewer, ident)
        answer = scoped(request, store, listed)
        bundle = _bundle(store, answer, Path(tmp))
        name = f"{ident}-report-{code}.{suffix}"
        found = findings(store, listed.incident)
        settings = collector(request).settings
        path = render(answer, Path(tmp) / name, code, bundle=bundle, found=found, settings=settings)
        data = path.read_bytes()
    return _download(data, TYPES[suffix], name)


@router.get("/incidents/{ident}/evidence.zip")
def evidence(request: Request, viewer: ViewerDep, ident: str) -> Response:
    """The evidence bundle behind every number of the report."""
    with reader(request) as store, tempfile.TemporaryDirectory(prefix="hemostat-") as tmp:
        listed: Listed | None = find(store, ident)
        if listed is None:
            return _missing(request, viewer, ident)
        bundle = _bundle(store, scoped(request, store, listed), Path(tmp))
        data = bundle.path.read_bytes()
    return _download(data, ZIP, bundle.path.name)


def _bundle(store: Store, answer: Scope, folder: Path) -> Bundle:
    path = folder / f"{answer.incident.id}-evidence.zip"
    return write_bundle(store, answer, path, generated_at=answer.generated_at)


def _code(request: Request, asked: str) -> str:
    return asked if asked in {c.value for c in Code} else str(views.lang(request).code)


def _download(data: bytes, media_type: str, name: str) -> Response:
    return Response(
        data,
        media_type=media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )


def _missing(request: Request, viewer: Viewer, ident: str) -> Response:
    return page(request, viewer, "incident_missing.html.j2", status=404, ident=ident)

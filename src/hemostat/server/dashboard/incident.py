"""``/incidents/ID``: one incident explained, charted, evidenced, scoped, contained, reported.

The page itself reads only what is quick (the incident, its findings, the timeline, the
first rows of the evidence tables); the scoping section is a lazy fragment
(``incident_scope``). Around it:

* ``incident_data``: the incident, its findings, whom and what it names, when contained;
* ``incident_chart``: the timeline chart's spec;
* ``incident_evidence``: the evidence tables and their CSV downloads;
* ``incident_scope``: the bounds per category and data store, the lineage diagram;
* ``incident_contain``: isolate / block / cut, with the dry-run preview and confirmation;
* ``incident_report``: the report (HTML, PDF) and the evidence bundle as downloads.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from hemostat.report import findings
from hemostat.report.lang import Lang
from hemostat.server.dashboard import (
    incident_chart,
    incident_contain,
    incident_evidence,
    incident_report,
    incident_scope,
)
from hemostat.server.dashboard.incident_data import contained_at, find, subject
from hemostat.server.dashboard.session import ViewerDep
from hemostat.server.dashboard.views import collector, lang, page, reader

router = APIRouter(include_in_schema=False)
for _part in (incident_evidence, incident_scope, incident_contain, incident_report):
    router.include_router(_part.router)


@router.get("/incidents/{ident}")
def incident_page(request: Request, viewer: ViewerDep, ident: str) -> Response:
    words = lang(request)
    settings = collector(request).settings
    with reader(request) as store:
        listed = find(store, ident)
        if listed is None:
            return page(request, viewer, "incident_missing.html.j2", status=404, ident=ident)
        s = subject(store, collector(request).inventory(), listed)
        contained = contained_at(store, listed.incident)
        chart = incident_chart.spec(store, s, contained, words)
        tables = incident_evidence.tables(store, s)
        answer = incident_scope.cached(store, listed)
    summary = findings.summary(s.incident, s.findings, words, settings)
    sentences = {f.id: findings.sentence(f, words, settings) for f in s.findings}
    return page(request, viewer, "incident.html.j2", subj=s, i=s.incident, contained=contained,
                chart=chart, tables=tables, answer=answer, status_word=_status(words, s.status),
                summary=summary, sentences=sentences,
                lineage=incident_scope.lineage_svg(answer, words) if answer else None,
                duration=s.incident.end - s.incident.start)  # fmt: skip


def _status(words: Lang, status: str) -> str:
    known: dict[str, str] = words.words["ui"]["incident"]["status"]
    return known.get(status, status)

"""The scoping section of the incident page: the answer of ``hemostat scope`` (the same
function, hence the same numbers), with the report's lineage diagram inline.

Scoping reads flows, DNS and access events around the incident: a second or two on a big
store. Its answer is kept in memory per incident version (the store, the incident's id and
``updated_at``, the last audit entry, since the answer lists the containment actions, and a
hash of the inventory file the collector reloads when it changes, since the bounds rest on
its data stores and networks), and the page loads the section as a lazy fragment, so the
page itself answers at once.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from datetime import datetime
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import Response
from markupsafe import Markup

from hemostat.errors import HemostatError
from hemostat.incidents import Listed
from hemostat.report.document import environment as report_templates
from hemostat.report.lang import Lang
from hemostat.report.lineage import layout
from hemostat.scope import Scope, scope
from hemostat.server.collector import INVENTORY
from hemostat.server.dashboard.incident_data import find
from hemostat.server.dashboard.session import ViewerDep
from hemostat.server.dashboard.views import collector, fragment, lang, reader
from hemostat.store import Store

router = APIRouter(include_in_schema=False)
KEEP = 16  # answers kept (the most recently used)

Key = tuple[str, str, datetime, int, str]
_answers: OrderedDict[Key, Scope] = OrderedDict()
_computing: dict[Key, threading.Lock] = {}
_guard = threading.Lock()


def key(store: Store, listed: Listed) -> Key:
    rows = store.con.execute("SELECT coalesce(max(seq), 0) FROM actions").fetchall()
    return (str(store.path), listed.incident.id, listed.updated_at, int(rows[0][0]),
            inventory_digest(store.home))  # fmt: skip


def inventory_digest(home: Path) -> str:
    """The identity of ``HOME/inventory.yaml`` (a hash of its bytes; empty when there is none
    or it cannot be read): ``hemostat inventory load`` or an edit makes it a new answer."""
    try:
        return hashlib.blake2b((home / INVENTORY).read_bytes(), digest_size=16).hexdigest()
    except OSError:
        return ""


def cached(store: Store, listed: Listed) -> Scope | None:
    """The answer already computed for this version of the incident, if any."""
    with _guard:
        return _answers.get(key(store, listed))


def scoped(request: Request, store: Store, listed: Listed) -> Scope:
    """The scope of ``listed`` (computed once per version, even when asked for at once by
    several requests)."""
    k = key(store, listed)
    with _guard:
        if (hit := _answers.get(k)) is not None:
            _answers.move_to_end(k)
            return hit
        lock = _computing.setdefault(k, threading.Lock())
    with lock:
        with _guard:
            hit = _answers.get(k)
        if hit is None:
            c = collector(request)
            hit = scope(store, c.inventory(), listed.incident.id, c.settings)
            _keep(k, hit)
    with _guard:
        _computing.pop(k, None)
    return hit


def _keep(k: Key, answer: Scope) -> None:
    with _guard:
        _answers[k] = answer
        while len(_answers) > KEEP:
            _answers.popitem(last=False)


def lineage_svg(answer: Scope, words: Lang) -> Markup:
    """The report's lineage diagram (``report/lineage.py``, ``lineage.svg.j2``) as inline SVG."""
    svg = report_templates().get_template("lineage.svg.j2").render(d=layout(answer, words),
                                                                   L=words)  # fmt: skip
    return Markup(svg)  # noqa: S704 - rendered by an autoescaping template from our layout


@router.get("/fragments/incidents/{ident}/scope")
def scope_fragment(request: Request, viewer: ViewerDep, ident: str) -> Response:
    """The scoping section (bounds per category and data store, egress, lineage)."""
    error: str | None = None
    answer: Scope | None = None
    with reader(request) as store:
        listed = find(store, ident)
        if listed is not None:
            try:
                answer = scoped(request, store, listed)
            except HemostatError as exc:
                error = str(exc)
    words = lang(request)
    response = fragment(request, viewer, "fragments/incident_scope.html.j2", ident=ident,
                        answer=answer, error=error, missing=listed is None,
                        lineage=lineage_svg(answer, words) if answer else None)  # fmt: skip
    if listed is None:
        response.status_code = 404
    return response

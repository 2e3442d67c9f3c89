"""Containment from the incident page: "isolate host", "block destination" and "cut site
egress" post what to contain to a preview (the collector's dry run: the plan, its exact
nftables rules, the recent flows it would stop, which agent would carry it out), whose
confirmation form applies it and leads to ``/containment``.

Responders and administrators only: both routes depend on ``ResponderDep`` (an analyst gets
403, whatever the form holds) and check the session's CSRF value. Only the incident's own
hosts and destinations are offered; the reason always names the incident, so that its
report lists the action. A refusal of the collector (409: no agent can carry it out, 422: a
bad target or time to live) is shown on the preview page, in words.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from hemostat.incidents import Listed
from hemostat.report.lang import Lang
from hemostat.server import Refused
from hemostat.server.dashboard.containment import KINDS, coded, describe, refusal
from hemostat.server.dashboard.incident_data import find, targets
from hemostat.server.dashboard.session import ResponderDep, Viewer, posted, token_of
from hemostat.server.dashboard.views import collector, lang, page, reader
from hemostat.server.respond import ContainRequest

router = APIRouter(include_in_schema=False)


@dataclass(frozen=True, slots=True)
class Asked:
    """What the form asks to contain."""

    kind: str
    target: str
    reason: str
    ttl: str

    def request(self, ident: str, apply: bool) -> ContainRequest:
        reason = self.reason.strip()
        if ident not in reason:  # the report finds the incident's actions by their reason
            reason = f"{ident}: {reason}" if reason else ident
        return ContainRequest.model_validate({"kind": self.kind, "target": self.target,
                                              "ttl": self.ttl.strip() or None, "reason": reason,
                                              "apply": apply})  # fmt: skip


@router.post("/incidents/{ident}/contain/preview")
async def preview(request: Request, viewer: ResponderDep, ident: str) -> Response:
    form = await posted(request, viewer)
    return await run_in_threadpool(_act, request, viewer, ident, form, False)


@router.post("/incidents/{ident}/contain/apply")
async def apply(request: Request, viewer: ResponderDep, ident: str) -> Response:
    form = await posted(request, viewer)
    return await run_in_threadpool(_act, request, viewer, ident, form, True)


def _act(
    request: Request, viewer: Viewer, ident: str, form: dict[str, str], applying: bool
) -> Response:
    """The dry run (the preview page) or the action itself (then to /containment); a
    refusal shows the preview page again with the collector's words, to retry."""
    listed = _find(request, ident)
    if listed is None:
        return page(request, viewer, "incident_missing.html.j2", status=404, ident=ident)
    asked = _asked(request, listed, form)
    try:
        _check(request, listed, asked)
        done = _contain(request, viewer, listed, asked, apply=applying)
    except Refused as exc:
        return _shown(request, viewer, listed, asked, None, exc)
    if applying:
        return RedirectResponse(f"/containment?action={done['action']}", status_code=303)
    return _shown(request, viewer, listed, asked, done, None)


def _find(request: Request, ident: str) -> Listed | None:
    with reader(request) as store:
        return find(store, ident)


def _asked(request: Request, listed: Listed, form: dict[str, str]) -> Asked:
    kind = form.get("kind", "").strip()
    default = f"{listed.incident.id}: {lang(request).word('kind', listed.incident.kind)}"
    return Asked(kind, form.get("target", "").strip() if kind != "site" else "",
                 form.get("reason", default), form.get("ttl", ""))  # fmt: skip


def _check(request: Request, listed: Listed, asked: Asked) -> None:
    """Only what the incident names is contained from its page (422 otherwise)."""
    hosts, destinations = targets(collector(request).inventory(), listed.incident)
    if asked.kind not in KINDS:
        raise Refused(422, f"unknown containment kind {asked.kind!r}: choose host, destination "
                      "or site", "kind", code="bad_kind", values={"kind": asked.kind})  # fmt: skip
    allowed = {"host": hosts, "destination": destinations, "site": ("",)}[asked.kind]
    if asked.target not in allowed:
        ident = listed.incident.id
        raise Refused(422, f"{asked.target} is not a host or destination of {ident}: contain it "
                      "from the containment page or with `hemostat contain`", "target",
                      code="target_not_in_incident",
                      values={"target": asked.target, "id": ident})  # fmt: skip


def _contain(
    request: Request, viewer: Viewer, listed: Listed, asked: Asked, apply: bool
) -> dict[str, Any]:
    c = collector(request)
    return c.responder.contain(asked.request(listed.incident.id, apply), token_of(viewer, c.tokens))


def _shown(
    request: Request, viewer: Viewer, listed: Listed, asked: Asked,
    dry: dict[str, Any] | None, refused: Refused | None,
) -> Response:  # fmt: skip
    words = lang(request)
    what = describe(words, asked.kind, asked.target, asked.kind)
    return page(request, viewer, "incident_contain.html.j2",
                status=refused.status if refused else 200, incident=listed.incident,
                asked=asked, what=what, dry=dry, impact=_impact(dry), refused=refused,
                refusal=refusal(words, refused) if refused else "", notes=_notes(words, dry),
                expires=_when(((dry or {}).get("action") or {}).get("expires")))  # fmt: skip


def _notes(words: Lang, dry: dict[str, Any] | None) -> dict[str, Any]:
    """The dry run's warnings and why no agent would carry it out, in the viewer's language
    (the English of the answer where it gives no code)."""
    if dry is None:
        return {"warnings": [], "agent": ""}
    english, codes = list(dry.get("warnings") or []), list(dry.get("warning_codes") or [])
    if len(codes) == len(english):
        english = [coded(words, "warning", c.get("code"), c.get("values") or {}, text)
                   for c, text in zip(codes, english, strict=True)]  # fmt: skip
    action = dry.get("action") or {}
    values = {"target": action.get("target", ""), "kind": action.get("kind", "")}
    agent = coded(words, "refusal", dry.get("agent_code"), values, dry.get("agent_note") or "")
    return {"warnings": english, "agent": agent}


def _impact(dry: dict[str, Any] | None) -> dict[str, Any] | None:
    """The dry run's flows with their times as datetimes (shown in the site's zone)."""
    flows = (dry or {}).get("flows")
    if not flows:
        return None
    rows = [{**f, "last": _when(f.get("last"))} for f in flows.get("flows", [])]
    return {**flows, "since": _when(flows.get("since")), "until": _when(flows.get("until")),
            "flows": rows}  # fmt: skip


def _when(text: Any) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if isinstance(text, str) else None

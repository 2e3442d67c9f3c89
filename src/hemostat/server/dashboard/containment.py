"""``/containment``: the containment actions (active, with their time left and a release
form; past), the audit log newest first with its verification, and two fragments the
overview shows and refreshes: the agents' health and containment at a glance.

Everything here is read from the collector's responder (the command queue) and the audit
log under HOME, not from the store: the page says what the agents were told and what they
answered, and whether the hash chain of the log still holds.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from hemostat.audit import AuditLog, Entry, Verdict
from hemostat.contain.plan import Kind
from hemostat.errors import HemostatError
from hemostat.report.lang import Lang
from hemostat.server import Refused
from hemostat.server.auth import Role
from hemostat.server.dashboard.session import ResponderDep, Viewer, ViewerDep, posted
from hemostat.server.dashboard.views import collector, fragment, lang, page
from hemostat.server.metrics import SEEN_SECONDS
from hemostat.server.respond import State

router = APIRouter(include_in_schema=False)
#: actions whose rules may be in force (or are about to be)
LIVE = frozenset({State.PENDING, State.ACTIVE, State.RELEASING, State.RELEASE_FAILED})
#: what ``Responder.release`` accepts
RELEASABLE = frozenset({State.PENDING, State.ACTIVE, State.RELEASE_FAILED})
FAILED = frozenset({State.FAILED, State.ROLLED_BACK, State.RELEASE_FAILED})
#: the kinds of action (host, site, destination)
KINDS = tuple(k.value for k in Kind)
#: audit entries shown (newest first); the verification always covers the whole log
AUDIT_SHOWN = 500
HASH_SHOWN = 12


@dataclass(frozen=True, slots=True)
class Shown:
    """One containment action as the page shows it."""

    id: str
    kind: str
    target: str
    description: str
    status: State
    agent: str
    by: str
    issued: datetime | None
    reason: str
    detail: str
    expires: datetime | None
    left: timedelta | None  # time to live left (None: no expiry, or over)
    released_by: str | None
    released: datetime | None
    release_detail: str  # the agent's answer to the release
    rules: str | None

    @property
    def live(self) -> bool:
        return self.status in LIVE

    @property
    def releasable(self) -> bool:
        return self.status in RELEASABLE


@dataclass(frozen=True, slots=True)
class Line:
    """One audit entry; ``verified``: before the first problem the check found."""

    entry: Entry
    ts: datetime | None
    verified: bool

    @property
    def short(self) -> str:
        return self.entry.hash[:HASH_SHOWN]


@dataclass(frozen=True, slots=True)
class Agent:
    name: str
    ip: str | None
    seen: datetime | None
    ago: timedelta | None
    lag: timedelta | None
    spool: int | None

    @property
    def stale(self) -> bool:
        return self.ago is None or self.ago.total_seconds() > SEEN_SECONDS


# ---- pages ------------------------------------------------------------------------------


@router.get("/containment")
def containment(
    request: Request, viewer: ViewerDep, action: str = "", released: str = ""
) -> Response:
    """The page; ``action`` or ``released``: the action just sent or released (a notice)."""
    if released:
        return _page(request, viewer, notice=("ui.containment.release.sent", released))
    return _page(request, viewer, notice=("ui.containment.sent", action) if action else None)


@router.post("/containment/{action_id}/release")
async def release(request: Request, action_id: str, viewer: ResponderDep) -> Response:
    form = await posted(request, viewer)
    reason = form.get("reason", "").strip()
    if not reason:
        words = lang(request).t("ui.containment.release.need_reason", id=action_id)
        return _page(request, viewer, status=422, refused=words)
    responder = collector(request).responder
    try:
        await anyio.to_thread.run_sync(responder.release, action_id, reason, viewer.name)
    except Refused as exc:
        return _page(request, viewer, status=exc.status, refused=refusal(lang(request), exc))
    except HemostatError as exc:
        return _page(request, viewer, status=500, refused=str(exc))
    return RedirectResponse(f"/containment?released={action_id}", status_code=303)


def _page(
    request: Request, viewer: Viewer, status: int = 200,
    notice: tuple[str, str] | None = None, refused: str = "",
) -> Response:  # fmt: skip
    shown = actions(request)
    audit = AuditLog(collector(request).home)
    verdict = audit.verify()
    lines = audit_lines(audit, verdict)
    return page(request, viewer, "containment.html.j2", status=status, actions=shown,
                verdict=verdict, lines=lines[:AUDIT_SHOWN], total=len(lines),
                notice=notice if notice and any(a.id == notice[1] for a in shown) else None,
                refused=refused)  # fmt: skip


# ---- fragments --------------------------------------------------------------------------


@router.get("/fragments/containment/actions")
def actions_fragment(request: Request, viewer: ViewerDep) -> Response:
    """The active and past actions of the page, fetched again every few seconds."""
    return fragment(request, viewer, "fragments/containment_actions.html.j2",
                    actions=actions(request))  # fmt: skip


@router.get("/fragments/containment")
def glance(request: Request, viewer: ViewerDep) -> Response:
    """Containment at a glance: the overview's panel, fetched again every few seconds."""
    return fragment(request, viewer, "fragments/containment.html.j2", **at_a_glance(request))


@router.get("/fragments/agents")
def agents_fragment(request: Request, viewer: ViewerDep) -> Response:
    """The agents: when each last sent a batch, its lag and spool; stale ones flagged."""
    return fragment(request, viewer, "fragments/agents.html.j2", **health(request))


# ---- data -------------------------------------------------------------------------------


def at_a_glance(request: Request) -> dict[str, Any]:
    """What the glance shows: the active actions (and how many per kind), those waiting for
    an agent, the failed ones, and the audit log's verdict."""
    shown = actions(request)
    active = [a for a in shown if a.status is State.ACTIVE]
    return {"active": active, "by_kind": {k: sum(a.kind == k for a in active) for k in KINDS},
            "waiting": sum(a.status in (State.PENDING, State.RELEASING) for a in shown),
            "failed": [a for a in shown if a.status in FAILED],
            "verdict": AuditLog(collector(request).home).verify()}  # fmt: skip


def health(request: Request) -> dict[str, Any]:
    """What the agents' health shows: every agent, how many are stale, after how long."""
    found = agents(request)
    return {"agents": found, "stale": sum(a.stale for a in found),
            "limit": timedelta(seconds=SEEN_SECONDS)}  # fmt: skip


def in_force(request: Request) -> int:
    """How many actions' rules are (or may still be) in force."""
    return sum(a["status"] in LIVE for a in collector(request).responder.listing())


def actions(request: Request) -> list[Shown]:
    """Every action the collector sent, newest first, with the rules the audit log kept."""
    home = collector(request).home
    audit = AuditLog(home)
    rules = _rules_by_action(audit)
    now = datetime.now(UTC)
    listed, words = collector(request).responder.listing(), lang(request)
    shown = [_shown(a, now, audit, rules.get(str(a["id"])), words) for a in listed]
    return sorted(shown, key=lambda a: a.issued or datetime.min.replace(tzinfo=UTC),
                  reverse=True)  # fmt: skip


def _shown(
    a: dict[str, Any], now: datetime, audit: AuditLog, sha: str | None, words: Lang
) -> Shown:
    expires = _when(a.get("expires"))
    left = expires - now if expires and expires > now else None
    release = a.get("release") or {}
    return Shown(
        id=str(a["id"]), kind=str(a["kind"]), target=str(a["target"]),
        description=describe(words, str(a["kind"]), str(a["target"]), str(a["description"])),
        status=State(a["status"]),
        agent=str(a.get("agent_name") or a.get("agent") or "?"), by=str(a.get("by") or ""),
        issued=_when(a.get("issued")), reason=str(a.get("reason") or ""),
        detail=str(a.get("detail") or ""), expires=expires, left=left,
        released_by=release.get("by"), released=_when(release.get("issued")),
        release_detail=str(release.get("detail") or ""), rules=audit.rules(sha) if sha else None,
    )  # fmt: skip


def describe(words: Lang, kind: str, target: str, otherwise: str) -> str:
    """An action in the viewer's language (``Plan.describe()``, ``otherwise``, stays English
    for the CLI, the log and the audit log; it is shown for a kind these words do not know)."""
    return words.t(f"ui.common.action.{kind}", target=target) if kind in KINDS else otherwise


def refusal(words: Lang, refused: Refused) -> str:
    """A refusal of the collector in the viewer's language, from its code."""
    return coded(words, "refusal", refused.code, refused.values, refused.message)


def coded(
    words: Lang, group: str, code: str | None, values: Mapping[str, object], otherwise: str
) -> str:
    """The text ``ui.<group>.<code>`` filled with ``values`` (and a ``state``'s words as
    ``state_word``); ``otherwise`` (the English of the API) for no code or an unknown one."""
    if not code:
        return otherwise
    extra = {}
    if "state" in values:
        extra["state_word"] = _word(words, f"ui.containment.state.{values['state']}",
                                    str(values["state"]))  # fmt: skip
    return _word(words, f"ui.{group}.{code}", otherwise, **values, **extra)


def _word(words: Lang, key: str, otherwise: str, **values: object) -> str:
    try:  # formatted here even without values: a field left unfilled is a missing value
        return words.t(key).format(**values)
    except (KeyError, IndexError, ValueError):  # an unknown key, or a field it lacks
        return otherwise


def _rules_by_action(audit: AuditLog) -> dict[str, str]:
    """The rules file of each action's latest audit entry that has one (apply over plan)."""
    found: dict[str, str] = {}
    for line in _parsed(audit):
        if line.rules_sha256:
            found[line.action] = line.rules_sha256
    return found


def audit_lines(audit: AuditLog, verdict: Verdict) -> list[Line]:
    """The log's entries newest first; those after the first problem are marked unverified
    (a line that is not an entry at all is left out: the verdict names it)."""
    lines = [Line(e, _when(e.ts), n < verdict.entries) for n, e in enumerate(_parsed(audit))]
    return lines[::-1]


def _parsed(audit: AuditLog) -> list[Entry]:
    """Every line of the log that reads as an entry, in file order, whether or not the chain
    holds (``AuditLog.entries`` refuses a broken log; the page shows it with its problem)."""
    try:
        text = audit.path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise HemostatError(f"{audit.path}: cannot read the audit log: {exc}") from exc
    found = []
    for raw in text.splitlines():
        try:
            found.append(Entry(**json.loads(raw)))
        except (ValueError, TypeError):
            continue
    return found


def agents(request: Request) -> list[Agent]:
    """Agents that sent a batch since the collector started, then enrolled ones never seen;
    each at the address it was enrolled for (the host it protects), else the one its latest
    batch came from."""
    now = datetime.now(UTC)
    seen = dict(collector(request).metrics.agents)
    enrolled = [t for t in collector(request).tokens.all() if t.role is Role.AGENT]
    ips = {t.id: t.ip for t in enrolled}
    found = [Agent(s.name, ips.get(i) or s.ip, s.at, now - s.at, timedelta(seconds=s.lag),
                   s.spool_bytes) for i, s in seen.items()]  # fmt: skip
    found += [Agent(t.name, t.ip, None, None, None, None) for t in enrolled
              if t.active and t.id not in seen]  # fmt: skip
    return sorted(found, key=lambda a: (not a.stale, a.name))


def _when(text: object) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None

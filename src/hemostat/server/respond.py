"""The collector's side of containment (issue 7): plan an action from the inventory, audit
it, send it to the agent that carries it out, follow that agent's result; and respond
automatically to incidents when ``[respond] auto`` says so.

Who carries out what: a host isolation goes to the agent of that host (enrolled with
``--ip`` for that address, else the agent whose batches come from it); a site cut and a
destination block go to the gateway (an agent started with ``--gateway``, which says so in
the ``X-Hemostat-Gateway: 1`` header of its command polls). No such agent: 409.

An action is known by its plan's id (``act-`` and 12 hex: the id in the rules' comments and
the audit log); the commands that carry it (``isolate``/``block``, then ``release``/
``unblock``) are found in the command queue, so the list of actions and their status survive
a restart of the collector. Every step goes to the audit log under HOME; ``sync`` mirrors
the log into the store's ``actions`` table after each live detection pass (its thread).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal, cast

import duckdb
from pydantic import BaseModel, ConfigDict

from hemostat.audit import AuditLog, Step
from hemostat.config import Settings
from hemostat.contain import rules
from hemostat.contain.apply import resolve
from hemostat.contain.plan import Kind, Plan, parse_ttl, plan_destination, plan_host, plan_site
from hemostat.contain.site import Site, ip_of, network
from hemostat.errors import HemostatError
from hemostat.inventory import Inventory
from hemostat.schema import CommandStatus as Answer
from hemostat.schema import utc_text
from hemostat.server import Refused
from hemostat.server.auth import Role, Token, Tokens
from hemostat.server.commands import Action as Verb
from hemostat.server.commands import Command, Queue
from hemostat.store import Store

log = logging.getLogger(__name__)
GATEWAY_HEADER = "x-hemostat-gateway"
APPLY = {Kind.HOST: Verb.ISOLATE, Kind.SITE: Verb.ISOLATE, Kind.DESTINATION: Verb.BLOCK}
RELEASE = {Verb.ISOLATE: Verb.RELEASE, Verb.BLOCK: Verb.UNBLOCK}


class ContainRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["host", "site", "destination"]
    target: str = ""
    ttl: str | None = None
    reason: str = ""
    apply: bool = False


class ReleaseRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = ""


class State(StrEnum):
    PENDING = "pending"  # sent, no answer yet
    ACTIVE = "active"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"
    RELEASING = "releasing"
    RELEASED = "released"
    RELEASE_FAILED = "release_failed"  # the rules may still be in force
    EXPIRED = "expired"  # its time to live is over (the agent removes it)


@dataclass(frozen=True, slots=True)
class Action:
    """One containment action as the command queue knows it."""

    plan: Plan
    command: Command  # isolate or block
    release: Command | None = None

    def state(self, now: datetime) -> State:
        status = self.command.status
        if status is None:
            return State.PENDING
        if status is not Answer.DONE:
            return State(str(status))
        if self.release is not None:
            if self.release.status is None:
                return State.RELEASING
            return State.RELEASED if self.release.status is Answer.DONE else State.RELEASE_FAILED
        return State.EXPIRED if self.plan.expired(now) else State.ACTIVE

    def as_dict(self, now: datetime, names: Mapping[str, str]) -> dict[str, Any]:
        c, r = self.command, self.release
        return {"id": self.plan.id, "kind": str(self.plan.kind), "target": self.plan.target,
                "description": self.plan.describe(), "status": str(self.state(now)),
                "agent": c.agent, "agent_name": names.get(c.agent), "command": c.id,
                "issued": c.issued, "by": c.by, "reason": c.reason, "detail": c.detail,
                "answered": c.at, "expires": _iso(self.plan.expires),
                "release": None if r is None else {"command": r.id, "by": r.by,
                    "issued": r.issued, "status": str(r.status) if r.status else None,
                    "detail": r.detail}}  # fmt: skip


class Responder:
    def __init__(
        self, home: Path, settings: Settings, commands: Queue, tokens: Tokens,
        inventory: Callable[[], Inventory], seen: Callable[[], Mapping[str, Any]],
    ) -> None:  # fmt: skip
        from hemostat.server.autorespond import AutoResponse

        self.audit = AuditLog(home)
        self.commands, self.tokens, self.inventory, self.seen = commands, tokens, inventory, seen
        self.lookback = timedelta(minutes=int(settings.get("contain", "lookback_minutes")))
        self.name_ttl = int(settings.get("contain", "name_ttl"))
        self.auto = AutoResponse(self, settings, home)
        self._gateways: dict[str, float] = {}  # agent id -> last poll (monotonic)
        self._gateway_lock, self._read_lock, self._answer_lock = (threading.Lock(),
                                                                  threading.Lock(),
                                                                  threading.Lock())  # fmt: skip
        self._reader: duckdb.DuckDBPyConnection | None = None
        self._mirror = Mirror(self.audit)

    # ---- life (the collector's start and stop; the live detection thread) ---------------

    def start(self, store: Store) -> None:
        self._mirror.sync(store.con)
        self._reader = store.con.cursor()

    def stop(self, store: Store) -> None:
        """After the writer and the live detection thread stopped: mirror what is left."""
        self._mirror.sync(store.con)
        if self._reader is not None:
            self._reader.close()

    def sync(self, store: Store) -> int:
        """From the live detection thread: mirror new audit entries into ``actions``."""
        return self._mirror.sync(store.con)

    def gateway(self, agent: str) -> None:
        with self._gateway_lock:
            self._gateways[agent] = time.monotonic()

    # ---- planning -------------------------------------------------------------------------

    def plan(self, request: ContainRequest, actor: str) -> Plan:
        try:
            ttl = parse_ttl(request.ttl) if request.ttl else None
        except HemostatError as exc:
            raise Refused(422, str(exc), "ttl", code="bad_ttl",
                          values={"ttl": request.ttl}) from None  # fmt: skip
        site = Site.from_inventory(self.inventory())
        common: dict[str, Any] = {"reason": request.reason, "actor": actor, "ttl": ttl}
        try:
            if request.kind == "host":
                return plan_host(site, request.target, **common)
            if request.kind == "site":
                return plan_site(site, **common)
            addresses = None if _literal(request.target) else resolve(request.target)
            return plan_destination(site, request.target, addresses, name_ttl=self.name_ttl,
                                    **common)  # fmt: skip
        except HemostatError as exc:  # the plan's own words (English): see ui.refusal.bad_target
            raise Refused(422, str(exc), "target", code="bad_target",
                          values={"target": request.target,
                                  "message": str(exc)}) from None  # fmt: skip

    def carrier(self, plan: Plan) -> Token:
        """The agent that carries ``plan`` out; 409 when there is none."""
        agents = [t for t in self.tokens.all() if t.role is Role.AGENT and t.active]
        if plan.kind is Kind.HOST:
            seen, me = self.seen(), ip_of(plan.target)
            found = [t for t in agents if t.ip and ip_of(t.ip) == me] or [
                t for t in agents if t.id in seen and ip_of(seen[t.id].ip or "") == me]  # fmt: skip
            if not found:
                raise Refused(409, f"no agent runs on {plan.target} (none enrolled with --ip "
                              f"{plan.target} or sending from it): isolate it with `hemostat "
                              "contain host` on the host itself, or block what it talks to "
                              "at the gateway", "target", code="no_host_agent",
                              values={"target": plan.target})  # fmt: skip
            last = {a: s.at for a, s in seen.items()}
            return max(found, key=lambda t: last.get(t.id, datetime.min.replace(tzinfo=UTC)))
        with self._gateway_lock:
            gateways = dict(self._gateways)
        found = [t for t in agents if t.id in gateways]
        if not found:
            raise Refused(409, f"no gateway agent has polled this collector: a {plan.kind} "
                          "action runs on the Linux gateway; start its agent with "
                          "`hemostat agent --gateway`", "kind", code="no_gateway_agent",
                          values={"kind": str(plan.kind)})  # fmt: skip
        return max(found, key=lambda t: gateways[t.id])

    def impact(self, plan: Plan) -> tuple[dict[str, Any] | None, str | None]:
        """The store's recent flows ``plan`` would stop (on the collector's read cursor)."""
        from hemostat.contain.flows import would_stop

        if self._reader is None:
            return None, "the store is not open"
        with self._read_lock:
            try:
                found = would_stop(cast(Store, _Reader(self._reader)), plan, self.lookback)
            except duckdb.Error as exc:
                return None, f"flows not computed: {exc}"
        return found.as_dict(), None

    # ---- the API --------------------------------------------------------------------------

    def contain(self, request: ContainRequest, token: Token) -> dict[str, Any]:
        """``POST /api/v1/contain``: the dry run, or (``apply``) the action sent."""
        if request.apply:
            return self.apply(self.plan(request, token.name), token.name)
        return self.dry_run(request, token)

    def dry_run(self, request: ContainRequest, token: Token) -> dict[str, Any]:
        plan = self.plan(request, token.name)
        text = rules.render([plan])
        try:
            agent, note, code = _agent(self.carrier(plan)), None, None
        except Refused as exc:
            agent, note, code = None, exc.message, exc.code
        flows, flows_note = self.impact(plan)
        self._log(plan, Step.PLAN, "planned (dry run)", text)
        return {"action": plan.as_dict(), "description": plan.describe(), "rules": text,
                "warnings": list(plan.warnings), "warning_codes": _codes(plan),
                "flows": flows, "flows_note": flows_note, "agent": agent, "agent_note": note,
                "agent_code": code, "applied": False}  # fmt: skip

    def apply(self, plan: Plan, by: str) -> dict[str, Any]:
        """Audit ``plan`` and send it to its agent; the action id."""
        text = rules.render([plan])
        try:
            agent = self.carrier(plan)
        except Refused as exc:
            self._log(plan, Step.PLAN, f"planned; not sent: {exc.message}", text)
            raise
        self._log(plan, Step.PLAN, f"planned; sent to agent {agent.name} ({agent.id})", text)
        command = self.commands.issue(agent.id, APPLY[plan.kind], {"plan": plan.as_dict()}, by,
                                      plan.reason)  # fmt: skip
        log.info("%s: %s, sent to agent %s as command %s by %s", plan.id, plan.describe(),
                 agent.name, command, by)  # fmt: skip
        return {"action": plan.id, "command": command, "agent": _agent(agent),
                "description": plan.describe(), "warnings": list(plan.warnings),
                "warning_codes": _codes(plan), "rules": text, "status": str(State.PENDING),
                "applied": True}  # fmt: skip

    def release(self, action_id: str, reason: str, by: str) -> dict[str, Any]:
        action = self.find(action_id)
        state = action.state(datetime.now(UTC))
        if state not in (State.PENDING, State.ACTIVE, State.RELEASE_FAILED):
            raise Refused(409, f"{action_id} is {state}: nothing to release", "action",
                          code="not_releasable",
                          values={"id": action_id, "state": str(state)})  # fmt: skip
        verb = RELEASE[action.command.action]
        command = self.commands.issue(action.command.agent, verb,
                                      {"action": action_id, "actor": by, "reason": reason}, by,
                                      reason)  # fmt: skip
        self._log(action.plan, Step.RELEASE, f"requested; sent to agent {action.command.agent}",
                  None, by, reason)  # fmt: skip
        return {"action": action_id, "command": command, "status": str(State.RELEASING)}

    def actions(self) -> list[Action]:
        found: dict[str, Action] = {}
        for c in self.commands.all():
            if c.action in APPLY.values() and isinstance(c.args.get("plan"), dict):
                try:
                    plan = Plan.from_dict(c.args["plan"])
                except HemostatError:
                    continue
                found[plan.id] = Action(plan, c)
            elif c.action in RELEASE.values() and (a := found.get(str(c.args.get("action")))):
                found[a.plan.id] = Action(a.plan, a.command, c)
        return list(found.values())

    def listing(self) -> list[dict[str, Any]]:
        now, names = datetime.now(UTC), {t.id: t.name for t in self.tokens.all()}
        return [a.as_dict(now, names) for a in self.actions()]

    def find(self, action_id: str) -> Action:
        found = next((a for a in self.actions() if a.plan.id == action_id), None)
        if found is None:
            raise Refused(404, f"no containment action {action_id} (GET /api/v1/actions)", "id",
                          code="unknown_action", values={"id": action_id})  # fmt: skip
        return found

    def answer(self, token: Token, command_id: str, status: str, detail: str, at: str) -> Command:
        """Record an agent's result (``Queue.answer``) and audit it the first time."""
        with self._answer_lock:
            before = self.commands.get(command_id)
            done = self.commands.answer(token.id, command_id, status, detail, at)
        if before is not None and before.status is None:
            try:
                self._audit_answer(done, token.name)
            except HemostatError as exc:  # e.g. a release of an action this collector never sent
                log.warning("the result of command %s is not audited: %s", command_id, exc)
        return done

    # ---- audit ----------------------------------------------------------------------------

    def _audit_answer(self, command: Command, agent: str) -> None:
        result = f"{command.status}: {command.detail or ''} (agent {agent})"
        if command.action in APPLY.values() and isinstance(command.args.get("plan"), dict):
            plan = Plan.from_dict(command.args["plan"])
            step = Step.ROLLBACK if command.status is Answer.ROLLED_BACK else Step.APPLY
            self._log(plan, step, result, rules.render([plan]), command.by)
        elif command.action in RELEASE.values() and command.args.get("action"):
            action = self.find(str(command.args["action"]))
            self._log(action.plan, Step.RELEASE, result, None, command.by, command.reason)

    def _log(
        self, plan: Plan, step: Step, result: str, text: str | None, actor: str | None = None,
        reason: str | None = None,
    ) -> None:  # fmt: skip
        self.audit.append(step=step, actor=actor or plan.actor, action=plan.id,
                          kind=str(plan.kind), target=plan.target,
                          reason=plan.reason if reason is None else reason, result=result,
                          rules=text)  # fmt: skip


class Mirror:
    """Copies the audit log's entries into the store's ``actions`` table (checked first: a
    log that fails ``verify`` is not mirrored beyond what was, and said once)."""

    def __init__(self, audit: AuditLog) -> None:
        self.audit = audit
        self._seen: tuple[int, int] | None = None  # (size, mtime) of the log last mirrored
        self._broken = False

    def sync(self, con: duckdb.DuckDBPyConnection) -> int:
        try:
            st = self.audit.path.stat()
        except FileNotFoundError:
            return 0
        if (st.st_size, st.st_mtime_ns) == self._seen:
            return 0
        try:
            entries = self.audit.entries()
        except HemostatError as exc:
            if not self._broken:
                log.error("the audit log is not mirrored into the store: %s", exc)
            self._broken = True
            return 0
        self._broken, self._seen = False, (st.st_size, st.st_mtime_ns)
        row = con.execute("SELECT coalesce(max(seq), 0) FROM actions").fetchone()
        new = [e.row() for e in entries if e.seq > (row[0] if row else 0)]
        if new:
            con.executemany(
                "INSERT OR IGNORE INTO actions (seq, id, ts, actor, kind, target, reason, step, "
                "rules, result, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [[r["seq"], r["id"], _when(r["ts"]), r["actor"], r["kind"], r["target"],
                  r["reason"], r["step"], r["rules"], r["result"], r["prev_hash"], r["hash"]]
                 for r in new],
            )  # fmt: skip
        return len(new)


@dataclass(frozen=True, slots=True)
class _Reader:
    """What ``contain.flows.would_stop`` reads from a store: its connection (here a cursor)."""

    con: duckdb.DuckDBPyConnection


def _codes(plan: Plan) -> list[dict[str, Any]]:
    """The plan's warnings by code and values, in the order of its ``warnings`` texts."""
    return [w.as_dict() for w in plan.coded]


def _agent(token: Token) -> dict[str, Any]:
    return {"id": token.id, "name": token.name, "ip": token.ip}


def _literal(target: str) -> bool:
    try:
        network(target.strip())
    except ValueError:
        return False
    return True


def _iso(value: datetime | None) -> str | None:
    return utc_text(value) if value else None


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))

"""Containment on this node, as the collector commands it (contract section 5, issue 7).

The collector plans, audits and sends each action; the agent applies it with
``hemostat.contain`` (state under ``STATE/contain``, its own audit log under ``STATE/audit``):

=============  ===========================================================================
``isolate``    ``args.plan``: a host isolation (this host) or, on the gateway, a site cut
``block``      ``args.plan``: a destination block
``release``,   ``args.action``: the action id to remove (``args.actor``, ``args.reason``
``unblock``    for the audit log)
=============  ===========================================================================

After the rules are in, the self-test is a real HTTPS call to the collector (``/healthz``,
over a new connection that trusts only the pinned CA); when it fails the previous rules are
put back and the result is ``rolled_back``. Handlers are idempotent: an action already in
force is ``done``, a release of an action no longer in force is ``done`` (said in the
detail). ``restore`` runs at start (containment survives a restart), ``tick`` in the loop
(TTL expiry, re-resolution of blocked names).

Standard library, httpx and ``hemostat.contain`` / ``hemostat.audit`` (standard library only).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from hemostat.agent.commands import Handler, Result
from hemostat.agent.shipper import connect
from hemostat.audit import AuditLog
from hemostat.contain.apply import Containment
from hemostat.contain.plan import Kind, Plan
from hemostat.contain.runner import Runner
from hemostat.errors import HemostatError
from hemostat.schema import CommandStatus as Status

log = logging.getLogger("hemostat.agent.respond")

HEALTH = "/healthz"
EXPIRE_SECONDS = 5.0  # how often the loop releases what reached its time to live
REFRESH_SECONDS = 60.0  # how often blocked names are resolved again (name_ttl is 600 s)
#: what each action may carry out
KINDS = {"isolate": (Kind.HOST, Kind.SITE), "block": (Kind.DESTINATION,)}


class Enforcer:
    """Applies the collector's containment commands on this node."""

    def __init__(
        self, state: Path, collector: str, token: str, ca: Path | None, gateway: bool = False,
        selftest_timeout: float = 5.0, runner: Runner | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:  # fmt: skip
        self.containment = Containment(state / "contain", runner or Runner(), AuditLog(state))
        self.collector, self._token, self.ca = collector, token, ca
        self.gateway = gateway
        self.selftest_timeout = selftest_timeout
        self.clock = clock
        self._next_expire = self._next_refresh = 0.0

    def handlers(self) -> dict[str, Handler]:
        return {"isolate": self.isolate, "block": self.block, "release": self.release,
                "unblock": self.release}  # fmt: skip

    # ---- handlers -------------------------------------------------------------------------

    def isolate(self, args: dict[str, Any]) -> Result:
        return self._apply("isolate", args)

    def block(self, args: dict[str, Any]) -> Result:
        return self._apply("block", args)

    def release(self, args: dict[str, Any]) -> Result:
        action = str(args.get("action") or "")
        try:
            if self.containment.state.load().find(action) is None:
                return Result(Status.DONE, f"{action} is not in force here (released or "
                              "expired before)")  # fmt: skip
            outcome = self.containment.release(action, str(args.get("actor") or "collector"),
                                               str(args.get("reason") or ""))  # fmt: skip
        except HemostatError as exc:
            return Result(Status.FAILED, str(exc))
        return Result(outcome.status, outcome.detail)

    def _apply(self, action: str, args: dict[str, Any]) -> Result:
        try:
            plan = Plan.from_dict(args.get("plan") or {})
        except HemostatError as exc:
            return Result(Status.FAILED, str(exc))
        if plan.kind not in KINDS[action]:
            return Result(Status.FAILED, f"{action} does not carry out a {plan.kind} action")
        if plan.kind is Kind.SITE and not self.gateway:
            return Result(Status.FAILED, "a site cut runs on the gateway; this agent was not "
                          "started with --gateway")  # fmt: skip
        try:
            if self.containment.state.load().find(plan.id):
                return Result(Status.DONE, f"{plan.id} is already in force here")
            outcome = self.containment.apply(plan, self.selftest)
        except HemostatError as exc:
            return Result(Status.FAILED, str(exc))
        return Result(outcome.status, outcome.detail)

    def selftest(self) -> bool:
        """Can this node still reach the collector? A new HTTPS connection (pinned CA) and a
        ``GET /healthz`` answered (any status: the path is what is tested)."""
        try:
            with connect(self.collector, self._token, self.ca, self.selftest_timeout) as client:
                client.get(HEALTH)
        except (httpx.HTTPError, HemostatError) as exc:
            log.warning("containment self-test: the collector is unreachable (%s)", exc)
            return False
        return True

    # ---- life -----------------------------------------------------------------------------

    def restore(self) -> None:
        """At start: release what expired while the agent was down, re-apply the rest."""
        try:
            self.containment.expire()
            outcome = self.containment.restore()
        except HemostatError as exc:
            log.error("containment not restored: %s", exc)
            return
        if outcome is not None:
            level = logging.INFO if outcome.ok else logging.ERROR
            log.log(level, "containment %s: %s", outcome.action, outcome.detail)

    def tick(self) -> None:
        """From the loop: TTL expiry, and name refreshes when a blocked name is in force."""
        now = self.clock()
        if now < self._next_expire:
            return
        self._next_expire = now + EXPIRE_SECONDS
        try:
            for outcome in self.containment.expire():
                log.info("containment %s expired: %s", outcome.action, outcome.status)
            if now >= self._next_refresh:
                self._next_refresh = now + REFRESH_SECONDS
                if any(p.name for p in self.containment.active()):
                    self.containment.refresh()
        except HemostatError as exc:
            log.error("containment upkeep failed (retried): %s", exc)

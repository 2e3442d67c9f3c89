"""Apply containment: the only place that runs ``nft``.

One :class:`Containment` per node (a host's agent, the gateway, a lab namespace) keeps the
active actions in a state file and makes table ``inet hemostat`` hold exactly them:

- apply: the whole table is replaced in one ``nft -f`` transaction; on failure the previous
  table (as ``nft list`` printed it before) is put back, so a failed apply leaves the previous
  state; then the self-test (can this node still reach the collector?) rolls everything back
  when it fails; then the established sockets of the stopped flows are killed;
- release and TTL expiry rebuild the table without the action;
- restore (at start) re-applies the state file: containment survives a restart;
- refresh re-resolves blocked names and restarts their addresses' timeouts.

Every step is written to the audit log when one is given.
"""

from __future__ import annotations

import hashlib
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from hemostat.audit import AuditLog, Step
from hemostat.contain import rules, sockets
from hemostat.contain.plan import Plan
from hemostat.contain.runner import Runner
from hemostat.contain.state import State, StateFile
from hemostat.errors import ContainmentError
from hemostat.schema import CommandStatus as Status

SelfTest = Callable[[], bool]
Resolver = Callable[[str], tuple[str, ...]]


@dataclass(frozen=True, slots=True)
class Outcome:
    action: str
    step: Step
    status: Status
    detail: str
    rules_sha256: str = ""
    killed: sockets.Killed | None = None

    @property
    def ok(self) -> bool:
        return self.status is Status.DONE


def resolve(name: str) -> tuple[str, ...]:
    """The addresses ``name`` resolves to now (none when it does not resolve)."""
    try:
        infos = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return ()
    return tuple(sorted({str(info[4][0]) for info in infos}))


def tcp_probe(host: str, port: int, timeout: float = 3.0, runner: Runner | None = None) -> SelfTest:
    """A self-test: can a TCP connection to ``host:port`` be opened (from behind ``runner``'s
    prefix, e.g. inside a network namespace, when it has one)?"""
    runner = runner or Runner()

    def probe() -> bool:
        if not runner.prefix:
            try:
                socket.create_connection((host, port), timeout=timeout).close()
            except OSError:
                return False
            return True
        code = ("import socket,sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), "
                "timeout=float(sys.argv[3])).close()")  # fmt: skip
        argv = [sys.executable, "-I", "-c", code, host, str(port), str(timeout)]
        return runner.run(argv).returncode == 0

    return probe


class Containment:
    def __init__(
        self, state_dir: Path, runner: Runner | None = None, audit: AuditLog | None = None,
        resolver: Resolver = resolve,
    ) -> None:  # fmt: skip
        self.state = StateFile(state_dir)
        self.runner = runner or Runner()
        self.audit = audit
        self.resolver = resolver

    # ---- reading ----------------------------------------------------------------------------

    def active(self) -> tuple[Plan, ...]:
        return self.state.load().plans

    def table(self, stateless: bool = False) -> str | None:
        """``nft list table inet hemostat`` (without counters when ``stateless``); None when
        there is no such table."""
        done = self.runner.run(["nft", *(["-s"] if stateless else []), "list", "table",
                                rules.FAMILY, rules.TABLE])  # fmt: skip
        return done.stdout if done.returncode == 0 else None

    # ---- steps ------------------------------------------------------------------------------

    def apply(self, plan: Plan, selftest: SelfTest | None = None) -> Outcome:
        """Add ``plan`` to the table; roll back when the self-test fails afterwards."""
        sha = _sha(rules.render([plan]))
        with self.state.locked():
            current = self.state.load()
            if current.find(plan.id):
                raise ContainmentError(f"{plan.id} is already in force on this node")
            resolved = dict(current.resolved)
            if plan.name:
                resolved[plan.name] = plan.blocked
            after = State((*current.plans, plan), resolved)
            previous = self.table()
            failure = self._load(rules.render(after.plans, after.resolved))
            if failure:
                if self.table() != previous:  # nft applies all or nothing: normally equal
                    self._restore(previous, current)
                return self._log(plan, Step.APPLY, Status.FAILED, f"nft refused: {failure}", sha)
            if selftest is not None and not selftest():
                return self._roll_back(plan, previous, current, sha)
            self.state.save(after)
        killed = sockets.kill(self.runner, plan)
        out = self._log(plan, Step.APPLY, Status.DONE, killed.detail, sha)
        return Outcome(out.action, out.step, out.status, out.detail, sha, killed)

    def release(self, action_id: str, actor: str, reason: str = "") -> Outcome:
        return self._remove({action_id}, Step.RELEASE, actor, reason)[0]

    def expire(self, now: datetime | None = None) -> list[Outcome]:
        """Release the actions whose time to live is over."""
        now = now or datetime.now(UTC)
        due = {p.id for p in self.active() if p.expired(now)}
        return self._remove(due, Step.EXPIRE, "ttl", "time to live over") if due else []

    def restore(self) -> Outcome | None:
        """Re-apply the state file (at start: after a reboot the table is gone)."""
        with self.state.locked():
            current = self.state.load()
            if not current.plans:
                return None
            failure = self._load(rules.render(current.plans, current.resolved))
        status, detail = Status.DONE, f"restored {len(current.plans)} action(s) after a restart"
        if failure:
            status, detail = Status.FAILED, f"nft refused the saved actions: {failure}"
        for plan in current.plans:
            self._log(plan, Step.APPLY, status, detail, _sha(rules.render([plan])))
        return Outcome(",".join(p.id for p in current.plans), Step.APPLY, status, detail)

    def refresh(self) -> int:
        """Re-resolve blocked names; restart the timeout of the addresses found. Returns how
        many addresses were (re)blocked."""
        count = 0
        with self.state.locked():
            current = self.state.load()
            resolved = dict(current.resolved)
            for plan in current.plans:
                addresses = self.resolver(plan.name) if plan.name else ()
                script = rules.refresh(plan, addresses)
                if script and not self._load(script):
                    resolved[plan.name or ""] = addresses
                    count += len(addresses)
            self.state.save(State(current.plans, resolved))
        return count

    # ---- inner ------------------------------------------------------------------------------

    def _roll_back(self, plan: Plan, previous: str | None, current: State, sha: str) -> Outcome:
        self._log(plan, Step.APPLY, Status.DONE, "applied; self-test failed", sha)
        try:
            self._restore(previous, current)
        except ContainmentError as exc:
            self._log(plan, Step.ROLLBACK, Status.FAILED, str(exc), sha)
            raise
        detail = "self-test failed (the collector is unreachable): previous rules restored"
        return self._log(plan, Step.ROLLBACK, Status.ROLLED_BACK, detail, sha)

    def _remove(self, ids: set[str], step: Step, actor: str, reason: str) -> list[Outcome]:
        with self.state.locked():
            current = self.state.load()
            plans = [p for p in current.plans if p.id in ids]
            missing = ids - {p.id for p in plans}
            if missing and step is Step.RELEASE:
                raise ContainmentError(f"no action {sorted(missing)[0]} in force on this node "
                                       "(hemostat contain list shows them)")  # fmt: skip
            if not plans:
                return []  # (expired: released meanwhile by another process)
            after = current.without(ids)
            failure = self._load(rules.render(after.plans, after.resolved))
            if not failure:
                self.state.save(after)
        status = Status.FAILED if failure else Status.DONE
        detail = f"nft refused: {failure}" if failure else "its rules are removed"
        return [self._log(p, step, status, detail, "", actor, reason) for p in plans]

    def _load(self, script: str) -> str | None:
        """Run ``nft -f -`` on ``script``; the error text when nft refuses it (nothing of a
        refused script is applied: it is one transaction)."""
        done = self.runner.run(["nft", "-f", "-"], stdin=script)
        if done.returncode == 0:
            return None
        text = " ".join(done.stderr.split())[:400] or f"exit status {done.returncode}"
        return text + (" (run as root)" if "not permitted" in text else "")

    def _restore(self, previous: str | None, state: State) -> None:
        """Put back the table as listed before (counters and name timeouts included), else
        rebuilt from the state file; raise when neither loads."""
        if previous is not None:
            if self._load(rules.render([]) + previous) is None:
                return
        elif self._load(rules.render([])) is None:
            return
        failure = self._load(rules.render(state.plans, state.resolved))
        if failure:
            raise ContainmentError(
                f"could not restore the previous containment rules ({failure}); check "
                "`nft list table inet hemostat` on this node"
            )

    def _log(
        self, plan: Plan, step: Step, status: Status, detail: str, sha: str,
        actor: str | None = None, reason: str | None = None,
    ) -> Outcome:  # fmt: skip
        if self.audit is not None:
            text = rules.render([plan]) if step in (Step.APPLY, Step.ROLLBACK) else None
            self.audit.append(step=step, actor=actor or plan.actor, action=plan.id,
                              kind=str(plan.kind), target=plan.target,
                              reason=plan.reason if reason is None else reason,
                              result=f"{status}: {detail}", rules=text)  # fmt: skip
        return Outcome(plan.id, step, status, detail, sha)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()

"""Commands from the collector (contract section 5): long-poll ``GET /api/v1/commands``, run
each command's handler, post its result to ``POST /api/v1/commands/{id}``.

Handlers are registered in ``HANDLERS`` by action name (containment adds ``isolate``,
``release``, ``block``...); ``ping`` is built in; an unknown action fails. A command is handed
out again until its result is posted, so the result is kept and posted again rather than the
command run twice (within one agent run: handlers must still be idempotent, as a command
whose result was lost in a crash is run again after the restart).
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from hemostat.agent.shipper import Backoff
from hemostat.agent.spool import iso
from hemostat.schema import CommandStatus as Status

log = logging.getLogger("hemostat.agent.commands")

COMMANDS = "/api/v1/commands"
#: results remembered (posted or not) so that a command handed out again is not run again
KEEP_RESULTS = 1000


@dataclass(frozen=True, slots=True)
class Result:
    status: Status
    detail: str = ""


Handler = Callable[[dict[str, Any]], Result]


def ping(args: dict[str, Any]) -> Result:
    """Proves the command path works end to end."""
    return Result(Status.DONE, f"pong from {socket.gethostname()}")


#: action name -> handler; other modules register theirs here
HANDLERS: dict[str, Handler] = {"ping": ping}


class Executor:
    """Runs the collector's commands with the handlers of ``handlers`` (default ``HANDLERS``,
    looked up at each command so that later registrations count)."""

    def __init__(
        self, client: httpx.Client, handlers: Mapping[str, Handler] | None = None,
        wait: float = 25.0, backoff: Backoff | None = None,
    ) -> None:  # fmt: skip
        self.client, self.wait = client, wait
        self.handlers = HANDLERS if handlers is None else handlers
        self.backoff = backoff or Backoff(cap=60.0)
        self._results: OrderedDict[str, tuple[Result, str]] = OrderedDict()

    def execute(self, command: dict[str, Any]) -> Result:
        """Run one command; never raises (a failing handler gives a ``failed`` result)."""
        action = str(command.get("action"))
        handler = self.handlers.get(action)
        if handler is None:
            return Result(Status.FAILED, f"unknown action {action!r}; this agent knows "
                          f"{', '.join(sorted(self.handlers))}")  # fmt: skip
        args = command.get("args") or {}
        try:
            return handler(args if isinstance(args, dict) else {})
        except Exception as exc:  # a handler's bug must not kill the agent
            log.exception("command %s (%s) failed", command.get("id"), action)
            return Result(Status.FAILED, f"{type(exc).__name__}: {exc}")

    def poll_once(self) -> int:
        """One long poll; returns how many commands were handled. Raises ``httpx.HTTPError``."""
        response = self.client.get(COMMANDS, params={"wait": self.wait},
                                   timeout=self.wait + 15)  # fmt: skip
        response.raise_for_status()
        commands = response.json().get("commands") or []
        for command in commands:
            self._handle(command)
        return len(commands)

    def run(self, stop: threading.Event, before_poll: Callable[[], None] | None = None) -> None:
        """Poll until ``stop``; ``before_poll`` runs before each poll (e.g. config refresh)."""
        failing = False
        while not stop.is_set():
            if before_poll is not None:
                before_poll()
            started = time.monotonic()
            try:
                handled = self.poll_once()
            except (httpx.HTTPError, ValueError) as exc:
                delay = self.backoff.next()
                level = logging.DEBUG if failing else logging.WARNING
                log.log(level, "command poll failed (%s); next in %.1f s", exc, delay)
                failing = True
                stop.wait(delay)
                continue
            failing = False
            self.backoff.reset()
            if not handled and time.monotonic() - started < 1.0:
                stop.wait(1.0)  # a collector that does not hold the poll: no busy loop

    def _handle(self, command: dict[str, Any]) -> None:
        cid = str(command.get("id"))
        if cid in self._results:
            result, at = self._results[cid]
        else:
            log.info("command %s: %s %s by %s (%s)", cid, command.get("action"),
                     command.get("args") or {}, command.get("by"),
                     command.get("reason"))  # fmt: skip
            result, at = self.execute(command), iso(time.time())
            log.info("command %s: %s %s", cid, result.status, result.detail)
            self._results[cid] = (result, at)
            while len(self._results) > KEEP_RESULTS:
                self._results.popitem(last=False)
        body = {"status": str(result.status), "detail": result.detail, "at": at}
        response = self.client.post(f"{COMMANDS}/{cid}", json=body)
        if response.status_code == 404:
            log.warning("command %s is no longer known to the collector; result dropped", cid)
            return
        response.raise_for_status()

"""Commands from the collector to agents (contract §5): issued, long-polled, answered.

A command is handed to its agent on every poll until the agent posts its result. Every
change is appended (fsync'ed) to ``HOME/commands.jsonl`` before it counts, so a restarted
collector still has the commands no agent has answered. Thread-safe: ``issue`` may be
called from any thread (the live loop, a CLI-facing endpoint); ``wait`` is a coroutine.
"""

from __future__ import annotations

import asyncio
import enum
import secrets
import threading
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from hemostat import durable
from hemostat.errors import StoreError
from hemostat.schema import CommandStatus as Status
from hemostat.server import Refused

FILE = Path("commands.jsonl")
MAX_WAIT = 30.0


class Action(enum.StrEnum):
    ISOLATE = "isolate"
    RELEASE = "release"
    BLOCK = "block"
    UNBLOCK = "unblock"
    PING = "ping"


@dataclass(frozen=True, slots=True)
class Command:
    id: str
    agent: str
    action: Action
    args: dict[str, Any]
    issued: str  # ISO 8601 UTC
    by: str  # name of the token that issued it
    reason: str
    status: Status | None = None  # None: not answered yet
    detail: str | None = None
    at: str | None = None  # when the agent says it finished

    def wire(self) -> dict[str, Any]:
        """The object an agent receives."""
        return {"id": self.id, "action": str(self.action), "args": self.args,
                "issued": self.issued, "by": self.by, "reason": self.reason}  # fmt: skip


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class Queue:
    def __init__(self, home: Path) -> None:
        self.path = Path(home) / FILE
        self._lock = threading.Lock()
        self._commands: dict[str, Command] = {}
        self._waiters: dict[str, list[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = {}
        self._load()

    def issue(self, agent: str, action: str, args: dict[str, Any], by: str, reason: str) -> str:
        """Queue a command for ``agent``; returns its id (``act-...``)."""
        try:
            act = Action(action)
        except ValueError:
            raise Refused(422, f"unknown action {action!r}; known: {', '.join(Action)}",
                          "action") from None  # fmt: skip
        command = Command(f"act-{secrets.token_hex(8)}", agent, act, dict(args), _now(), by,
                          reason)  # fmt: skip
        with self._lock:
            self._append({"op": "issue", **asdict(command)})
            self._commands[command.id] = command
            waiters = self._waiters.pop(agent, [])
        for loop, event in waiters:
            loop.call_soon_threadsafe(event.set)
        return command.id

    def pending(self, agent: str) -> list[Command]:
        with self._lock:
            return [c for c in self._commands.values() if c.agent == agent and c.status is None]

    def get(self, command_id: str) -> Command | None:
        with self._lock:
            return self._commands.get(command_id)

    def all(self, agent: str | None = None) -> list[Command]:
        with self._lock:
            return [c for c in self._commands.values() if agent is None or c.agent == agent]

    async def wait(self, agent: str, timeout: float) -> list[Command]:
        """The agent's pending commands, waiting up to ``timeout`` (≤ 30 s) for one."""
        found = self.pending(agent)
        if found or timeout <= 0:
            return found
        event = asyncio.Event()
        with self._lock:
            self._waiters.setdefault(agent, []).append((asyncio.get_running_loop(), event))
        try:
            await asyncio.wait_for(event.wait(), min(timeout, MAX_WAIT))
        except TimeoutError:
            pass
        finally:
            with self._lock:
                mine = self._waiters.get(agent, [])
                self._waiters[agent] = [w for w in mine if w[1] is not event]
        return self.pending(agent)

    def answer(self, agent: str, command_id: str, status: str, detail: str, at: str) -> Command:
        """Record the agent's result; the command is no longer handed out."""
        try:
            result = Status(status)
        except ValueError:
            raise Refused(422, f"expected one of {', '.join(Status)}", "status") from None
        with self._lock:
            command = self._commands.get(command_id)
            if command is None or command.agent != agent:
                raise Refused(404, f"no command {command_id} for this agent", "id")
            if command.status is not None:  # the same answer posted again
                return command
            done = replace(command, status=result, detail=detail, at=at)
            self._append({"op": "answer", "id": command_id, "status": str(result),
                          "detail": detail, "at": at})  # fmt: skip
            self._commands[command_id] = done
        return done

    def _append(self, entry: dict[str, Any]) -> None:
        try:
            durable.append(self.path, orjson.dumps(entry) + b"\n")
        except OSError as exc:
            raise Refused(503, f"cannot record the command in {self.path}: {exc.strerror}",
                          headers={"Retry-After": "5"}) from exc  # fmt: skip

    def _load(self) -> None:
        if not self.path.exists():
            return
        try:
            lines = self.path.read_bytes().splitlines()
        except OSError as exc:
            raise StoreError(f"{self.path}: cannot read: {exc.strerror}") from exc
        for number, line in enumerate(lines, 1):
            try:
                entry = orjson.loads(line)
                self._replay(entry)
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                if number < len(lines):  # only the last line may be cut short by a crash
                    raise StoreError(f"{self.path}:{number}: not a command entry") from None

    def _replay(self, entry: dict[str, Any]) -> None:
        if entry.pop("op") == "issue":
            entry["action"] = Action(entry["action"])
            entry["status"] = Status(entry["status"]) if entry.get("status") else None
            command = Command(**entry)
            self._commands[command.id] = command
        else:
            old = self._commands[entry["id"]]
            self._commands[old.id] = replace(
                old, status=Status(entry["status"]), detail=entry.get("detail"), at=entry.get("at")
            )

"""The active containment actions of one node, on disk, so they survive a restart.

``DIR/state.json``: ``{"version": 1, "plans": [Plan.as_dict()...], "resolved": {name:
[addresses]}}``, written atomically (temporary file, fsync, rename); ``DIR/.lock`` serialises
the processes that change it (the agent, a local ``hemostat contain``).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from hemostat import durable
from hemostat.contain.plan import Plan
from hemostat.errors import ContainmentError

VERSION = 1


@dataclass(frozen=True, slots=True)
class State:
    plans: tuple[Plan, ...] = ()
    resolved: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def find(self, action_id: str) -> Plan | None:
        return next((p for p in self.plans if p.id == action_id), None)

    def without(self, action_ids: set[str]) -> State:
        plans = tuple(p for p in self.plans if p.id not in action_ids)
        names = {p.name for p in plans if p.name}
        return State(plans, {n: a for n, a in self.resolved.items() if n in names})


class StateFile:
    def __init__(self, directory: Path) -> None:
        self.dir = Path(directory)
        self.path = self.dir / "state.json"

    def load(self) -> State:
        if not self.path.exists():
            return State()
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if data.get("version") != VERSION:
                raise ValueError(f"version {data.get('version')!r}, expected {VERSION}")
            plans = tuple(Plan.from_dict(p) for p in data["plans"])
            resolved = {str(k): tuple(map(str, v)) for k, v in data.get("resolved", {}).items()}
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
            raise ContainmentError(
                f"{self.path}: unreadable containment state ({exc}); the rules in force are "
                "listed by `nft list table inet hemostat`"
            ) from exc
        return State(plans, resolved)

    def save(self, state: State) -> None:
        data = {"version": VERSION, "plans": [p.as_dict() for p in state.plans],
                "resolved": {k: list(v) for k, v in sorted(state.resolved.items())}}  # fmt: skip
        try:
            self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            durable.replace(self.path, json.dumps(data, indent=1, sort_keys=True).encode(), 0o644)
        except OSError as exc:
            raise ContainmentError(f"{self.path}: cannot save containment state: {exc}") from exc

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        try:
            self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            fh = (self.dir / ".lock").open("a")
        except OSError as exc:
            raise ContainmentError(f"{self.dir}: cannot lock containment state: {exc}") from exc
        with fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

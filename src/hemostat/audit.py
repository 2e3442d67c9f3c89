"""The audit log of containment: every plan, apply, rollback, release and expiry, appended to
a hash-chained JSON Lines file, so that an edited, deleted, reordered or truncated entry is
found by :meth:`AuditLog.verify`.

``HOME/audit/actions.jsonl``  one entry a line: ``seq, ts, actor, action, kind, target,
reason, step, rules_sha256, result, prev_hash, hash``; ``hash`` is the SHA-256 of the
canonical JSON (sorted keys, no spaces, UTF-8) of the entry without ``hash``; ``prev_hash``
is the previous entry's ``hash`` (64 zeros for the first).
``HOME/audit/head.json``  seq and hash of the last entry: the anchor that reveals entries cut
from the end, and entries appended after such a cut (they chain onto the head, not the cut).
``HOME/audit/rules/<sha256>.nft``  the rules text each ``rules_sha256`` names.

Standard library only (the agent writes its own log).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from hemostat import durable
from hemostat.errors import ContainmentError
from hemostat.schema import utc_text

GENESIS = "0" * 64
LOG_NAME = "actions.jsonl"


class Step(StrEnum):
    PLAN = "plan"
    APPLY = "apply"
    ROLLBACK = "rollback"
    RELEASE = "release"
    EXPIRE = "expire"


@dataclass(frozen=True, slots=True)
class Entry:
    seq: int
    ts: str
    actor: str
    action: str
    kind: str
    target: str
    reason: str
    step: str
    rules_sha256: str | None
    result: str
    prev_hash: str
    hash: str

    def body(self) -> dict[str, Any]:
        """The hashed part: every field but ``hash``."""
        out = asdict(self)
        del out["hash"]
        return out

    def row(self) -> dict[str, Any]:
        """As a row of the store's ``actions`` table."""
        return {"seq": self.seq, "id": self.action, "ts": self.ts, "actor": self.actor,
                "kind": self.kind, "target": self.target, "reason": self.reason,
                "step": self.step, "rules": self.rules_sha256, "result": self.result,
                "prev_hash": self.prev_hash, "hash": self.hash}  # fmt: skip


_FIELDS = tuple(Entry.__dataclass_fields__)


@dataclass(frozen=True, slots=True)
class Problem:
    line: int
    seq: int | None
    what: str

    def __str__(self) -> str:
        seq = f" (seq {self.seq})" if self.seq is not None else ""
        return f"line {self.line}{seq}: {self.what}"


@dataclass(frozen=True, slots=True)
class Verdict:
    entries: int  # entries read before the first problem (all of them when ok)
    head: str | None  # hash of the last good entry
    problem: Problem | None

    @property
    def ok(self) -> bool:
        return self.problem is None


def digest(body: dict[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class AuditLog:
    """The audit log under ``home/audit``; appends are serialised by a file lock."""

    def __init__(self, home: Path) -> None:
        self.dir = Path(home) / "audit"
        self.path = self.dir / LOG_NAME
        self.head_path = self.dir / "head.json"

    def append(
        self, *, step: Step, actor: str, action: str, kind: str, target: str, result: str,
        reason: str = "", rules: str | None = None, now: datetime | None = None,
    ) -> Entry:  # fmt: skip
        """Append one entry (durably: fsync'ed before this returns) and move the head."""
        try:
            self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            with self._locked():
                seq, prev = self._head()
                sha = self._keep_rules(rules) if rules is not None else None
                ts = utc_text(now or datetime.now(UTC))
                body: dict[str, Any] = {"seq": seq + 1, "ts": ts,
                        "actor": actor, "action": action, "kind": kind, "target": target,
                        "reason": reason, "step": str(step), "rules_sha256": sha,
                        "result": result, "prev_hash": prev}  # fmt: skip
                entry = Entry(**body, hash=digest(body))
                line = json.dumps(asdict(entry), sort_keys=True, ensure_ascii=False) + "\n"
                durable.append(self.path, line.encode("utf-8"))
                head = json.dumps({"seq": entry.seq, "hash": entry.hash})
                durable.replace(self.head_path, head.encode(), 0o644)
        except OSError as exc:
            raise ContainmentError(f"{self.path}: cannot append to the audit log: {exc}") from exc
        return entry

    def entries(self) -> list[Entry]:
        """Every entry, after checking the whole log (``ContainmentError`` if tampered)."""
        verdict = self.verify()
        if verdict.problem:
            raise ContainmentError(f"{self.path}: {verdict.problem}")
        return [Entry(**json.loads(line)) for line in self._lines()]

    def rules(self, sha256: str) -> str | None:
        path = self.dir / "rules" / f"{sha256}.nft"
        return path.read_text(encoding="utf-8") if path.exists() else None

    def verify(self) -> Verdict:
        """Walk the chain; the first entry that is not what the chain and head promise."""
        prev, count = GENESIS, 0
        for number, line in enumerate(self._lines(), 1):
            entry, problem = self._check(number, line, count + 1, prev)
            if problem or entry is None:
                return Verdict(count, prev if count else None, problem)
            prev, count = entry.hash, count + 1
        problem = self._check_head(count, prev)
        return Verdict(count, prev if count else None, problem)

    # ---- checks -----------------------------------------------------------------------------

    def _check(
        self, number: int, line: str, expected: int, prev: str
    ) -> tuple[Entry | None, Problem | None]:
        try:
            data = json.loads(line)
            if not isinstance(data, dict) or set(data) != set(_FIELDS):
                raise ValueError("fields")
            entry = Entry(**data)
        except (ValueError, TypeError):
            return None, Problem(number, None, "not a valid entry (edited or torn line)")
        if digest(entry.body()) != entry.hash:
            return None, Problem(number, entry.seq, "edited: the entry does not match its hash")
        if entry.seq != expected:
            what = f"expected seq {expected}, found {entry.seq}: entries before it were deleted, "
            return None, Problem(number, entry.seq, what + "reordered or cut and appended to")
        if entry.prev_hash != prev:
            return None, Problem(number, entry.seq, "does not chain onto the entry before it")
        if entry.rules_sha256 and not self._rules_intact(entry.rules_sha256):
            return None, Problem(number, entry.seq, "its rules file is missing or was altered")
        return entry, None

    def _check_head(self, count: int, last: str) -> Problem | None:
        head = self._read_head()
        if head is None:
            return None
        seq, sha = head
        if (seq, sha) == (count, last) or (seq == count - 1 and self._hash_at(seq) == sha):
            return None  # in step, or the head write of the last append was interrupted
        return Problem(count + 1, seq, f"the log ends at seq {count} but head.json records "
                       f"seq {seq}: entries were removed from the end or rewritten")  # fmt: skip

    def _rules_intact(self, sha: str) -> bool:
        path = self.dir / "rules" / f"{sha}.nft"
        return path.exists() and hashlib.sha256(path.read_bytes()).hexdigest() == sha

    # ---- files ------------------------------------------------------------------------------

    def _lines(self) -> list[str]:
        if not self.path.exists():
            return []
        try:
            return self.path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError as exc:
            raise ContainmentError(f"{self.path}: cannot read the audit log: {exc}") from exc

    def _head(self) -> tuple[int, str]:
        """Where the next entry chains on: the head, else the last entry of the file."""
        head = self._read_head()
        if head is not None:
            return head
        for line in reversed(self._lines()):
            with contextlib.suppress(ValueError, TypeError, KeyError):
                data = json.loads(line)
                return int(data["seq"]), str(data["hash"])
        return 0, GENESIS

    def _read_head(self) -> tuple[int, str] | None:
        if not self.head_path.exists():
            return None
        try:
            data = json.loads(self.head_path.read_text(encoding="utf-8"))
            return int(data["seq"]), str(data["hash"])
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise ContainmentError(f"{self.head_path}: unreadable audit head: {exc}") from exc

    def _hash_at(self, seq: int) -> str | None:
        lines = self._lines()
        if not 0 < seq <= len(lines):
            return None
        with contextlib.suppress(ValueError, TypeError, KeyError):
            return str(json.loads(lines[seq - 1])["hash"])
        return None

    def _keep_rules(self, rules: str) -> str:
        sha = hashlib.sha256(rules.encode("utf-8")).hexdigest()
        path = self.dir / "rules" / f"{sha}.nft"
        if not path.exists():
            path.parent.mkdir(mode=0o700, exist_ok=True)
            durable.replace(path, rules.encode(), 0o644)
        return sha

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with (self.dir / ".lock").open("a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

"""API tokens and roles (contract §1): ``hst_<id>_<secret>``, stored only as a SHA-256.

The tokens live in ``HOME/secrets/tokens.json`` (mode 0600, replaced atomically), not in the
store: the collector holds the DuckDB file's lock, and tokens must be issuable while it runs.
``Tokens`` re-reads the file when it changes. Log lines name a token by its id, never its text.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import re
import secrets
import threading
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from hemostat import durable
from hemostat.errors import ConfigError
from hemostat.schema import utc_text

FILE = Path("secrets") / "tokens.json"
_TEXT = re.compile(r"hst_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")


class Role(enum.StrEnum):
    AGENT = "agent"  # sends batches, polls commands
    ANALYST = "analyst"  # reads (metrics, agents, commands)
    RESPONDER = "responder"  # may also contain and release
    ADMIN = "admin"  # everything, may issue tokens


#: the human roles each role may act as (an agent is no human: agent endpoints need AGENT)
_GRANTS = {
    Role.AGENT: {Role.AGENT},
    Role.ANALYST: {Role.ANALYST},
    Role.RESPONDER: {Role.ANALYST, Role.RESPONDER},
    Role.ADMIN: {Role.ANALYST, Role.RESPONDER, Role.ADMIN},
}


def allows(held: Role, needed: Role) -> bool:
    """Whether a token of role ``held`` may call an endpoint that needs ``needed``."""
    return needed in _GRANTS[held]


@dataclass(frozen=True, slots=True)
class Token:
    """One issued token (its text is never kept)."""

    id: str
    name: str
    role: Role
    sha256: str
    created: str  # ISO 8601 UTC
    revoked: str | None = None
    ip: str | None = None  # an agent's address, given at enrolment (``agent enroll --ip``)

    @property
    def active(self) -> bool:
        return self.revoked is None


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def token_id(text: str) -> str | None:
    """The id part of a token's text, or None when the text is not shaped like a token."""
    match = _TEXT.fullmatch(text)
    return match.group(1) if match else None


class Tokens:
    """The token file of one home: issue, revoke, list, and check a bearer token."""

    def __init__(self, home: Path) -> None:
        self.path = Path(home) / FILE
        self._lock = threading.Lock()
        self._seen: tuple[int, int, int] | None = None  # (inode, size, mtime) last read
        self._by_id: dict[str, Token] = {}

    # ---- reading ------------------------------------------------------------------------

    def all(self) -> list[Token]:
        with self._lock:
            self._refresh()
            return sorted(self._by_id.values(), key=lambda t: (t.created, t.id))

    def get(self, ident: str) -> Token | None:
        with self._lock:
            self._refresh()
            return self._by_id.get(ident)

    def verify(self, text: str) -> Token | None:
        """The active token whose text this is, or None (unknown, revoked or malformed)."""
        ident = token_id(text)
        if ident is None:
            return None
        token = self.get(ident)
        if token is None or not token.active:
            return None
        return token if hmac.compare_digest(token.sha256, digest(text)) else None

    def _refresh(self) -> None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            self._seen, self._by_id = None, {}
            return
        seen = (st.st_ino, st.st_size, st.st_mtime_ns)
        if seen != self._seen:
            self._by_id = {t.id: t for t in self._read()}
            self._seen = seen

    def _read(self) -> list[Token]:
        try:
            entries = orjson.loads(self.path.read_bytes())
            return [_entry(e) for e in entries]
        except OSError as exc:
            raise ConfigError(f"{self.path}: cannot read: {exc.strerror}") from exc
        except (orjson.JSONDecodeError, TypeError, ValueError, KeyError) as exc:
            raise ConfigError(
                f"{self.path}: not a token file ({exc}); restore it from a backup or remove "
                "it and issue the tokens again"
            ) from exc

    # ---- writing ------------------------------------------------------------------------

    def create(
        self, name: str, role: Role, ip: str | None = None, now: datetime | None = None
    ) -> tuple[Token, str]:
        """Issue a token; returns it and its text (shown once, never stored)."""
        if not name.strip():
            raise ConfigError("a token needs a name (who or what holds it)")
        with self._lock:
            self._refresh()
            ident = secrets.token_hex(6)
            while ident in self._by_id:
                ident = secrets.token_hex(6)
            text = f"hst_{ident}_{secrets.token_urlsafe(32)}"
            token = Token(ident, name, Role(role), digest(text), utc_text(now or datetime.now(UTC)),
                          ip=ip)  # fmt: skip
            self._write([*self._by_id.values(), token])
            return token, text

    def revoke(self, ident: str, now: datetime | None = None) -> Token:
        with self._lock:
            self._refresh()
            token = self._by_id.get(ident)
            if token is None:
                raise ConfigError(f"no token {ident!r}; see hemostat token list")
            if token.active:
                token = replace(token, revoked=utc_text(now or datetime.now(UTC)))
                self._write([token if t.id == ident else t for t in self._by_id.values()])
            return token

    def _write(self, tokens: list[Token]) -> None:
        entries = [{k: v for k, v in asdict(t).items() if k != "ip" or v} for t in tokens]
        write_private(self.path, orjson.dumps(entries, option=orjson.OPT_INDENT_2))
        self._seen = None  # re-read: the new file's identity


def write_private(path: Path, data: bytes) -> None:
    """Replace ``path`` atomically with ``data``, readable by its owner only (0600)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        durable.replace(path, data)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write: {exc.strerror}") from exc


def _entry(data: dict[str, Any]) -> Token:
    return Token(
        id=str(data["id"]), name=str(data["name"]), role=Role(data["role"]),
        sha256=str(data["sha256"]), created=str(data["created"]), revoked=data.get("revoked"),
        ip=data.get("ip"),
    )  # fmt: skip

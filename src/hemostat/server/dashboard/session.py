"""Who is looking at the dashboard: login with an API token, a session cookie, CSRF.

A person logs in by pasting a token of a human role (analyst, responder, admin: the same
tokens and roles as the API, ``hemostat token create``). The session lives in the
collector's memory only (a restart logs everyone out) and is keyed by a random id carried
in an ``HttpOnly``, ``SameSite=Strict`` cookie (``Secure`` over HTTPS). Every request
checks the token again, so revoking it ends its sessions at once.

Every state-changing form carries the session's CSRF token (``csrf`` field), compared in
constant time; the login form, before any session exists, uses a double-submit cookie.
Requests whose ``Origin`` (or ``Referer``) names another site are refused as well.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Annotated
from urllib.parse import urlparse

from fastapi import Depends, Request

from hemostat.server.auth import Role, Token, Tokens, allows

COOKIE = "hemostat_session"
LOGIN_COOKIE = "hemostat_login"  # the login form's double-submit CSRF value
LANG_COOKIE = "hemostat_lang"


class LoginNeeded(Exception):
    """No valid session: the page answers with the login page (or 401 for fragments)."""

    def __init__(self, reason: str = "") -> None:
        self.reason = reason
        super().__init__(reason or "login needed")


class Forbidden(Exception):
    """The session's role may not do this (403 page), or the form's CSRF check failed."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


@dataclass(slots=True)
class Session:
    id: str
    token: str  # token id
    name: str
    role: Role
    csrf: str
    created: float  # monotonic
    used: float


@dataclass(frozen=True, slots=True)
class Viewer:
    """The person behind a request, as pages see them."""

    token: str
    name: str
    role: Role
    csrf: str

    @property
    def may_respond(self) -> bool:
        return allows(self.role, Role.RESPONDER)

    @property
    def is_admin(self) -> bool:
        return allows(self.role, Role.ADMIN)


@dataclass
class Sessions:
    tokens: Tokens
    idle: float  # seconds
    lifetime: float  # seconds
    _by_id: dict[str, Session] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def open(self, text: str) -> Session | None:
        """A new session for the token ``text``; None when it is unknown, revoked, or an
        agent's (agents have no business on the dashboard)."""
        token = self.tokens.verify(text.strip())
        if token is None or token.role is Role.AGENT:
            return None
        now = time.monotonic()
        session = Session(secrets.token_urlsafe(32), token.id, token.name, token.role,
                          secrets.token_urlsafe(32), now, now)  # fmt: skip
        with self._lock:
            self._expire(now)
            self._by_id[session.id] = session
        return session

    def get(self, ident: str | None) -> Session | None:
        """The live session ``ident``, touched; None when unknown, expired or revoked."""
        if not ident:
            return None
        now = time.monotonic()
        with self._lock:
            self._expire(now)
            session = self._by_id.get(ident)
            if session is None:
                return None
            token = self.tokens.get(session.token)
            if token is None or not token.active or token.role is not session.role:
                del self._by_id[ident]
                return None
            session.used = now
            return session

    def close(self, ident: str | None) -> None:
        with self._lock:
            self._by_id.pop(ident or "", None)

    def _expire(self, now: float) -> None:
        dead = [k for k, s in self._by_id.items()
                if now - s.used > self.idle or now - s.created > self.lifetime]  # fmt: skip
        for key in dead:
            del self._by_id[key]


def sessions(request: Request) -> Sessions:
    found: Sessions = request.app.state.sessions
    return found


def current(request: Request) -> Viewer:
    """The viewer of this request; raises LoginNeeded when there is no live session."""
    session = sessions(request).get(request.cookies.get(COOKIE))
    if session is None:
        raise LoginNeeded("expired" if request.cookies.get(COOKIE) else "")
    return Viewer(session.token, session.name, session.role, session.csrf)


def optional(request: Request) -> Viewer | None:
    """The viewer of this request, or None (no session)."""
    try:
        return current(request)
    except LoginNeeded:
        return None


def responder(request: Request) -> Viewer:
    viewer = current(request)
    if not viewer.may_respond:
        raise Forbidden(f"a {viewer.role} may look but not contain or release (needs "
                        "responder)")  # fmt: skip
    return viewer


def same_origin(request: Request) -> None:
    """Refuse a state-changing request sent by a page of another site."""
    source = request.headers.get("origin") or request.headers.get("referer")
    if not source or source == "null":
        return  # no header: not a browser's cross-site request (SameSite cookies hold)
    seen = urlparse(source)
    here = request.headers.get("host", "")
    if seen.netloc != here:
        raise Forbidden(f"request from another site ({seen.netloc or source}) refused")


def check_csrf(expected: str, given: str | None) -> None:
    if not given or not hmac.compare_digest(expected.encode(), given.encode()):
        raise Forbidden("the form is out of date or not from this dashboard (CSRF check); "
                        "reload the page and try again")  # fmt: skip


async def posted(request: Request, viewer: Viewer) -> dict[str, str]:
    """The form of a state-changing request, after the origin and CSRF checks."""
    same_origin(request)
    form = await request.form()
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    check_csrf(viewer.csrf, values.get("csrf"))
    return values


def secure(request: Request) -> bool:
    return request.url.scheme == "https"


def token_of(viewer: Viewer, tokens: Tokens) -> Token:
    """The API token behind a session (for calls that record who acted)."""
    token = tokens.get(viewer.token)
    if token is None or not token.active:
        raise LoginNeeded("revoked")
    return token


ViewerDep = Annotated[Viewer, Depends(current)]
ResponderDep = Annotated[Viewer, Depends(responder)]

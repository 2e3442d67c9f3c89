"""Log in, log out, pick the language."""

from __future__ import annotations

import hmac
import logging
import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from hemostat.report.lang import Code
from hemostat.server.dashboard.session import (
    COOKIE,
    LANG_COOKIE,
    LOGIN_COOKIE,
    ViewerDep,
    optional,
    posted,
    same_origin,
    secure,
    sessions,
)
from hemostat.server.dashboard.views import page

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)
YEAR = 365 * 86_400


def _next(target: str | None) -> str:
    """Only a path of this site is followed after login (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


@router.get("/login")
def login_form(request: Request, next: str = "/", why: str = "") -> Response:
    value = secrets.token_urlsafe(24)
    response = page(request, optional(request), "login.html.j2", login_csrf=value,
                    next=_next(next), why=why)  # fmt: skip
    response.set_cookie(LOGIN_COOKIE, value, httponly=True, samesite="strict",
                        secure=secure(request), path="/login")  # fmt: skip
    return response


@router.post("/login")
def login(
    request: Request,
    token: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    same_origin(request)
    expected = request.cookies.get(LOGIN_COOKIE, "")
    client = request.client.host if request.client else "?"
    if not expected or not hmac.compare_digest(expected.encode(), csrf.encode()):
        return _again(request, next, "csrf")
    session = sessions(request).open(token)
    if session is None:
        log.warning("dashboard: refused a login from %s", client)
        return _again(request, next, "refused")
    log.info("dashboard: %s (%s, token %s) logged in from %s", session.name, session.role,
             session.token, client)  # fmt: skip
    response = RedirectResponse(_next(next), status_code=303)
    response.set_cookie(COOKIE, session.id, httponly=True, samesite="strict",
                        secure=secure(request))  # fmt: skip
    response.delete_cookie(LOGIN_COOKIE, path="/login")
    return response


def _again(request: Request, target: str, why: str) -> Response:
    value = secrets.token_urlsafe(24)
    response = page(request, None, "login.html.j2", status=401, login_csrf=value,
                    next=_next(target), why=why)  # fmt: skip
    response.set_cookie(LOGIN_COOKIE, value, httponly=True, samesite="strict",
                        secure=secure(request), path="/login")  # fmt: skip
    return response


@router.post("/logout")
async def logout(request: Request, viewer: ViewerDep) -> Response:
    await posted(request, viewer)
    sessions(request).close(request.cookies.get(COOKIE))
    log.info("dashboard: %s logged out", viewer.name)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE)
    return response


@router.get("/lang/{code}")
def choose_language(request: Request, code: str, next: str = "/") -> Response:
    """Remember the language (a GET: it changes nothing but how pages read)."""
    response = RedirectResponse(_next(next), status_code=303)
    if code in {c.value for c in Code}:
        response.set_cookie(LANG_COOKIE, code, max_age=YEAR, samesite="lax",
                            secure=secure(request))  # fmt: skip
    return response

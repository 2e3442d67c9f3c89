"""The collector's HTTP API (FastAPI): agents' endpoints (contract §3-§5), health and metrics
(§6), and two for people: issue a command to an agent (responder), list agents (analyst).

Every refusal is ``{"error": ..., "field": ...}`` with its status. Tokens are checked here
and named in log lines by their id only.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import anyio
from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field

from hemostat.config import Settings
from hemostat.errors import HemostatError
from hemostat.server import Refused
from hemostat.server.auth import Role, Token, allows, token_id
from hemostat.server.collector import Collector
from hemostat.server.dashboard import mount
from hemostat.server.respond import GATEWAY_HEADER, ContainRequest, ReleaseRequest

log = logging.getLogger(__name__)
#: ingest bodies decoded at once (each may hold ``max_decompressed_bytes`` in memory). The
#: decoding holds the GIL, so more threads add no speed, only memory and GIL contention
#: with the writer
DECODERS = 2


def create_app(
    home: Path, settings: Settings, metrics_open: bool = False,
    on_ready: Callable[[Collector], None] | None = None, collector: Collector | None = None,
) -> FastAPI:  # fmt: skip
    """The API of the collector of ``home``. It starts the collector (unless given one
    already started) and on shutdown drains the writer and closes the store."""
    collector = collector or Collector(home, settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if collector.writer is None:
            collector.start()
        app.state.decoders = anyio.CapacityLimiter(DECODERS)
        if on_ready:
            on_ready(collector)
        try:
            yield
        finally:
            await anyio.to_thread.run_sync(collector.stop)

    app = FastAPI(title="hemostat collector", lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None)  # fmt: skip
    app.state.collector = collector
    app.state.metrics_open = metrics_open
    app.add_exception_handler(Refused, _refused)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _invalid)  # type: ignore[arg-type]
    app.add_exception_handler(HemostatError, _failed)
    _routes(app)
    mount(app, collector, settings)
    return app


# ---- errors and auth -------------------------------------------------------------------------


async def _refused(request: Request, exc: Refused) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)


async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
    first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
    field = ".".join(str(p) for p in first["loc"][1:]) or None
    return JSONResponse({"error": first["msg"], "field": field}, status_code=422)


async def _failed(request: Request, exc: Exception) -> JSONResponse:
    log.error("%s %s: %s", request.method, request.url.path, exc)
    return JSONResponse({"error": str(exc), "field": None}, status_code=500)


def _collector(request: Request) -> Collector:
    collector: Collector = request.app.state.collector
    return collector


def caller(request: Request, needed: Role) -> Token:
    """The token of this request, allowed to act as ``needed``; 401 or 403 otherwise."""
    scheme, _, text = request.headers.get("authorization", "").partition(" ")
    challenge = {"WWW-Authenticate": "Bearer"}
    if scheme.lower() != "bearer" or not text.strip():
        raise Refused(401, "a bearer token is required", "Authorization", challenge)
    token = _collector(request).tokens.verify(text.strip())
    if token is None:
        log.warning("refused an unknown or revoked token (id %s) from %s",
                    token_id(text.strip()) or "malformed", _ip(request))  # fmt: skip
        raise Refused(401, "unknown or revoked token", "Authorization", challenge)
    if not allows(token.role, needed):
        log.warning("refused token %s (%s) on %s: needs %s", token.id, token.role,
                    request.url.path, needed)  # fmt: skip
        raise Refused(403, f"a {token.role} token may not do this (needs {needed})",
                      "Authorization")  # fmt: skip
    return token


def needs(role: Role) -> Callable[[Request], Token]:
    def dependency(request: Request) -> Token:
        return caller(request, role)

    return dependency


AgentToken = Annotated[Token, Depends(needs(Role.AGENT))]
AnalystToken = Annotated[Token, Depends(needs(Role.ANALYST))]
ResponderToken = Annotated[Token, Depends(needs(Role.RESPONDER))]


def _gateway(request: Request, token: Token) -> None:
    """An agent started with ``--gateway`` says so on its polls (docs/containment.md)."""
    if request.headers.get(GATEWAY_HEADER) == "1":
        _collector(request).responder.gateway(token.id)


def _ip(request: Request) -> str | None:
    return request.client.host if request.client else None


async def _body(request: Request, limit: int) -> bytes:
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise Refused(413, f"body larger than {limit} bytes", "body")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Refused(413, f"body larger than {limit} bytes", "body")
        chunks.append(chunk)
    return b"".join(chunks)


# ---- bodies --------------------------------------------------------------------------------


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Result(_Body):
    status: str
    detail: str = ""
    at: str = ""


class Issue(_Body):
    action: str
    args: dict[str, Any] = Field(default_factory=dict)
    reason: str = ""


# ---- routes -----------------------------------------------------------------------------------


def _routes(app: FastAPI) -> None:
    @app.post("/api/v1/ingest")
    async def ingest(request: Request, token: AgentToken) -> JSONResponse:
        collector = _collector(request)
        metrics = collector.metrics
        try:
            wait = collector.throttle.take(token.id)
            if wait:
                raise Refused(429, f"more than {collector.throttle.rate:g} batches per second",
                              headers={"Retry-After": str(wait)})  # fmt: skip
            body = await _body(request, collector.limits.body)
            accepted = await anyio.to_thread.run_sync(
                collector.accept, token, body, request.headers.get("content-encoding"),
                _ip(request), limiter=request.app.state.decoders,
            )  # fmt: skip
        except Refused as exc:
            metrics.batch({429: "throttled", 503: "unavailable"}.get(exc.status, "refused"))
            log.info("refused a batch from agent %s (%s): %s", token.id, token.name, exc)
            raise
        metrics.batch("duplicate" if accepted.duplicate else "accepted")
        return JSONResponse(accepted.body())

    @app.get("/api/v1/agent/config")
    async def agent_config(request: Request, token: AgentToken) -> dict[str, Any]:
        _gateway(request, token)
        return _collector(request).agent_config(token)

    @app.get("/api/v1/commands")
    async def commands(
        request: Request, token: AgentToken, wait: Annotated[float, Query(ge=0, le=30)] = 0.0
    ) -> dict[str, Any]:
        _gateway(request, token)
        found = await _collector(request).commands.wait(token.id, wait)
        return {"commands": [c.wire() for c in found]}

    @app.post("/api/v1/commands/{command_id}")
    async def command_result(
        request: Request, command_id: str, result: Result, token: AgentToken
    ) -> dict[str, Any]:
        done = await anyio.to_thread.run_sync(
            _collector(request).responder.answer, token, command_id, result.status,
            result.detail, result.at,
        )  # fmt: skip
        log.info("agent %s: command %s %s %s", token.id, done.id, done.action, done.status)
        return {"id": done.id, "status": str(done.status)}

    @app.post("/api/v1/agents/{agent}/commands")
    async def issue(
        request: Request, agent: str, command: Issue, token: ResponderToken
    ) -> dict[str, Any]:
        collector = _collector(request)
        target = collector.tokens.get(agent)
        if target is None or target.role != Role.AGENT or not target.active:
            raise Refused(404, f"no enrolled agent {agent}", "agent")
        ident = await anyio.to_thread.run_sync(
            collector.commands.issue, agent, command.action, command.args, token.name,
            command.reason,
        )  # fmt: skip
        log.info("%s issued command %s (%s) to agent %s", token.name, ident, command.action, agent)
        return {"id": ident}

    @app.post("/api/v1/contain")
    async def contain(
        request: Request, body: ContainRequest, token: ResponderToken
    ) -> dict[str, Any]:
        return await anyio.to_thread.run_sync(_collector(request).responder.contain, body, token)

    @app.post("/api/v1/release/{action_id}")
    async def release(
        request: Request, action_id: str, token: ResponderToken, body: ReleaseRequest | None = None
    ) -> dict[str, Any]:
        reason = body.reason if body else ""
        responder = _collector(request).responder
        return await anyio.to_thread.run_sync(responder.release, action_id, reason, token.name)

    @app.get("/api/v1/actions")
    async def actions(request: Request, token: AnalystToken) -> dict[str, Any]:
        return {"actions": _collector(request).responder.listing()}

    @app.get("/api/v1/agents")
    async def agents(request: Request, token: AnalystToken) -> dict[str, Any]:
        seen = _collector(request).metrics.agents
        return {"agents": [
            {"id": a, "name": s.name, "ip": s.ip, "last_seen": s.at.isoformat(),
             "lag_seconds": s.lag, "spool_bytes": s.spool_bytes}
            for a, s in sorted(seen.items())]}  # fmt: skip

    @app.get("/healthz")
    async def healthz(request: Request) -> JSONResponse:
        health = _collector(request).health()
        return JSONResponse(health, status_code=200 if health["status"] == "ok" else 503)

    @app.get("/metrics")
    async def metrics(request: Request) -> PlainTextResponse:
        if not request.app.state.metrics_open:
            caller(request, Role.ANALYST)
        collector = _collector(request)
        lag = collector.writer.lag() if collector.writer else 0.0
        text = collector.metrics.render(collector.journal_batches, lag)
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4; charset=utf-8")

"""Ships spooled batches to the collector (``POST /api/v1/ingest``), oldest first.

Answers and what they do to the batch at the head of the spool:

=====================================  ==============================================
``200`` (new or ``duplicate: true``)   acknowledged: removed from the spool
network error, ``408``, ``429``,       kept; retried after ``Retry-After`` when given,
``5xx``                                else after an exponential backoff with jitter
``401``; ``403`` for a batch of this   kept: the token is refused, not the batch; the
agent                                  batches wait until the token is fixed
any other ``4xx``                      set aside in ``rejected/`` with the answer, so one
                                       bad batch never blocks the ones behind it
=====================================  ==============================================

The token travels only in the ``Authorization`` header; nothing here logs headers, and
httpx's own log lines name the URL only.
"""

from __future__ import annotations

import email.utils
import enum
import logging
import random
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from hemostat import __version__
from hemostat.agent.spool import Entry, Spool
from hemostat.errors import ConfigError

log = logging.getLogger("hemostat.agent.shipper")

INGEST = "/api/v1/ingest"
#: longest ``Retry-After`` obeyed (a collector asking for more is asked again sooner)
MAX_RETRY_AFTER = 600.0
_RETRY = frozenset({408, 425, 429})


class Outcome(enum.StrEnum):
    SENT = "sent"
    DUPLICATE = "duplicate"
    EMPTY = "empty"  # nothing to send
    RETRY = "retry"  # kept, try again after ``delay``
    REJECTED = "rejected"  # set aside in rejected/


@dataclass(frozen=True, slots=True)
class Attempt:
    outcome: Outcome
    batch: str | None = None
    delay: float = 0.0
    detail: str = ""


@dataclass
class Backoff:
    """Exponential backoff with jitter: ``base * 2**n`` capped at ``cap``, times 0.5 to 1."""

    base: float = 1.0
    cap: float = 60.0
    rand: Callable[[], float] = field(default=random.random, repr=False)
    failures: int = 0

    def next(self, retry_after: float | None = None) -> float:
        self.failures += 1
        if retry_after is not None:
            return min(max(retry_after, 0.0), MAX_RETRY_AFTER)
        ceiling = min(self.cap, self.base * float(1 << min(self.failures - 1, 30)))
        return ceiling * (0.5 + 0.5 * self.rand())

    def reset(self) -> None:
        self.failures = 0


def connect(collector: str, token: str, ca: Path | None, timeout: float = 30.0) -> httpx.Client:
    """An HTTP/1.1 keep-alive client for the collector; with ``ca``, TLS trusts only that CA."""
    verify: ssl.SSLContext | bool = True
    if ca is not None:
        try:
            verify = ssl.create_default_context(cafile=str(ca))
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"{ca}: not a readable PEM CA certificate ({exc})") from exc
    return httpx.Client(
        base_url=collector,
        headers={"Authorization": f"Bearer {token}", "User-Agent": f"hemostat-agent/{__version__}"},
        verify=verify,
        http1=True,
        http2=False,
        timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
        limits=httpx.Limits(max_connections=2, max_keepalive_connections=2, keepalive_expiry=60),
    )


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - (time.time() if now is None else now), 0.0)


class Shipper:
    """Sends the spool's oldest batch, one request at a time."""

    def __init__(self, spool: Spool, client: httpx.Client, backoff: Backoff | None = None) -> None:
        self.spool, self.client = spool, client
        self.backoff = backoff or Backoff()
        self._down = False

    def send_one(self) -> Attempt:
        while True:
            entry = self.spool.oldest()
            if entry is None:
                return Attempt(Outcome.EMPTY)
            try:
                data = entry.path.read_bytes()
                break
            except FileNotFoundError:  # dropped by the bound meanwhile
                self.spool.ack(entry)
        headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
        try:
            response = self.client.post(INGEST, content=data, headers=headers)
        except httpx.HTTPError as exc:
            return self._retry(entry, None, f"collector unreachable: {_reason(exc)}")
        return self._answer(entry, response)

    def run(self, stop: threading.Event, wake: threading.Event) -> None:
        """Ship until ``stop``; ``wake`` is set when a new batch is spooled."""
        while not stop.is_set():
            attempt = self.send_one()
            if attempt.outcome is Outcome.EMPTY:
                wake.wait(1.0)
                wake.clear()
            elif attempt.outcome is Outcome.RETRY:
                stop.wait(attempt.delay)

    def drain(self) -> int:
        """Send until the spool is empty or the collector cannot take more; batches sent."""
        sent = 0
        while True:
            attempt = self.send_one()
            if attempt.outcome in (Outcome.EMPTY, Outcome.RETRY):
                return sent
            sent += attempt.outcome is not Outcome.REJECTED

    def _answer(self, entry: Entry, response: httpx.Response) -> Attempt:
        status = response.status_code
        if status == 200:
            self.spool.ack(entry)
            self.backoff.reset()
            self._up()
            duplicate = _duplicate(response)
            log.debug("batch %s delivered%s", entry.batch, " (duplicate)" if duplicate else "")
            return Attempt(Outcome.DUPLICATE if duplicate else Outcome.SENT, entry.batch)
        detail = f"HTTP {status}: {_text(response)}"
        if status in _RETRY or status >= 500 or status < 400:
            return self._retry(entry, response.headers.get("Retry-After"), detail)
        if status == 401 or (status == 403 and entry.agent == self.spool.agent):
            return self._retry(entry, None, f"collector refuses the agent's token ({detail})")
        self.spool.reject(entry, status, detail)
        self._up()
        log.error("batch %s rejected by the collector, set aside in %s: %s",
                  entry.batch, self.spool.rejected, detail)  # fmt: skip
        return Attempt(Outcome.REJECTED, entry.batch, 0.0, detail)

    def _retry(self, entry: Entry, header: str | None, detail: str) -> Attempt:
        delay = self.backoff.next(retry_after(header))
        level = logging.DEBUG if self._down else logging.WARNING
        log.log(level, "%s; batch %s kept, next try in %.1f s (%d spooled)",
                detail, entry.batch, delay, self.spool.stats().spool_batches)  # fmt: skip
        self._down = True
        return Attempt(Outcome.RETRY, entry.batch, delay, detail)

    def _up(self) -> None:
        if self._down:
            log.warning("collector reachable again; %d batches spooled",
                        self.spool.stats().spool_batches)  # fmt: skip
            self._down = False


def _duplicate(response: httpx.Response) -> bool:
    try:
        return bool(response.json().get("duplicate"))
    except (ValueError, AttributeError):
        return False


def _text(response: httpx.Response) -> str:
    try:
        body = response.json()
        if isinstance(body, dict) and "error" in body:
            field_ = f" ({body['field']})" if body.get("field") else ""
            return f"{body['error']}{field_}"
    except ValueError:
        pass
    return response.text[:300].strip()


def _reason(exc: httpx.HTTPError) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__

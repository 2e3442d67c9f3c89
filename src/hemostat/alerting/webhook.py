"""Webhook sink: one HTTP POST per alert, the body an OCSF Detection Finding (``ocsf.py``).

A 5xx or 429 answer, a refused connection or a timeout is retried ``webhook_retries`` times,
waiting ``backoff``, then twice that, and so on; any other answer outside 2xx fails at once
(a 401 will not mend by itself). With ``webhook_token_file`` every request carries
``Authorization: Bearer <token>``; https servers are verified against ``webhook_ca_file``
or the system's trust store.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import orjson

import hemostat
from hemostat.alerting import ocsf
from hemostat.alerting.alert import Alert, DeliveryError
from hemostat.errors import ConfigError


@dataclass(frozen=True, slots=True)
class WebhookSink:
    url: str = field(repr=False)  # may carry credentials; ``name`` is the safe form
    token: str | None = field(default=None, repr=False)
    timeout: float = 5.0
    retries: int = 2
    backoff: float = 0.5  # seconds before the first retry
    ca_file: Path | None = None

    @classmethod
    def parse(
        cls, url: str, token: str | None, timeout: float, retries: int, ca_file: Path | None
    ) -> WebhookSink:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"alerting.webhook {url!r}: use an https:// (or http://) URL")
        if retries < 0:
            raise ConfigError(f"alerting.webhook_retries {retries}: use 0 or more")
        return cls(url, token, timeout, retries, ca_file=ca_file)

    @property
    def name(self) -> str:
        """``webhook:`` and the URL without credentials or query (they may hold secrets)."""
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        netloc = f"[{host}]" if ":" in host else host
        if parts.port:
            netloc += f":{parts.port}"
        return "webhook:" + urlunsplit((parts.scheme, netloc, parts.path, "", ""))

    def send(self, alerts: Sequence[Alert]) -> None:
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"hemostat/{hemostat.__version__}",
        }
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        verify: ssl.SSLContext | bool = True
        if self.ca_file is not None:
            verify = ssl.create_default_context(cafile=self.ca_file)
        with httpx.Client(timeout=self.timeout, headers=headers, verify=verify) as client:
            for delivered, alert in enumerate(alerts):
                error = self._post(client, orjson.dumps(ocsf.finding(alert)))
                if error:
                    raise DeliveryError(delivered, f"{self.name}: {error}")

    def _post(self, client: httpx.Client, body: bytes) -> str | None:
        """None once the server took the body, else why it did not (after the retries)."""
        error = "not sent"
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                response = client.post(self.url, content=body)
            except httpx.TransportError as exc:
                error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                continue
            if response.is_success:
                return None
            error = f"HTTP {response.status_code} {response.reason_phrase}"
            if response.status_code < 500 and response.status_code != 429:
                return error
        return error

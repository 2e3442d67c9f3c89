"""The collector (``hemostat serve``): agents' batches in, durably, then the live loop.

    request ─► auth (tokens, roles) ─► batch (decode, validate: rows, raw)
            ─► collector (dedupe, journal fsync, 200) ─► writer thread (append, record the
               batch id, delete the journal file)
    live detection thread (its own DuckDB cursor): every ``detect_interval``, once the rows
    acknowledged so far are written, one detection pass, then response and alerts

Modules: ``auth`` (tokens and roles), ``pki`` (the site CA), ``batch``, ``rows`` and ``raw``
(what an agent may send), ``journal``, ``writer``, ``live`` and ``live_thread``, ``commands``
(collector to agent), ``metrics``, ``collector`` (the parts wired together), ``app`` (the HTTP
API), ``run`` (uvicorn). ``Refused`` is every refusal the API answers with a 4xx or 503.
"""

from __future__ import annotations

from collections.abc import Mapping

from hemostat.errors import HemostatError


class Refused(HemostatError):
    """A request the collector refuses: ``status`` and a JSON body naming the ``field``.

    ``code`` (snake_case, stable; None for refusals no page words) names the refusal for
    whoever words it in another language (the dashboard: ``ui.refusal.<code>``, filled with
    ``values``); ``message`` stays the English of the API and the logs.
    """

    def __init__(
        self, status: int, message: str, field: str | None = None,
        headers: Mapping[str, str] | None = None, *, code: str | None = None,
        values: Mapping[str, object] | None = None,
    ) -> None:  # fmt: skip
        self.status = status
        self.message = message
        self.field = field
        self.headers = dict(headers or {})
        self.code = code
        self.values = dict(values or {})
        super().__init__(f"{status} {field + ': ' if field else ''}{message}")

    def body(self) -> dict[str, str | None]:
        return {"error": self.message, "field": self.field, "code": self.code}

"""How a detector words a finding: in English as ``findings.summary`` stores it (``PLAIN``,
a contract of the CLI, the JSON output and the alerts), or in a report's language (a
:class:`hemostat.report.lang.Lang`), from the texts under ``finding.`` in
``hemostat/report/locales/<code>.yaml``.

``explain(row, words)`` builds its sentence with :func:`say`. Numbers go in as numbers and
their format lives in the text (``{rows:,} rows``, ``{pcr:+.3f}``), so that each language
writes them its way: ``23,320`` and ``+0.996`` in English, ``23 320`` and ``+0,996`` in
French. Sizes and times go in as text, from ``words.size`` and :func:`moment`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any, Protocol

from hemostat.detect.context import size as plain_size

if TYPE_CHECKING:
    from hemostat.report.lang import Lang

NBSP = "\u00a0"
#: languages writing numbers with other marks than English: (thousands, decimal) separators
_MARKS = {"fr": (NBSP, ",")}


class Words(Protocol):
    """A language's texts and formats (``hemostat.report.lang.Lang`` is one)."""

    @property
    def code(self) -> str: ...

    def t(self, key: str, **values: Any) -> str: ...

    def size(self, value: float | None) -> str: ...

    def when(self, ts: datetime | None, seconds: bool = False) -> str: ...


@dataclass(frozen=True)
class Plain:
    """English as the stored summaries say it: ``590 MB``, ``2023-06-12 01:22 UTC``."""

    code: str = "en"

    def t(self, key: str, **values: Any) -> str:
        return _english().t(key, **values)

    def size(self, value: float | None) -> str:
        return plain_size(value)

    def when(self, ts: datetime | None, seconds: bool = False) -> str:
        clock = "%H:%M:%S" if seconds else "%H:%M"
        return "?" if ts is None else ts.astimezone(UTC).strftime(f"%Y-%m-%d {clock} UTC")


PLAIN = Plain()


def say(words: Words | None, key: str, root: str = "finding", **values: Any) -> str:
    """The text ``<root>.<key>`` in ``words`` (the stored English when None), filled in."""
    w = words or PLAIN
    marks = _MARKS.get(str(w.code))
    if marks:
        values = {k: _Number(v, marks) if _numeric(v) else v for k, v in values.items()}
    return w.t(f"{root}.{key}", **values)


def moment(words: Words | None, value: Any) -> str:
    """A time of the row in ``words``; naive times are UTC, anything else is shown as is."""
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        return (words or PLAIN).when(aware)
    return str(value)


@cache
def _english() -> Lang:
    # imported here: the report package imports the scope, which imports the detectors
    from hemostat.report.lang import load

    return load("en", "UTC")


def _numeric(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class _Number:
    """A number whose formatted text uses a language's marks (``1 234,5`` in French)."""

    __slots__ = ("marks", "value")

    def __init__(self, value: float, marks: tuple[str, str]) -> None:
        self.value, self.marks = value, marks

    def __format__(self, spec: str) -> str:
        text = format(self.value, spec)
        group, point = self.marks
        text = text.replace(",", "\0").replace(".", point).replace("\0", group)
        return text.replace("%", f"{NBSP}%")

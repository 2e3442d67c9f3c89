"""How scoping words its reasoning: each sentence is kept as a :class:`Said` (a text key under
``scope.`` in ``hemostat/report/locales/<code>.yaml`` and its values), produced where the
sentence is produced, so that a report or the dashboard can word it in its reader's language.

``Said.text()`` is the English that ``Scope.as_json`` carries (the DESIGN section 4 contract);
``Said.text(lang)`` is the same sentence in ``lang``. Values are data, not text: numbers stay
numbers (the text holds their format, ``{rows:,}``), bytes are :class:`Size`, a word of a
table (a category) is a :class:`Term`, a part of a sentence that varies is a nested ``Said``.
The wording machinery is the finding sentences' (:func:`hemostat.detect.words.say`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hemostat.detect.words import PLAIN, Words, say


@dataclass(frozen=True, slots=True)
class Size:
    """Bytes, written in the reader's units (``590 MB``, ``590 Mo``)."""

    bytes: float


@dataclass(frozen=True, slots=True)
class Term:
    """A word of the table ``scope.<group>`` (``Term("category", "patient")``)."""

    group: str
    value: str


@dataclass(frozen=True, slots=True)
class Said:
    """One sentence (or part of one): the text ``scope.<key>`` filled in with ``values``."""

    key: str
    values: tuple[tuple[str, Any], ...] = ()

    def text(self, words: Words | None = None) -> str:
        """The sentence in ``words``; the English of ``scope --json`` when None."""
        w = words or PLAIN
        filled = {name: _fill(value, w) for name, value in self.values}
        return say(w, self.key, root="scope", **filled)


def said(key: str, **values: Any) -> Said:
    """``Said(key, values)`` from keyword values."""
    return Said(key, tuple(values.items()))


def texts(sentences: tuple[Said, ...], english: tuple[str, ...], words: Words | None) -> list[str]:
    """``sentences`` in ``words``, or the ``english`` as it is when the sentences were not kept
    (a scope built by other code): one list either way."""
    if len(sentences) != len(english):
        return list(english)
    return [s.text(words) for s in sentences]


def _fill(value: Any, words: Words) -> Any:
    if isinstance(value, Said):
        return value.text(words)
    if isinstance(value, Size):
        return words.size(value.bytes)
    if isinstance(value, Term):
        return _Word(words.t(f"scope.{value.group}.{value.value}"))
    return value


class _Word(str):
    """A word that a text may capitalise: ``{category:cap}``."""

    __slots__ = ()

    def __format__(self, spec: str) -> str:
        if spec == "cap":
            return self[:1].upper() + self[1:]
        return str.__format__(self, spec)

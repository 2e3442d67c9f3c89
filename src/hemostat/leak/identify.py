"""From one row of an export or a dump to the normalised identifiers of the person in it,
strongest first: the first one is the row's *subject* key (the person), so that people are
counted apart from records.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import TypeVar

from hemostat.leak import normalise
from hemostat.leak.columns import ColumnMap, Field

_T = TypeVar("_T")
_Values = Callable[[Field], list[str]]


class IdKind(enum.StrEnum):
    """An identifier hashed into the index, strongest first."""

    NIR = "nir"
    NAME_BIRTH = "name_birth"
    EMAIL = "email"
    STAFF_NUMBER = "staff_number"


@dataclass(frozen=True, slots=True)
class Identity:
    """The identifiers of one row; ``keys[0]`` names the person (the subject)."""

    keys: tuple[tuple[IdKind, str], ...]
    record_id: str | None = None

    @property
    def subject(self) -> tuple[IdKind, str] | None:
        return self.keys[0] if self.keys else None


def identify(row: Mapping[str, str], cmap: ColumnMap, today: date | None = None) -> Identity:
    """Every normalised identifier ``row`` holds under ``cmap``, strongest kind first."""

    def values(field: Field) -> list[str]:
        return [v for c in cmap.columns(field) if (v := (row.get(c) or "").strip())]

    nirs = _unique(normalise.nir(v) for v in values(Field.NIR))
    names = _name_keys(values, today)
    emails = _unique(normalise.email(v) for v in values(Field.EMAIL))
    staff = _unique(normalise.staff_number(v) for v in values(Field.STAFF_NUMBER))
    keys = (
        [(IdKind.NIR, v) for v in nirs]
        + [(IdKind.NAME_BIRTH, v) for v in names]
        + [(IdKind.EMAIL, v) for v in emails]
        + [(IdKind.STAFF_NUMBER, v) for v in staff]
    )
    record = values(Field.RECORD_ID)
    return Identity(tuple(keys), record[0] if record else None)


def _name_keys(values: _Values, today: date | None) -> list[str]:
    """``"adejnnoptu|1980-03-07"`` (Jean Dupont) for each spelling of each name and each
    reading of the birth date; a first name alone names no one."""
    lasts, firsts = values(Field.LAST_NAME), " ".join(values(Field.FIRST_NAME))
    texts = [_with_first(last, firsts) for last in lasts] + values(Field.FULL_NAME)
    spellings = _unique(s for text in texts for s in normalise.name_spellings(text))
    if not spellings:
        return []
    dates = _unique(d for v in values(Field.BIRTH_DATE) for d in normalise.birth_dates(v, today))
    return [f"{s}|{d.isoformat()}" for s in spellings for d in dates]


def _with_first(last: str, firsts: str) -> str:
    """``last firsts``, unless the last-name column already holds the first name as well
    ("DUPONT Jean" beside "Jean")."""
    first_words = set(normalise.fold_name(firsts).split())
    if first_words and first_words < set(normalise.fold_name(last).split()):
        return last
    return f"{last} {firsts}"


def _unique(items: Iterable[_T | None]) -> list[_T]:
    return list(dict.fromkeys(i for i in items if i))

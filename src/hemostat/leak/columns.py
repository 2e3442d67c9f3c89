"""Column mapping: which column of an export or a dump holds which identifier field, found
from the header (French and English names, any case, accents, nesting, camelCase), then from
the values of the columns the header says nothing about, and overridden by ``KIND=COLUMN``.
"""

from __future__ import annotations

import enum
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field

from hemostat.leak import normalise
from hemostat.leak.errors import LeakError


class Field(enum.StrEnum):
    """What a column holds."""

    NIR = "nir"
    EMAIL = "email"
    BIRTH_DATE = "birth_date"
    STAFF_NUMBER = "staff_number"
    LAST_NAME = "last_name"
    FIRST_NAME = "first_name"
    FULL_NAME = "full_name"
    RECORD_ID = "record_id"  # the export's own record key; never matched, only hashed


_WHOSE = (
    r"(?:(?:patient|agent|employe|employee|salarie|assure|user|client|person|personne)_)?"
    r"(?:{})"
    r"(?:_(?:du_|de_l_|de_la_|of_)?(?:patient|agent|employe|employee|salarie|assure|user"
    r"|utilisateur|client|person|personne|beneficiaire))?"
)
_HEADERS: dict[Field, str] = {  # tried in this order, each a full match on the folded header
    Field.NIR: r"(?:n|no|num|numero|nr)?_?(?:de_)?(?:nir|ins|nss|secu|securite_sociale|insee)"
    r"(?:_(?:cle|ins|nir|nia|avec_cle))?|matricule_ins|social_security(?:_(?:number|no|id))?|ssn",
    Field.EMAIL: r"(?:adresse_)?(?:e_?)?mail(?:_(?:address|adresse|perso|pro|personnel))?"
    r"|courriel|mel|adresse_electronique|email_address|correo(?:_electronico)?",
    Field.BIRTH_DATE: r"(?:date|dt)_?(?:de_)?(?:naissance|naiss|nais)|ddn|dob|d_o_b"
    r"|birth_?(?:date|day|dt)?|date_?of_?birth|birthday|born|naissance|date_naissance"
    r"|nee?_le|geburtsdatum|fecha_(?:de_)?nacimiento|data_(?:di_)?nascita",
    Field.STAFF_NUMBER: r"matricule(?:_(?:agent|rh|paie|salarie))?|staff_?(?:id|number|no|num)?"
    r"|employee_?(?:id|number|no|num)|emp_?(?:id|no|num)|(?:n|no|num|numero|id)_agent"
    r"|badge|personnel_?(?:id|number|no)|payroll_id",
    Field.LAST_NAME: r"nom(?:_(?:de_)?(?:famille|naissance|usage|d_usage|marital|jeune_fille))?"
    r"|last_?name|surname|family(?:_?name)?|birth_?name|maiden_name|nachname|apellidos?|cognome",
    Field.FIRST_NAME: r"prenoms?(?:_(?:usuel|usage|naissance))?|first_?names?|given(?:_?names?)?"
    r"|forenames?|vorname|nombre",
    Field.FULL_NAME: r"name|full_?name|nom_complet|nom_(?:et_)?prenoms?|prenom_nom|identite"
    r"|display_name|patient|assure|beneficiaire|personne|employee|agent",
}
_PATTERNS = {f: re.compile(_WHOSE.format(p)) for f, p in _HEADERS.items()}
_ALIASES = {
    "last": Field.LAST_NAME,
    "first": Field.FIRST_NAME,
    "name": Field.FULL_NAME,
    "dob": Field.BIRTH_DATE,
    "birth": Field.BIRTH_DATE,
    "mail": Field.EMAIL,
    "staff": Field.STAFF_NUMBER,
    "matricule": Field.STAFF_NUMBER,
    "ins": Field.NIR,
    "id": Field.RECORD_ID,
    "record": Field.RECORD_ID,
}
_SHARE = 0.8  # share of sampled values a column needs to be taken for NIRs, e-mails or dates


@dataclass(frozen=True, slots=True)
class ColumnMap:
    """Column name -> field, in the order of the columns."""

    fields: Mapping[str, Field]
    _by_field: dict[Field, tuple[str, ...]] = dataclass_field(init=False, repr=False)

    def __post_init__(self) -> None:
        by_field = {f: tuple(c for c, g in self.fields.items() if g is f) for f in Field}
        object.__setattr__(self, "_by_field", by_field)

    def columns(self, field: Field) -> tuple[str, ...]:
        return self._by_field[field]

    def as_json(self) -> dict[str, str]:
        return {c: str(f) for c, f in self.fields.items()}


def parse_override(text: str) -> tuple[Field, str]:
    """``"nir=NUM_SECU"`` -> ``(Field.NIR, "NUM_SECU")``."""
    kind, sep, column = text.partition("=")
    kind = kind.strip().lower().replace("-", "_")
    field = _ALIASES.get(kind) or next((f for f in Field if f.value == kind), None)
    if not sep or not column.strip() or field is None:
        known = ", ".join(f.value for f in Field)
        raise LeakError(f"--column {text!r}: expected KIND=COLUMN with KIND one of {known}")
    return field, column.strip()


def header_field(name: str) -> Field | None:
    """The field a header names, or None: ``"Date de naissance"``, ``"patient.lastName"``."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name)
    bare = unicodedata.normalize("NFKD", normalise.repair(spaced))
    folded = "".join(c for c in bare if not unicodedata.combining(c)).casefold()
    segments = ["_".join(re.sub(r"[^a-z0-9]+", " ", s).split()) for s in folded.split(".")]
    segments = [s for s in segments if s and not s.isdigit()]
    for start in range(len(segments)):
        key = "_".join(segments[start:])
        for field, pattern in _PATTERNS.items():
            if pattern.fullmatch(key):
                return field
    return None


def resolve(
    columns: Sequence[str],
    sample: Sequence[Mapping[str, str]],
    overrides: Sequence[tuple[Field, str]],
    where: str,
) -> ColumnMap:
    """Map ``columns`` from their names, then from the values in ``sample``; ``overrides``
    replace whatever was found for their field. Raises LeakError for an override naming no
    column, or when no column holds an identifier."""
    found = {c: f for c in columns if (f := header_field(c)) is not None}
    for column in columns:
        if column not in found and (guess := _content_field(column, sample, found)):
            found[column] = guess
    for field, name in overrides:
        column = _find_column(name, columns, where)
        found = {c: f for c, f in found.items() if f is not field and c != column}
        found[column] = field
    ordered = {c: found[c] for c in columns if c in found}
    if not any(f is not Field.RECORD_ID for f in ordered.values()):
        shown = ", ".join(columns[:30]) or "none"
        raise LeakError(
            f"{where}: no column holds a NIR, e-mail, name, birth date or staff number "
            f"(columns: {shown}); name them with --column KIND=COLUMN"
        )
    return ColumnMap(ordered)


def _find_column(name: str, columns: Sequence[str], where: str) -> str:
    if name in columns:
        return name
    folded = [c for c in columns if c.strip().casefold() == name.strip().casefold()]
    if folded:
        return folded[0]
    shown = ", ".join(columns[:30]) or "none"
    raise LeakError(f"{where}: --column names {name!r}, which is not a column (columns: {shown})")


def _content_field(
    column: str, sample: Sequence[Mapping[str, str]], found: Mapping[str, Field]
) -> Field | None:
    values = [v for row in sample if (v := row.get(column, "").strip())][:200]
    if not values:
        return None
    if _share(values, _keyed_nir) >= _SHARE:
        return Field.NIR
    if _share(values, lambda v: normalise.email(v) is not None and "@" in v) >= _SHARE:
        return Field.EMAIL
    if Field.BIRTH_DATE not in found.values() and _share(values, _written_date) >= _SHARE:
        return Field.BIRTH_DATE
    return None


def looks_like_identifier(value: str) -> bool:
    """A value no header would hold: a keyed NIR, an e-mail address or a written date."""
    v = value.strip()
    return _keyed_nir(v) or normalise.email(v) is not None or _written_date(v)


def _share(values: Sequence[str], test: Callable[[str], bool]) -> float:
    return sum(1 for v in values if test(v)) / len(values)


def _keyed_nir(value: str) -> bool:
    return len(re.sub(r"[\s.\-_/]", "", value)) == 15 and normalise.nir(value) is not None


def _written_date(value: str) -> bool:
    return not value.isdigit() and bool(normalise.birth_dates(value))

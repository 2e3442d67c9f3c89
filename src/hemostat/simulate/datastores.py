"""Where personal data lives: each data store as parts (tables or files) with their rows,
the people they are about, and their size; all of it grows with the hospital.

``records`` of a store is the sum of its parts' rows; ``subjects`` the number of distinct
people in it. Every part is about the same population, so the people in a set of parts are
as many as in the largest of them (the truth of what left follows that rule, see
``leaked``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from hemostat.schema import Category

KB = 1000
MB = 1000 * KB
GB = 1000 * MB


@dataclass(frozen=True, slots=True)
class Part:
    object: str  # URI as access events name it
    rows: int
    subjects: int
    bytes: int


@dataclass(frozen=True, slots=True)
class Datastore:
    name: str
    category: Category
    host: str  # host name in the hospital
    ports: tuple[int, ...]
    prefixes: tuple[str, ...]
    subjects: int
    parts: tuple[Part, ...]

    @property
    def records(self) -> int:
        return sum(p.rows for p in self.parts)

    @property
    def bytes(self) -> int:
        return sum(p.bytes for p in self.parts)


@dataclass(frozen=True, slots=True)
class Leak:
    """What of one store left in one episode: a fraction of some of its parts."""

    store: Datastore
    parts: tuple[tuple[Part, float], ...]

    @property
    def records(self) -> int:
        return sum(round(p.rows * f) for p, f in self.parts)

    @property
    def subjects(self) -> int:
        return max((round(p.subjects * f) for p, f in self.parts), default=0)

    @property
    def bytes(self) -> int:
        return sum(round(p.bytes * f) for p, f in self.parts)

    def truth(self) -> dict[str, object]:
        return {
            "name": self.store.name,
            "category": str(self.store.category),
            "records": self.records,
            "subjects": self.subjects,
            "bytes": self.bytes,
            "objects": [p.object for p, _ in self.parts],
        }


def whole(store: Datastore) -> Leak:
    return Leak(store, tuple((p, 1.0) for p in store.parts))


def _table(db: str, name: str, rows: int, subjects: int, row_bytes: int) -> Part:
    return Part(f"{db}{name}", rows, subjects, rows * row_bytes)


def catalogue(hosts: int) -> dict[str, Datastore]:
    """The data stores of a hospital of ``hosts`` hosts, by name."""
    patients = 106 * hosts  # ~850,000 patients for 8,000 hosts
    staff = hosts + hosts // 8
    stores = (
        _dpi(patients),
        _lab(patients),
        _pacs(patients),
        _edsr(patients),
        _rh(staff),
        _finance(patients),
    )
    return {s.name: s for s in stores}


def _dpi(p: int) -> Datastore:
    db = "postgresql://dpi/public."
    parts = (
        _table(db, "patients", p, p, 1_600),
        _table(db, "stays", p * 2 // 5, p * 7 // 20, 3_000),
        _table(db, "prescriptions", p // 2, p // 4, 1_200),
        _table(db, "documents", p * 3 // 10, p // 4, 150_000),
    )
    return Datastore(
        "dpi", Category.PATIENT, "dpi-db-01", (5432,), ("postgresql://dpi/",), p, parts
    )


def _lab(p: int) -> Datastore:
    db = "mssql://lab/dbo."
    parts = (_table(db, "results", p * 3, p // 2, 900), _table(db, "orders", p, p // 2, 600))
    return Datastore(
        "lab", Category.PATIENT, "lab-db-01", (1433,), ("mssql://lab/",), p // 2, parts
    )


def _pacs(p: int) -> Datastore:
    parts = (Part("dicom://pacs-01/studies", p // 2, p // 3, (p // 2) * 120 * MB),)
    return Datastore(
        "pacs",
        Category.PATIENT,
        "pacs-01",
        (104, 11112),
        ("dicom://pacs-01/", "file:///srv/pacs/"),
        p // 3,
        parts,
    )


def _edsr(p: int) -> Datastore:
    db = "postgresql://edsr/cohort."
    parts = (
        _table(db, "persons", p // 2, p // 2, 400),
        _table(db, "diagnoses", p * 2, p // 2, 1_500),
        _table(db, "biology", p * 4, p * 2 // 5, 2_000),
    )
    return Datastore(
        "edsr", Category.RESEARCH, "edsr-db-01", (5432,), ("postgresql://edsr/",), p // 2, parts
    )


def _rh(staff: int) -> Datastore:
    share = "smb://fs-01/RH/"
    months = [
        Part(f"{share}paie/2023-{m:02d}.xlsx", staff, staff, staff * 220) for m in range(1, 6)
    ]
    parts = (
        *months,
        Part(f"{share}contrats/contrats-2023.zip", staff, staff, staff * 40 * KB),
        Part(f"{share}personnel/annuaire.csv", staff, staff, staff * 300),
        Part(f"{share}medecine-travail/visites.xlsx", staff // 2, staff // 2, staff * 2 * KB),
        Part(f"{share}evaluations/entretiens-2022.docx", staff // 3, staff // 3, staff * 6 * KB),
    )
    return Datastore("rh", Category.STAFF, "fs-01", (445,), (share,), staff, parts)


def _finance(p: int) -> Datastore:
    share = "smb://fs-02/FIN/"
    parts = (
        Part(f"{share}facturation/factures-2023.csv", p // 2, p // 3, p // 2 * 500),
        Part(f"{share}fournisseurs/fournisseurs.xlsx", 4000, 0, 2 * MB),
    )
    return Datastore("finance", Category.FINANCE, "fs-02", (445,), (share,), p // 3, parts)


def leaks_truth(leaks: Iterable[Leak]) -> list[dict[str, object]]:
    return [leak.truth() for leak in leaks]

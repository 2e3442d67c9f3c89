"""A synthetic site for leak matching: exports of three data stores (patients, lab results,
staff) and two published dumps made of a known subset of their people, plus noise rows
(people not in any export), rows with no identifier, duplicates and formatting damage."""

from __future__ import annotations

import csv
import json
import random
import unicodedata
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import pytest

from hemostat.leak import build_index
from hemostat.leak.normalise import name_spellings, nir_key
from hemostat.schema import Category

LAST = [
    "Dupont",
    "Martin",
    "Bernard",
    "Lefèvre",
    "Lévêque",
    "Hébert",
    "Crémieux",
    "Durand",
    "Dubois",
    "Moreau",
    "Laurent",
    "Fournier",
    "Girard",
    "André",
    "Mercier",
    "Guérin",
    "Garnier",
    "Chevalier",
    "François",
    "Gauthier",
    "Perrin",
    "Clément",
    "Roussel",
    "Mathieu",
    "Marchand",
    "Lemaire",
    "Noël",
    "Meunier",
    "Blanchard",
    "Rivière",
    "Brunet",
    "Gaillard",
    "Barbier",
    "Gérard",
    "Lacroix",
    "Bourgeois",
    "Benoît",
    "Leclercq",
    "Guillaume",
    "Carpentier",
    "Deschamps",
    "Vasseur",
    "Poirier",
    "Charpentier",
    "Ménard",
    "Maillard",
    "Hervé",
    "Schneider",
    "Le-Gall",
    "Prévost",
    "Pelletier",
    "Lebrun",
    "Boulanger",
    "Étienne",
    "Grondin",
    "Tessier",
    "Chevallier",
    "Lemaître",
    "Bénard",
    "Gosselin",
    "N'Diaye",
    "D'Arcy",
    "Cœurdevey",
    "Müller",
    "Nguyen",
    "Rousseau",
    "Bonnefoy",
    "Delacroix",
    "Faure",
    "Bouvier",
    "Caron",
]
FIRST = [
    "Hélène",
    "Jean-Pierre",
    "Zoé",
    "Amélie",
    "Loïc",
    "Noémie",
    "Jérôme",
    "François",
    "Cécile",
    "Gaëlle",
    "Anaïs",
    "Bastien",
    "Éloïse",
    "Thérèse",
    "Mathéo",
    "Léa",
    "Chloé",
    "Inès",
    "Raphaël",
    "Benoît",
    "Côme",
    "Maëlle",
    "Joël",
    "Agnès",
    "Céline",
    "Jean",
    "Marie-Thérèse",
    "Anne-Sophie",
    "Paul",
    "Julien",
    "Camille",
    "Louis",
    "Hugo",
    "Emma",
    "Lucas",
    "Manon",
    "Théo",
    "Sarah",
    "Nathan",
    "Clémence",
    "Valérie",
    "Stéphane",
    "Sébastien",
    "Frédéric",
    "Hervé",
    "Gérald",
    "Aurélie",
    "Mélanie",
]
CITIES = ["Paris", "Lyon", "Ajaccio", "Bastia", "Lille", "Nantes", "Brest", "Rennes"]
DEPARTMENTS = ["75", "69", "13", "2A", "2B", "59", "33", "44", "35", "29"]


@dataclass(frozen=True)
class Person:
    last: str
    first: str
    dob: date
    nir: str  # 15 characters, valid key
    email: str | None
    matricule: str | None = None


@dataclass
class People:
    """Draws people whose NIR, e-mail and name + birth date are all distinct."""

    rng: random.Random
    seen: set[str] = field(default_factory=set)

    def draw(self, n: int, *, staff: bool = False) -> list[Person]:
        out: list[Person] = []
        while len(out) < n:
            person = self._one(staff, len(self.seen))
            keys = {person.nir[:13], person.email or "", person.matricule or ""}
            keys |= {f"{k}|{person.dob}" for k in name_spellings(f"{person.last} {person.first}")}
            keys.discard("")
            if keys & self.seen:
                continue
            self.seen |= keys
            out.append(person)
        return out

    def _one(self, staff: bool, serial: int) -> Person:
        r = self.rng
        last, first = r.choice(LAST), r.choice(FIRST)
        dob = date(1930, 1, 1) + timedelta(days=r.randrange(365 * 75))
        dept = r.choice(DEPARTMENTS)
        body = f"{r.choice('12')}{dob.year % 100:02d}{dob.month:02d}{dept}{r.randrange(1, 990):03d}{r.randrange(1, 999):03d}"
        nir = f"{body}{nir_key(body):02d}"
        ascii_name = f"{_ascii(first)}.{_ascii(last)}".lower().replace("'", "")
        domain = "chu-exemple.fr" if staff else r.choice(["laposte.net", "orange.fr", "gmail.com"])
        email = None if r.random() < 0.05 and not staff else f"{ascii_name}{serial}@{domain}"
        matricule = f"MAT-{r.randrange(1, 999_999):06d}" if staff else None
        return Person(last, first, dob, nir, email, matricule)


def _ascii(text: str) -> str:
    bare = unicodedata.normalize("NFKD", text.replace("œ", "oe").replace("Œ", "Oe"))
    return "".join(c for c in bare if not unicodedata.combining(c))


def write_csv(
    path: Path,
    header: list[str],
    rows: list[list[str]],
    *,
    delimiter: str = ";",
    encoding: str = "utf-8",
    quoting: int = csv.QUOTE_MINIMAL,
) -> Path:
    with path.open("w", encoding=encoding, newline="") as f:
        writer = csv.writer(f, delimiter=delimiter, quoting=quoting)
        writer.writerow(header)
        writer.writerows(rows)
    return path


# ---- the site's exports -----------------------------------------------------------------


@dataclass(frozen=True)
class Site:
    patients: list[Person]
    staff: list[Person]
    labo: list[Person]  # patients with two lab results each
    dpi_csv: Path
    labo_csv: Path
    rh_csv: Path


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    rng = random.Random(20240305)
    people = People(rng)
    patients, staff = people.draw(2000), people.draw(300, staff=True)
    labo = rng.sample(patients, 300)
    out = tmp_path_factory.mktemp("exports")
    dpi = write_csv(
        out / "dpi.csv",
        ["IPP", "NOM", "PRENOM", "DATE_NAISSANCE", "NIR", "EMAIL", "VILLE"],
        [
            [
                f"{900_000 + i}",
                p.last.upper(),
                p.first,
                p.dob.strftime("%d/%m/%Y"),
                p.nir,
                p.email or "",
                rng.choice(CITIES),
            ]
            for i, p in enumerate(patients)
        ],
    )
    labo_csv = write_csv(
        out / "labo.csv",
        ["nir", "nom", "prénom", "ddn", "examen"],
        [
            [p.nir, p.last, p.first, p.dob.isoformat(), exam]
            for p in labo
            for exam in ("NFS", "CRP")
        ],
        delimiter=",",
        encoding="cp1252",
    )
    rh = write_csv(
        out / "rh.csv",
        ["matricule", "nom", "prenom", "date_naissance", "courriel"],
        [
            [p.matricule or "", p.last, p.first, p.dob.strftime("%d/%m/%Y"), p.email or ""]
            for p in staff
        ],
    )
    return Site(patients, staff, labo, dpi, labo_csv, rh)


SECRET = bytes(range(32))


def index_site(site: Site, index_dir: Path, secret: bytes = SECRET) -> None:
    for source, name, category in (
        (site.dpi_csv, "dpi", Category.PATIENT),
        (site.labo_csv, "labo", Category.PATIENT),
        (site.rh_csv, "rh", Category.STAFF),
    ):
        build_index(source, datastore=name, category=category, secret=secret, index_dir=index_dir)


@pytest.fixture(scope="session")
def site_index(site: Site, tmp_path_factory: pytest.TempPathFactory) -> Path:
    index_dir = tmp_path_factory.mktemp("home") / "leak-index"
    index_site(site, index_dir)
    return index_dir


# ---- the published dumps ----------------------------------------------------------------


@dataclass(frozen=True)
class Dumps:
    patients_csv: Path
    staff_json: Path
    noise_csv: Path  # the noise and no-identifier rows alone
    patients: list[Person]  # the known subset of the dpi export in the dumps
    staff: list[Person]
    noise: int  # rows of people in no export
    empty: int  # rows with no usable identifier
    duplicates: int
    expected_kinds: dict[str, int]  # dpi records matched per identifier kind


def _mojibake(text: str) -> str:
    return text.encode("utf-8").decode("cp1252")


def _lost(text: str) -> str:
    return "".join(c if c.isascii() else "?" for c in text)


def _patient_row(i: int, p: Person) -> dict[str, str]:
    """Damage that depends on the row: the name+birth key must survive every variant."""
    nir = f"{p.nir[:1]} {p.nir[1:3]} {p.nir[3:5]} {p.nir[5:7]} {p.nir[7:10]} {p.nir[10:13]} {p.nir[13:]}"
    variant = i % 4
    if variant == 0:  # NIR with spaces, upper-case name, French date, no e-mail
        return {
            "LAST NAME": p.last.upper(),
            "First name": p.first.upper(),
            "DOB": p.dob.strftime("%d/%m/%Y"),
            "Social Security No": nir,
            "E-Mail": "",
        }
    if variant == 1:  # no NIR, accents stripped, ISO date, e-mail upper-case and padded
        return {
            "LAST NAME": _ascii(p.last),
            "First name": _ascii(p.first),
            "DOB": p.dob.isoformat(),
            "Social Security No": "",
            "E-Mail": f"  {(p.email or '').upper()} ",
        }
    if variant == 2:  # NIR without its key, mojibake, date in words
        return {
            "LAST NAME": _mojibake(p.last),
            "First name": _mojibake(p.first),
            "DOB": f"{p.dob.day} {['janv', 'fév', 'mars', 'avr', 'mai', 'juin', 'juil', 'août', 'sept', 'oct', 'nov', 'déc'][p.dob.month - 1]} {p.dob.year}",
            "Social Security No": p.nir[:13],
            "E-Mail": "",
        }
    return {
        "LAST NAME": _lost(p.first),
        "First name": f"  {_lost(p.last)}  ",  # swapped, lossy
        "DOB": p.dob.strftime("%Y%m%d"),
        "Social Security No": "",
        "E-Mail": "",
    }


@pytest.fixture(scope="session")
def dumps(site: Site, tmp_path_factory: pytest.TempPathFactory) -> Dumps:
    rng = random.Random(777)
    out = tmp_path_factory.mktemp("dumps")
    patients = rng.sample(site.patients, 137)
    noise = People(rng, seen=_seen(site)).draw(60)
    rows = [_patient_row(i, p) for i, p in enumerate(patients)]
    rows[5]["E-Mail"] = "Jean <" + (patients[5].email or "").replace("@", "+leak@") + ">"
    duplicates = [dict(r) for r in rng.sample(rows, 12)]
    noise_rows = [_patient_row(i, p) for i, p in enumerate(noise[:50])]
    for r, p in zip(noise_rows, noise, strict=False):
        r["Social Security No"] = p.nir
        r["E-Mail"] = p.email or ""
    empty = [
        {"First name": "Jean", "city": "Lyon, 3e"},
        {"LAST NAME": "", "DOB": "pas de date"},
        {"First name": "Zoé", "DOB": "01/02/1990"},
        {"city": "Paris"},
        {"E-Mail": "not-an-address", "Social Security No": "1234"},
    ]
    table = rows + duplicates + noise_rows + empty
    rng.shuffle(table)
    header = ["city", "E-Mail", "DOB", "phone", "Social Security No", "First name", "LAST NAME"]
    for name, written in (("patients.csv", table), ("noise.csv", noise_rows + empty)):
        write_csv(
            out / name,
            header,
            [[r.get(h, "") if h != "phone" else "06 12 34 56 78" for h in header] for r in written],
            delimiter=",",
            quoting=csv.QUOTE_ALL,
        )
    staff = rng.sample(site.staff, 20)
    staff_rows = [_staff_record(i, p) for i, p in enumerate(staff)]
    staff_rows += [dict(r) for r in staff_rows[:3]]
    staff_rows += [_staff_record(i, p) for i, p in enumerate(noise[50:])]
    (out / "staff.json").write_text(
        json.dumps({"source": "forum", "data": staff_rows}), encoding="utf-8"
    )
    kinds = {
        "name_birth": 137,
        "nir": sum(1 for i in range(137) if i % 4 in (0, 2)),
        "email": sum(1 for i, p in enumerate(patients) if i % 4 == 1 and p.email),
    }
    return Dumps(
        out / "patients.csv",
        out / "staff.json",
        out / "noise.csv",
        patients,
        staff,
        noise=50 + 10,
        empty=len(empty),
        duplicates=12 + 3,
        expected_kinds=kinds,
    )


def _staff_record(i: int, p: Person) -> dict[str, object]:
    matricule = p.matricule or f"EXT-{i:04d}"  # noise: no staff number of the export
    written = [matricule.lower(), matricule.replace("-", " "), matricule.replace("-", ".")][i % 3]
    return {
        "employee": {"id": written, "service": "urgences"},
        "name": {"family": p.last.upper(), "given": [_ascii(p.first)]},
        "contact": {"mail": p.email.upper() if p.email and i % 2 else None},
    }


def _seen(site: Site) -> set[str]:
    """Every identifier of the exports, so that noise people share none of them."""
    seen: set[str] = set()
    for p in site.patients + site.staff:
        seen |= {p.nir[:13], p.email or "", p.matricule or ""}
        seen |= {f"{k}|{p.dob}" for k in name_spellings(f"{p.last} {p.first}")}
    return seen

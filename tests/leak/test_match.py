"""Matching damaged dumps against the synthetic site's index: exactly the known subset is
found, noise finds nothing, duplicates count once, and the index holds no clear identifier."""

from __future__ import annotations

import json
import shutil
import stat
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from hemostat.leak import LeakError, build_index, fingerprint, load_index, match, open_secret
from hemostat.leak.match import MatchResult
from hemostat.schema import Category

from .conftest import SECRET, Dumps, Site, index_site


@pytest.fixture(scope="module")
def result(site_index: Path, dumps: Dumps) -> MatchResult:
    return match([dumps.patients_csv, dumps.staff_json], index_dir=site_index, secret=SECRET)


def test_index_counts_records_and_people(site_index: Path, site: Site) -> None:
    stores = {s.datastore: s for s in load_index(site_index, SECRET)}
    assert (stores["dpi"].records, stores["dpi"].subjects) == (2000, 2000)
    assert (stores["labo"].records, stores["labo"].subjects) == (600, 300)  # two results each
    assert (stores["rh"].records, stores["rh"].subjects, stores["rh"].category) == (
        300,
        300,
        Category.STAFF,
    )
    assert stores["dpi"].kinds == {
        "email": sum(1 for p in site.patients if p.email),
        "name_birth": 2000,
        "nir": 2000,
    }
    assert stores["labo"].columns == {
        "nir": "nir",
        "nom": "last_name",
        "prénom": "first_name",
        "ddn": "birth_date",
    }


def test_dump_matches_exactly_the_known_subset(
    result: MatchResult, dumps: Dumps, site: Site
) -> None:
    by_store = {s.datastore: s for s in result.stores}
    in_labo = {p.nir for p in site.labo} & {p.nir for p in dumps.patients}
    assert (by_store["dpi"].matched_records, by_store["dpi"].matched_subjects) == (137, 137)
    assert (by_store["labo"].matched_records, by_store["labo"].matched_subjects) == (
        2 * len(in_labo),
        len(in_labo),
    )
    assert (by_store["rh"].matched_records, by_store["rh"].matched_subjects) == (20, 20)
    assert by_store["dpi"].kinds == dumps.expected_kinds  # every damaged name still matched
    assert by_store["rh"].kinds == {
        "staff_number": 20,
        "email": sum(1 for i, p in enumerate(dumps.staff) if i % 2 and p.email),
    }
    categories = {c.category: c for c in result.categories}
    patient = categories[Category.PATIENT]
    assert (patient.matched_records, patient.matched_subjects) == (137 + 2 * len(in_labo), 137)
    assert (
        not categories[Category.FINANCE].indexed
        and categories[Category.FINANCE].matched_records == 0
    )


def test_dump_rows_noise_and_duplicates(result: MatchResult, dumps: Dumps) -> None:
    patients, staff = result.dumps
    assert (patients.format, staff.format) == ("csv", "json")
    assert patients.rows == 137 + 12 + 50 + dumps.empty
    assert (patients.matched, patients.unmatched, patients.no_identifier) == (
        137 + 12,
        50,
        dumps.empty,
    )
    assert (staff.rows, staff.matched, staff.unmatched, staff.no_identifier) == (33, 23, 10, 0)
    assert patients.columns == {
        "E-Mail": "email",
        "DOB": "birth_date",
        "Social Security No": "nir",
        "First name": "first_name",
        "LAST NAME": "last_name",
    }


def test_noise_alone_matches_nothing(site_index: Path, dumps: Dumps) -> None:
    got = match([dumps.noise_csv], index_dir=site_index, secret=SECRET)
    assert (got.dumps[0].rows, got.dumps[0].unmatched, got.dumps[0].matched) == (
        50 + dumps.empty,
        50,
        0,
    )
    assert [s.matched_records for s in got.stores] == [0, 0, 0]


def test_index_holds_no_clear_identifier(site_index: Path, site: Site) -> None:
    files = [p for p in site_index.rglob("*") if p.is_file()]
    assert {p.name for p in files} == {
        "dpi.parquet",
        "dpi.json",
        "labo.parquet",
        "labo.json",
        "rh.parquet",
        "rh.json",
    }
    blob = b"\n".join(p.read_bytes() for p in files)
    assert b"name_birth" in blob and b"dpi" in blob  # a clear string written there is found
    needles: set[str] = set()
    for p in site.patients + site.staff:
        needles |= {
            p.nir,
            p.nir[:13],
            f"{p.last} {p.first}",
            f"{p.last.upper()};{p.first}",
            p.dob.strftime("%d/%m/%Y"),
        }
        needles |= {p.email or p.nir, p.matricule or p.nir, (p.matricule or p.nir).replace("-", "")}
        if len(p.last) >= 5:  # shorter words turn up by chance among random hash bytes
            needles |= {p.last, p.last.upper(), p.last.lower()}
    found = [n for n in needles for enc in ("utf-8", "cp1252") if n.encode(enc, "replace") in blob]
    assert found == []
    table = pq.read_table(site_index / "dpi.parquet")
    assert table.column_names == ["datastore", "category", "kind", "hash", "record", "subject"]
    assert set(table["kind"].to_pylist()) == {"nir", "name_birth", "email"}
    assert {len(h) for h in table["hash"].to_pylist()} == {16}


def test_secret_lives_apart_with_mode_0600(tmp_path: Path, site: Site) -> None:
    home = tmp_path / "home"
    key, index_dir = home / "secrets" / "leak.key", home / "leak-index"
    secret, created = open_secret(key, index_dir, create=True)
    build_index(
        site.rh_csv, datastore="rh", category=Category.STAFF, secret=secret, index_dir=index_dir
    )
    assert created and len(secret) == 32 and stat.S_IMODE(key.stat().st_mode) == 0o600
    assert not key.resolve().is_relative_to(index_dir.resolve())
    assert secret.hex().encode() not in b"".join(p.read_bytes() for p in index_dir.iterdir())
    assert open_secret(key, index_dir, create=True) == (secret, False)  # kept, never rewritten
    with pytest.raises(LeakError, match="must not be kept inside the index"):
        open_secret(index_dir / "leak.key", index_dir, create=True)
    with pytest.raises(LeakError, match="already holds an index"):
        open_secret(home / "other.key", index_dir, create=True)


def test_another_secret_gives_other_hashes_and_no_match(
    site: Site, dumps: Dumps, site_index: Path, tmp_path: Path
) -> None:
    other = bytes(32)
    index_site(site, tmp_path / "ix", secret=other)
    ours = set(pq.read_table(site_index / "dpi.parquet")["hash"].to_pylist())
    theirs = set(pq.read_table(tmp_path / "ix" / "dpi.parquet")["hash"].to_pylist())
    assert len(ours) == len(theirs) > 4000 and not ours & theirs
    with pytest.raises(LeakError, match="built with another secret"):
        match([dumps.patients_csv], index_dir=site_index, secret=other)
    # our index relabelled as if built with the other secret: its hashes still match nothing
    relabelled = tmp_path / "relabelled"
    shutil.copytree(site_index, relabelled)
    for sidecar in relabelled.glob("*.json"):
        data = json.loads(sidecar.read_text()) | {"fingerprint": fingerprint(other)}
        sidecar.write_text(json.dumps(data))
    got = match([dumps.patients_csv, dumps.staff_json], index_dir=relabelled, secret=other)
    assert [s.matched_records for s in got.stores] == [0, 0, 0]
    assert sum(d.matched for d in got.dumps) == 0


def test_reindexing_a_store_replaces_it(site: Site, tmp_path: Path) -> None:
    index_dir = tmp_path / "ix"
    build_index(
        site.rh_csv, datastore="rh", category=Category.STAFF, secret=SECRET, index_dir=index_dir
    )
    build_index(
        site.labo_csv,
        datastore="labo",
        category=Category.PATIENT,
        secret=SECRET,
        index_dir=index_dir,
    )
    again = build_index(
        site.rh_csv, datastore="rh", category=Category.STAFF, secret=SECRET, index_dir=index_dir
    )
    assert again.records == 300 and pq.read_table(index_dir / "rh.parquet").num_rows == again.hashes
    assert sorted(s.datastore for s in load_index(index_dir, SECRET)) == ["labo", "rh"]
    assert not list(index_dir.glob(".*"))  # no temporary file left behind

"""Identifier normalisation: one canonical text per identifier, whatever the damage."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hemostat.leak.normalise import (
    birth_dates,
    email,
    fold_name,
    name_spellings,
    nir,
    nir_key,
    repair,
    staff_number,
)

TODAY = date(2025, 6, 1)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("180037512345692", "1800375123456"),
        ("1 80 03 75 123 456 92", "1800375123456"),
        ("1.80.03.75.123.456-92", "1800375123456"),
        ("1800375123456", "1800375123456"),  # without key
        ("180037512345693", None),  # wrong key
        ("180037512345692.0", "1800375123456"),  # a spreadsheet's float
        ("2 69 05 2A 123 456 " + f"{nir_key('269052A123456'):02d}", "269052A123456"),
        ("2 69 05 2b 123 456 " + f"{nir_key('269052B123456'):02d}", "269052B123456"),
        ("269052A12345600", None),
        ("069052112345600", None),  # first digit is the sex: never 0
        ("18003751234569", None),  # 14 characters
        ("", None),
        ("1800375123456AB", None),
    ],
)
def test_nir(text: str, expected: str | None) -> None:
    assert nir(text) == expected


def test_nir_key_corsica() -> None:
    assert nir_key("1800375123456") == 97 - 1800375123456 % 97
    assert nir_key("269052A123456") == 97 - 2690519123456 % 97
    assert nir_key("269052B123456") == 97 - 2690518123456 % 97


@given(
    body=st.from_regex(r"[12][0-9]{4}(?:[0-9]{2}|2A|2B)[0-9]{6}", fullmatch=True),
    sep=st.sampled_from(["", " ", ".", "-"]),
    bad=st.integers(1, 96),
)
def test_nir_property(body: str, sep: str, bad: int) -> None:
    key = nir_key(body)
    assert 1 <= key <= 97
    assert nir(sep.join(body) + sep + f"{key:02d}") == body
    assert nir(body + f"{(key + bad - 1) % 97 + 1:02d}") is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("  Jean.Dupont@Example.FR ", "jean.dupont@example.fr"),
        ("jean.dupont+hopital@example.fr", "jean.dupont@example.fr"),
        ("Jean Dupont <JEAN.DUPONT@example.fr>", "jean.dupont@example.fr"),
        ("mailto:a@b.fr", "a@b.fr"),
        ("ｊｅａｎ@example.fr", "jean@example.fr"),  # noqa: RUF001  (full-width letters)
        ("not an address", None),
        ("@example.fr", None),
        ("+tag@example.fr", None),
        ("a@localhost", None),
    ],
)
def test_email(text: str, expected: str | None) -> None:
    assert email(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hélène", "helene"),
        ("HÃ©lÃ¨ne", "helene"),  # UTF-8 read as Windows-1252
        ("D'ARC-Œuvre", "d arc oeuvre"),
        ("  Le   Gall ", "le gall"),
        ("Müller Straße", "muller strasse"),
        ("N’Diaye", "n diaye"),  # noqa: RUF001  (the typographic apostrophe a dump may hold)
        ("H?l?ne", "h?l?ne"),
        ("H\ufffdl\ufffdne", "h?l?ne"),
        ("Jean-Pierre 2", "jean pierre"),
    ],
)
def test_fold_name(text: str, expected: str) -> None:
    assert fold_name(text) == expected


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("DUPONT Hélène", "helene dupont"),
        ("N'Diaye Moussa", "NDIAYE MOUSSA"),
        ("Le Gall Anne", "LEGALL ANNE"),
        ("Jean-Pierre Martin", "MARTIN Jean Pierre"),
        ("HÃ©lÃ¨ne Dupont", "Hélène Dupont"),
        ("Cœurdevey Hervé", "C?urdevey Herv?"),
        ("Cœurdevey Hervé", "Curdevey Herv"),
        ("Cœurdevey Hervé", "COEURDEVEY HERVE"),
    ],
)
def test_name_spellings_agree(a: str, b: str) -> None:
    assert set(name_spellings(a)) & set(name_spellings(b))


@pytest.mark.parametrize(("a", "b"), [("Dupont Jean", "Dupond Jean"), ("Martin Léa", "Martin Léo")])
def test_name_spellings_tell_people_apart(a: str, b: str) -> None:
    assert not set(name_spellings(a)) & set(name_spellings(b))


def test_one_word_names_no_one() -> None:
    assert name_spellings("Jean") == () and name_spellings("  ") == ()
    assert name_spellings("Dupont Dupont") != ()  # a person may bear the same word twice


def test_repair_leaves_real_text_alone() -> None:
    assert repair("JOÃO Silva") == "JOÃO Silva" and repair("Ã€gnes Cœur") == "Àgnes Cœur"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1980-03-07", [date(1980, 3, 7)]),
        ("07/03/1980", [date(1980, 3, 7)]),  # day first
        ("7/3/1980", [date(1980, 3, 7)]),
        ("07-03-1980", [date(1980, 3, 7)]),
        ("07.03.1980", [date(1980, 3, 7)]),
        ("03/25/1980", [date(1980, 3, 25)]),  # only month-first is possible
        ("7/3/80", [date(1980, 3, 7)]),  # 2080 is in the future
        ("7/3/05", [date(1905, 3, 7), date(2005, 3, 7)]),  # both readings kept
        ("19800307", [date(1980, 3, 7)]),
        ("07031980", [date(1980, 3, 7)]),
        ("1980-03-07 00:00:00", [date(1980, 3, 7)]),
        ("1980-03-07T00:00:00+01:00", [date(1980, 3, 7)]),
        ("1980-03-06T23:00:00.000Z", [date(1980, 3, 6), date(1980, 3, 7)]),  # Paris midnight in UTC
        ("7 mars 1980", [date(1980, 3, 7)]),
        ("1er janvier 1980", [date(1980, 1, 1)]),
        ("07-Mar-1980", [date(1980, 3, 7)]),
        ("March 7, 1980", [date(1980, 3, 7)]),
        ("7 août 1980", [date(1980, 8, 7)]),
        ("31/02/1980", []),
        ("1870-01-01", []),
        ("2030-01-01", []),
        ("pas de date", []),
        ("", []),
    ],
)
def test_birth_dates(text: str, expected: list[date]) -> None:
    assert list(birth_dates(text, TODAY)) == expected


@given(st.dates(date(1900, 1, 1), TODAY))
def test_birth_dates_round_trip(day: date) -> None:
    for fmt in ("%Y-%m-%d", "%d/%m/%Y", "%Y%m%d", "%d.%m.%Y", "%-d/%-m/%Y"):
        assert birth_dates(day.strftime(fmt), TODAY)[0] == day


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (" mat-004512 ", "MAT004512"),
        ("MAT 004512", "MAT004512"),
        ("004512", "4512"),
        ("4512.0", "4512"),
        ("0000", None),
        ("", None),
    ],
)
def test_staff_number(text: str, expected: str | None) -> None:
    assert staff_number(text) == expected

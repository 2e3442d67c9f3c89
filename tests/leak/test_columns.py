"""Column mapping from header names, from values, and from ``KIND=COLUMN`` overrides."""

from __future__ import annotations

import pytest

from hemostat.leak import Field, LeakError, identify, parse_override
from hemostat.leak.columns import header_field, resolve


@pytest.mark.parametrize(
    ("header", "field"),
    [
        ("nir", Field.NIR), ("NUM_SECU", Field.NIR), ("Numéro de sécurité sociale", Field.NIR),
        ("INS", Field.NIR), ("nss", Field.NIR), ("ssn", Field.NIR),
        ("email", Field.EMAIL), ("E-Mail", Field.EMAIL), ("Courriel", Field.EMAIL),
        ("patient.contact.mail", Field.EMAIL), ("adresse_mail", Field.EMAIL),
        ("nom", Field.LAST_NAME), ("Nom de naissance", Field.LAST_NAME), ("lastName", Field.LAST_NAME),
        ("SURNAME", Field.LAST_NAME), ("name.family", Field.LAST_NAME), ("Nom du patient", Field.LAST_NAME),
        ("prénom", Field.FIRST_NAME), ("first_name", Field.FIRST_NAME), ("name.given.0", Field.FIRST_NAME),
        ("date_naissance", Field.BIRTH_DATE), ("DDN", Field.BIRTH_DATE), ("dob", Field.BIRTH_DATE),
        ("birthDate", Field.BIRTH_DATE), ("Date of birth", Field.BIRTH_DATE), ("né le", Field.BIRTH_DATE),
        ("matricule", Field.STAFF_NUMBER), ("staff_id", Field.STAFF_NUMBER),
        ("employee.id", Field.STAFF_NUMBER), ("EmployeeNumber", Field.STAFF_NUMBER),
        ("name", Field.FULL_NAME), ("nom_prenom", Field.FULL_NAME),
        ("ville", None), ("date_admission", None), ("id", None), ("patient.id", None), ("telephone", None),
    ],
)  # fmt: skip
def test_header_field(header: str, field: Field | None) -> None:
    assert header_field(header) is field


def test_values_name_the_columns_a_header_does_not() -> None:
    sample = [
        {"a": "180037512345692", "b": "x@y.fr", "c": "07/03/1980", "d": "19800307", "e": "Lyon"}
    ] * 5
    cmap = resolve(["a", "b", "c", "d", "e"], sample, (), "dump.csv")
    assert cmap.as_json() == {
        "a": "nir",
        "b": "email",
        "c": "birth_date",
    }  # bare digits: not a date


def test_override_replaces_what_was_found() -> None:
    sample = [{"nir": "180037512345692", "NUM_ASSURE": "280037512345611", "Name": "Dupont"}]
    cmap = resolve(
        ["nir", "NUM_ASSURE", "Name"], sample, [parse_override("nir=num_assure")], "x.csv"
    )
    assert cmap.columns(Field.NIR) == ("NUM_ASSURE",) and cmap.columns(Field.FULL_NAME) == ("Name",)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("nir=NUM_SECU", (Field.NIR, "NUM_SECU")), ("last=NOM USAGE", (Field.LAST_NAME, "NOM USAGE")),
     ("birth-date=ddn", (Field.BIRTH_DATE, "ddn")), ("record_id=IPP", (Field.RECORD_ID, "IPP"))],
)  # fmt: skip
def test_parse_override(text: str, expected: tuple[Field, str]) -> None:
    assert parse_override(text) == expected


@pytest.mark.parametrize("text", ["nir", "nir=", "colour=x", "=x"])
def test_bad_override(text: str) -> None:
    with pytest.raises(LeakError, match="expected KIND=COLUMN"):
        parse_override(text)


def test_errors_name_the_file_and_columns() -> None:
    with pytest.raises(LeakError, match=r"dump\.csv: no column holds .*columns: ville, code"):
        resolve(["ville", "code"], [{"ville": "Lyon", "code": "69001"}], (), "dump.csv")
    with pytest.raises(LeakError, match=r"dump\.csv: --column names 'NUM_SECU'.*columns: nir"):
        resolve(["nir"], [], [(Field.NIR, "NUM_SECU")], "dump.csv")


def test_identify_orders_kinds_and_picks_the_subject() -> None:
    cmap = resolve(["nom", "prenom", "ddn", "email", "matricule", "nir"], [], (), "x")
    row = {"nom": "DUPONT Jean", "prenom": "Jean", "ddn": "07/03/1980", "email": "J@x.fr",
           "matricule": "007", "nir": ""}  # fmt: skip
    ident = identify(row, cmap)
    assert [str(k) for k, _ in ident.keys] == ["name_birth", "email", "staff_number"]
    assert ident.subject == (ident.keys[0][0], "adejnnoptu|1980-03-07")
    with_nir = identify(row | {"nir": "180037512345692"}, cmap)
    assert with_nir.subject is not None and with_nir.subject[1] == "1800375123456"
    assert identify({"prenom": "Jean", "ddn": "07/03/1980"}, cmap).keys == ()

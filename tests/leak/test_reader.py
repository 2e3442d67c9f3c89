"""Reading exports and dumps of any shape as rows of text."""

from __future__ import annotations

import gzip
import json
import zipfile
from pathlib import Path

import pytest

from hemostat.leak import LeakError
from hemostat.leak.reader import flatten, read_table


def rows(path: Path) -> list[dict[str, str] | None]:
    return list(read_table(path).rows)


@pytest.mark.parametrize("delimiter", [";", ",", "\t", "|"])
def test_csv_delimiters(tmp_path: Path, delimiter: str) -> None:
    path = tmp_path / "d.csv"
    path.write_text(
        delimiter.join(["nom", "prénom", "ddn"])
        + "\n"
        + delimiter.join(["Dupont", "Zoé", "01/02/1990"])
        + "\n"
    )
    table = read_table(path)
    assert table.columns == ("nom", "prénom", "ddn")
    assert list(table.rows) == [{"nom": "Dupont", "prénom": "Zoé", "ddn": "01/02/1990"}]


def test_csv_quotes_title_lines_repeated_header_and_ragged_rows(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text(
        "Export du 3 mars\n\n"
        'nom;adresse;email\n"Dupont";"3, rue; des Lilas\nLyon";a@b.fr\n'
        "nom;adresse;email\nMartin;;c@d.fr;extra\nShort\n",
        encoding="utf-8",
    )
    assert rows(path) == [
        {"nom": "Dupont", "adresse": "3, rue; des Lilas\nLyon", "email": "a@b.fr"},
        {"nom": "Martin", "adresse": "", "email": "c@d.fr"},
        {"nom": "Short"},
    ]


def test_csv_latin1_utf8_bom_utf16_and_gzip(tmp_path: Path) -> None:
    text = "nom;prénom\nLefèvre;Zoé\n"
    expected = [{"nom": "Lefèvre", "prénom": "Zoé"}]
    for name, data in (("cp1252.csv", text.encode("cp1252")), ("bom.csv", text.encode("utf-8-sig")),
                       ("utf16.csv", text.encode("utf-16")), ("z.csv.gz", gzip.compress(text.encode())),
                       ("crlf.csv", text.replace("\n", "\r\n").encode())):  # fmt: skip
        (tmp_path / name).write_bytes(data)
        assert rows(tmp_path / name) == expected, name


def test_headerless_csv_names_columns_by_position(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("Dupont,a@b.fr,180037512345692\nDupont,a@b.fr,180037512345692\n")
    table = read_table(path)
    assert table.columns == ("1", "2", "3") and len(list(table.rows)) == 2  # duplicates kept


def test_single_column_list_of_emails(tmp_path: Path) -> None:
    path = tmp_path / "d.txt"
    path.write_text("a@b.fr\nc@d.fr\n")
    assert rows(path) == [{"1": "a@b.fr"}, {"1": "c@d.fr"}]


def test_json_array_object_and_lines(tmp_path: Path) -> None:
    record = {
        "patient": {
            "name": {"family": "Dupont", "given": ["Jean", "Paul"]},
            "nir": 180037512345692.0,
            "ok": True,
        }
    }
    flat = {"patient.name.family": "Dupont", "patient.name.given.0": "Jean", "patient.name.given.1": "Paul",
            "patient.nir": "180037512345692", "patient.ok": "True"}  # fmt: skip
    (tmp_path / "a.json").write_text(json.dumps([record, record]))
    (tmp_path / "o.json").write_text(
        json.dumps({"meta": {"n": 2}, "results": [record, record]}, indent=2)
    )
    (tmp_path / "l.jsonl").write_text(
        f"{json.dumps(record)}\n\n{{broken\n{json.dumps(record)}\n[1]\n"
    )
    assert rows(tmp_path / "a.json") == [flat, flat]
    assert rows(tmp_path / "o.json") == [flat, flat]
    assert rows(tmp_path / "l.jsonl") == [flat, None, flat, None]
    (tmp_path / "cp.json").write_bytes('[{"nom": "Lefèvre"}]'.encode("cp1252"))
    assert rows(tmp_path / "cp.json") == [{"nom": "Lefèvre"}]
    assert read_table(tmp_path / "l.jsonl").format == "jsonl"


def test_flatten_keeps_nulls_as_empty() -> None:
    assert flatten({"a": None, "b": [{"c": 1}], "d": 1.5}) == {"a": "", "b.0.c": "1", "d": "1.5"}


def test_unreadable_inputs_name_the_file(tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_text("  \n")
    (tmp_path / "bad.json").write_text('[{"a": 1},')
    with zipfile.ZipFile(tmp_path / "dump.zip", "w") as z:
        z.writestr("x.csv", "a\n")
    for name, message in (("nope.csv", "no such file"), ("empty.csv", "empty file"),
                          ("bad.json", "not valid JSON"), ("dump.zip", "a zip archive")):  # fmt: skip
        with pytest.raises(LeakError, match=f"{name}: {message}"):
            read_table(tmp_path / name)
    with pytest.raises(LeakError, match="cannot read"):
        read_table(tmp_path)

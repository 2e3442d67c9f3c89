"""The native access JSON Lines (docs/formats/access.md), from small hand-written files in
tests/data/access/: every value checked after ingest against Python's own reading."""

from __future__ import annotations

import gzip
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from hemostat.errors import IngestError
from hemostat.ingest import access_jsonl, detect, ingest_file
from hemostat.schema import ACCESS_JSON_KEYS, Sample, Table
from hemostat.store import Store

DATA = Path(__file__).parents[1] / "data" / "access"
DOC = Path(__file__).parents[2] / "docs" / "formats" / "access.md"
ISO = "(expected ISO 8601 with offset or Z, or epoch seconds)"
ACTIONS = "(expected read|query|export|copy|login)"

BAD = [
    (1, f'bad ts "2024-03-04T09:00:00" {ISO}'),  # no offset: ambiguous
    (2, f'unknown action "delete" {ACTIONS}'),
    (3, "negative rows -3"),
    (4, 'missing key "bytes"'),
    (6, f'bad ts "yesterday" {ISO}'),
    (7, f"bad ts 1709540160000 {ISO}"),  # epoch milliseconds
    (9, "negative bytes -1"),
    (10, "bad rows 1.5 (expected a whole number or null)"),
    (11, 'bad object "patients" (expected a URI such as file:///srv/pacs/x.dcm)'),
    (12, 'bad client_ip "10.0.0.256" (expected an IPv4 or IPv6 address or null)'),
    (13, "bad host 42 (expected a string or null)"),
    (14, 'invalid JSON: {"ts": "2024-03-04T09:00:00Z", "host": "h", "user": "u", "pr'),
    (15, "expected a JSON object, got array"),
    (16, f'unknown action "READ" {ACTIONS}'),
    (17, "bytes out of range: 18446744073709551615"),
]


def _expected(path: Path) -> list[tuple[Any, ...]]:
    """The rows a file should give, read with the standard library alone."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            obj = json.loads(line)
            ts = obj["ts"]
            obj["ts"] = (datetime.fromtimestamp(ts, UTC) if isinstance(ts, int | float)
                         else datetime.fromisoformat(ts).astimezone(UTC))  # fmt: skip
            rows.append((*(obj[k] for k in ACCESS_JSON_KEYS), obj.get("pid"), "access"))
    return sorted(rows, key=repr)


def _stored(store: Store) -> list[tuple[Any, ...]]:
    cols = ", ".join(f'"{k}"' for k in (*ACCESS_JSON_KEYS, "pid", "source"))
    return sorted(store.con.execute(f"SELECT {cols} FROM access").fetchall(), key=repr)


def test_valid_file_round_trips(store: Store) -> None:
    path = DATA / "valid.jsonl"
    assert detect(path).id == "access_jsonl"
    report = ingest_file(store, path)
    assert (report.rows, report.bad_count) == ({Table.ACCESS: 6}, 0)
    assert _stored(store) == _expected(path)
    users = {row[2] for row in _stored(store)}
    assert "HOSP\\c.durand" in users  # JSON escapes and UTF-8 decoded
    assert "prestataire-éditeur" in users


def test_gzip_and_a_bom_give_the_same_rows(tmp_path: Path, store: Store) -> None:
    gz = tmp_path / "access.jsonl.gz"
    gz.write_bytes(gzip.compress(b"\xef\xbb\xbf" + (DATA / "valid.jsonl").read_bytes()))
    ingest_file(store, gz)
    assert _stored(store) == _expected(DATA / "valid.jsonl")


def test_bad_lines_are_named_and_the_rest_kept(store: Store) -> None:
    report = ingest_file(store, DATA / "bad.jsonl", "access_jsonl")
    assert [(e.line, e.message) for e in report.bad] == BAD
    assert report.bad_count == len(BAD)
    assert report.rows == {Table.ACCESS: 1}  # line 5
    assert str(report.bad[0]).endswith('bad.jsonl:1: bad ts "2024-03-04T09:00:00" ' + ISO)


def test_strict_refuses_the_file_and_stores_nothing(store: Store) -> None:
    with pytest.raises(IngestError, match=r"bad\.jsonl:1: bad ts .*--strict: file refused, 15"):
        ingest_file(store, DATA / "bad.jsonl", "access_jsonl", strict=True)
    assert store.counts() == type(store.counts())(flows=0, dns=0, access=0, files=0)


def test_line_numbers_hold_across_chunks(
    tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tiny chunks: lines split between chunks, blank and CRLF lines, undecodable bytes."""
    text = (DATA / "bad.jsonl").read_bytes() + (DATA / "valid.jsonl").read_bytes()
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(text + b'{"ts": 1, \xff}\n')
    monkeypatch.setattr(access_jsonl, "CHUNK_BYTES", 100)
    report = ingest_file(store, path, "access_jsonl")
    assert [(e.line, e.message) for e in report.bad][: len(BAD)] == BAD
    assert report.bad[-1].line == 17 + 7 + 1
    assert report.bad[-1].message.startswith('invalid JSON: {"ts": 1, \ufffd}')
    assert report.rows == {Table.ACCESS: 1 + 6}


@pytest.mark.parametrize(
    ("head", "sniffed"),
    [
        (b'\n{"ts": 1, "action": "read", "object": "file:///x"}\n', True),
        (b'\xef\xbb\xbf{"ts": 1, "action": "read", "object": "file:///x"}\n', True),  # BOM
        (b'{"ts": 1.5, "uid": "C1", "id.orig_h": "10.0.0.1", "action": "x"}\n', False),  # Zeek
        (b'{"timestamp": "2024-03-04T09:00:00Z", "event_type": "flow"}\n', False),  # Suricata
        (b"type=SYSCALL msg=audit(1700000000.100:100): arch=c000003e\n", False),
    ],
)
def test_sniff(head: bytes, sniffed: bool) -> None:
    assert access_jsonl.AccessJsonl().sniff(Sample("x.jsonl", head, gzip=False)) is sniffed


def test_the_documented_example_ingests(tmp_path: Path, store: Store) -> None:
    """docs/formats/access.md is a contract: its example lines must be valid."""
    blocks = re.findall(r"```json\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    example = tmp_path / "example.jsonl"
    example.write_text("".join(blocks), encoding="utf-8")
    report = ingest_file(store, example)
    assert report.bad == []
    assert report.rows[Table.ACCESS] == len(example.read_text().splitlines()) >= 3

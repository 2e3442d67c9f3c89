"""Reading an export or a dump file as rows of text, whatever its shape: CSV with any
delimiter, title lines, quotes, repeated headers or no header at all; a JSON array (or an
object holding one); JSON Lines. Detected by content; gzip is opened, UTF-8 (with or without
BOM), UTF-16 with BOM and Windows-1252 are decoded. Nested JSON keys are flattened with dots
(``patient.name.family``); a headerless CSV names its columns ``1``, ``2``, ...
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import chain, islice
from pathlib import Path
from typing import Any, BinaryIO, cast

import orjson

from hemostat.leak.columns import looks_like_identifier
from hemostat.leak.errors import LeakError

Row = dict[str, str]
SAMPLE_ROWS = 1000
_HEAD_BYTES = 1 << 20
_DELIMITERS = (";", ",", "\t", "|")


@dataclass(frozen=True, slots=True)
class Table:
    """Rows of text under named columns; ``rows`` yields every row once (the sample
    included) and None for a row that cannot be read (a broken JSON line)."""

    where: str
    format: str
    columns: tuple[str, ...]
    sample: tuple[Row, ...]
    rows: Iterator[Row | None]


def read_table(path: Path) -> Table:
    """Open ``path`` as a table; LeakError if it is missing, empty or not a table."""
    head = _head(path)
    encoding = _encoding(head)
    text = head.decode(encoding, errors="replace").lstrip("\ufeff")
    start = text.lstrip()[:1]
    if not start:
        raise LeakError(f"{path}: empty file")
    if start == "[" or (start == "{" and not _first_line_is_json(text)):
        return _with_sample(path, "json", _json_rows(path, encoding))
    if start == "{":
        return _with_sample(path, "jsonl", _jsonl_rows(path, encoding))
    return _csv_table(path, encoding, text)


def _open(path: Path) -> BinaryIO:
    try:
        with path.open("rb") as probe:
            magic = probe.read(4)
        if magic == b"PK\x03\x04":
            raise LeakError(f"{path}: a zip archive; extract the files and give them one by one")
        if magic[:2] == b"\x1f\x8b":
            return cast(BinaryIO, gzip.GzipFile(path, "rb"))
        return path.open("rb")
    except FileNotFoundError:
        raise LeakError(f"{path}: no such file") from None
    except OSError as exc:
        raise LeakError(f"{path}: cannot read ({exc.strerror or exc})") from None


def _head(path: Path) -> bytes:
    with _open(path) as f:
        try:
            return f.read(_HEAD_BYTES)
        except (OSError, EOFError) as exc:
            raise LeakError(f"{path}: cannot read ({exc})") from None


def _encoding(head: bytes) -> str:
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3 or exc.reason != "unexpected end of data":
            return "cp1252"
    return "utf-8-sig"


def _text_lines(path: Path, encoding: str) -> Iterator[str]:
    with _open(path) as raw, io.TextIOWrapper(raw, encoding, errors="replace", newline="") as f:
        for line in f:
            yield line.replace("\0", "")


def _first_line_is_json(text: str) -> bool:
    """JSON Lines: the first line is a whole object and another object line follows."""
    lines = [line for line in text.splitlines() if line.strip()][:2]
    try:
        first = orjson.loads(lines[0])
    except orjson.JSONDecodeError:
        return False
    return isinstance(first, dict) and len(lines) == 2 and lines[1].lstrip().startswith("{")


def _with_sample(path: Path, fmt: str, rows: Iterator[Row | None]) -> Table:
    sample = list(islice(rows, SAMPLE_ROWS))
    columns = dict.fromkeys(k for row in sample if row for k in row)
    kept = tuple(row for row in sample if row is not None)
    return Table(str(path), fmt, tuple(columns), kept, chain(sample, rows))


# ---- JSON -------------------------------------------------------------------------------


def _json_rows(path: Path, encoding: str) -> Iterator[Row | None]:
    with _open(path) as f:
        try:
            document = orjson.loads(f.read().decode(encoding, errors="replace"))
        except orjson.JSONDecodeError as exc:
            raise LeakError(f"{path}: not valid JSON ({exc})") from None
    for item in _records(document):
        yield flatten(item) if isinstance(item, dict) else {"value": _text(item)}


def _jsonl_rows(path: Path, encoding: str) -> Iterator[Row | None]:
    for line in _text_lines(path, encoding):
        if not line.strip():
            continue
        try:
            item = orjson.loads(line)
        except orjson.JSONDecodeError:
            yield None
            continue
        yield flatten(item) if isinstance(item, dict) else None


def _records(document: Any) -> list[Any]:
    """The rows of a JSON document: an array, or the longest array of objects in an object."""
    if isinstance(document, list):
        return document
    if isinstance(document, dict):
        arrays = [v for v in document.values() if isinstance(v, list)]
        arrays += [
            w
            for v in document.values()
            if isinstance(v, dict)
            for w in v.values()
            if isinstance(w, list)
        ]
        return max(arrays, key=len) if arrays else [document]
    return [document]


def flatten(item: dict[str, Any]) -> Row:
    """``{"a": {"b": 1}, "c": [x, y]}`` -> ``{"a.b": "1", "c.0": "x", "c.1": "y"}``."""
    out: Row = {}

    def walk(value: Any, key: str) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, f"{key}.{k}" if key else str(k))
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(v, f"{key}.{i}")
        else:
            out[key] = _text(value)

    walk(item, "")
    return out


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))  # 180037512345678.0 is a NIR a spreadsheet turned into a float
    return str(value)


# ---- CSV --------------------------------------------------------------------------------


def _csv_table(path: Path, encoding: str, head: str) -> Table:
    delimiter = _delimiter(head)
    records = _csv_records(path, encoding, delimiter)
    first = list(islice(records, 20))
    width = _usual_width([len(r) for r in first if any(c.strip() for c in r)])
    at = next((i for i, r in enumerate(first) if len(r) == width), len(first))
    if at == len(first):
        raise LeakError(f"{path}: no rows")
    header: list[str] | None = first[at]
    if header and any(looks_like_identifier(cell) for cell in header):
        header, columns, rest = None, tuple(str(i + 1) for i in range(width)), first[at:]
    else:
        columns, rest = _column_names(first[at]), first[at + 1 :]
    rows = _csv_rows(chain(rest, records), columns, header)
    return _with_sample(path, "csv", rows)


def _delimiter(head: str) -> str:
    """The delimiter that cuts the first records into the most regular widths (; first)."""

    def score(delimiter: str) -> tuple[bool, float, int]:
        rows = list(islice(csv.reader(io.StringIO(head), delimiter=delimiter), 50))
        rows = rows[:-1] if len(rows) > 2 else rows  # the last one may be cut short
        widths = [len(r) for r in rows if any(c.strip() for c in r)] or [1]
        width = _usual_width(widths)
        return width > 1, widths.count(width) / len(widths), width

    return max(_DELIMITERS, key=score)


def _usual_width(widths: list[int]) -> int:
    """The most common width; on a tie, the one seen first (a header before ragged rows)."""
    return max(dict.fromkeys(widths), key=widths.count, default=0)


def _csv_records(path: Path, encoding: str, delimiter: str) -> Iterator[list[str]]:
    reader = csv.reader(_text_lines(path, encoding), delimiter=delimiter)
    try:
        yield from reader
    except csv.Error as exc:
        raise LeakError(f"{path}:{reader.line_num}: unreadable CSV ({exc})") from None


def _column_names(header: list[str]) -> tuple[str, ...]:
    names: list[str] = []
    for i, cell in enumerate(header):
        name = cell.strip() or str(i + 1)
        names.append(name if name not in names else f"{name}.{i + 1}")
    return tuple(names)


def _csv_rows(
    records: Iterator[list[str]], columns: tuple[str, ...], header: list[str] | None
) -> Iterator[Row | None]:
    for record in records:
        if not any(c.strip() for c in record) or record == header:
            continue  # blank line, or the header repeated by concatenated exports
        yield dict(zip(columns, record, strict=False))

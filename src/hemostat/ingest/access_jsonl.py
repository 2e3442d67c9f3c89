"""The native access JSON Lines (DESIGN §4, docs/formats/access.md): one data-access event
per line, with all the keys of ``ACCESS_JSON_KEYS``.

Every check and conversion is one SQL expression run by DuckDB, over chunks of lines that
pyarrow cuts and numbers (so each bad line is named with its number, field and value, and
the good ones are kept). The SQL runs on a side cursor: a failing statement there cannot
abort the runner's transaction. Measured on 1M lines (docs/formats/access.md): 3-4x faster
than ``orjson`` per line into ``Columns``, and faster than a ``read_ndjson_objects`` scan
validated before a second one appends (which would still need this pass to number bad lines).

Unknown extra keys are ignored (forward compatibility), except ``pid``: an integer there fills
the ``pid`` column.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, ClassVar

import duckdb
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from hemostat.ingest.reader import GZIP_MAGIC, Log, Reader
from hemostat.schema import ACCESS_JSON_KEYS, Action, Sample, Table

#: bytes checked together (about 150,000 lines of 200 bytes)
CHUNK_BYTES = 32 * 1024 * 1024

_KEYS = (*ACCESS_JSON_KEYS, "pid")  # pid: optional extension
_ACTIONS = "|".join(Action)
_ISO = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}(:?\d{2})?)$"
_URI = r"^[A-Za-z][A-Za-z0-9+.\-]*://"
_IPV4 = r"^((25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$"
_IPV6 = r"^[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*$"
_MAX_EPOCH = 10_000_000_000  # year 2286: larger numbers are milliseconds by mistake
_INTS = "('UBIGINT', 'BIGINT')"
_BOM = b"\xef\xbb\xbf"
_ACTION_LIST = ", ".join(f"'{a}'" for a in Action)
#: the access columns a line gives (the store fills the others)
_OUT = ", ".join(
    ("ts", "host", '"user"', "process", "action", "object", '"rows"', "bytes", "client_ip",
     "'access' AS source", "pid")
)  # fmt: skip


def _s(key: str) -> str:
    """The string value of ``key`` (NULL when it is not a JSON string)."""
    return f"CASE WHEN t_{key} = 'VARCHAR' THEN json_extract_string(j_{key}, '$') END"


def _int(key: str) -> str:
    return f"CASE WHEN t_{key} IN {_INTS} THEN try_cast(j_{key}::VARCHAR AS BIGINT) END"


def _ts() -> str:
    number = "try_cast(j_ts::VARCHAR AS DOUBLE)"
    return f"""CASE
        WHEN t_ts = 'VARCHAR' AND regexp_full_match({_s("ts")}, '{_ISO}')
            THEN try_cast({_s("ts")} AS TIMESTAMPTZ)
        WHEN t_ts IN ('UBIGINT', 'BIGINT', 'DOUBLE') AND {number} >= 0
            AND {number} < {_MAX_EPOCH} THEN try(to_timestamp({number}))
    END"""


def _bad(key: str, expected: str) -> str:
    return f"'bad {key} ' || left(j_{key}::VARCHAR, 60) || ' (expected {expected})'"


def _problem() -> str:
    """The first thing wrong with a line, naming the field and its value; NULL when fine."""
    when = [
        ("NOT ok", "'invalid JSON: ' || left(trim(line), 60)"),
        ("kind <> 'OBJECT'", "'expected a JSON object, got ' || lower(kind)"),
        *((f"t_{k} IS NULL", f"'missing key \"{k}\"'") for k in ACCESS_JSON_KEYS),
        ("ts IS NULL", _bad("ts", "ISO 8601 with offset or Z, or epoch seconds")),
        (f"action IS NULL OR action NOT IN ({_ACTION_LIST})",
         f"'unknown action ' || left(j_action::VARCHAR, 60) || ' (expected {_ACTIONS})'"),
        (f"NOT coalesce(regexp_matches(object, '{_URI}'), false)",
         _bad("object", "a URI such as file:///srv/pacs/x.dcm")),
        *((f"t_{k} NOT IN ('VARCHAR', 'NULL')", _bad(k, "a string or null"))
          for k in ("host", "user", "process", "client_ip")),
        (f"NOT (regexp_matches(client_ip, '{_IPV4}') OR regexp_matches(client_ip, '{_IPV6}'))",
         _bad("client_ip", "an IPv4 or IPv6 address or null")),
        *(w for k in ("rows", "bytes", "pid") for w in _int_problems(k)),
    ]  # fmt: skip
    return "CASE " + " ".join(f"WHEN {c} THEN {m}" for c, m in when) + " END"


def _int_problems(key: str) -> list[tuple[str, str]]:
    return [
        (f"t_{key} NOT IN ('UBIGINT', 'BIGINT', 'NULL')", _bad(key, "a whole number or null")),
        (f"t_{key} = 'BIGINT'", f"'negative {key} ' || j_{key}::VARCHAR"),
        (f"t_{key} = 'UBIGINT' AND {key} IS NULL", f"'{key} out of range: ' || j_{key}::VARCHAR"),
    ]


def _checked(source: str) -> str:
    """Each line of ``source`` (columns ``lineno``, ``line``) as canonical access columns,
    with ``lineno`` and ``problem``."""
    paths = ", ".join(f"'$.{k}'" for k in _KEYS)
    parts = ", ".join(
        f"v[{i}] AS j_{k}, json_type(v[{i}]) AS t_{k}" for i, k in enumerate(_KEYS, 1)
    )
    typed = ", ".join([f"{_ts()} AS ts", *(f"{_s(k)} AS {k}" for k in (
        "host", "user", "process", "action", "object", "client_ip")),
        *(f"{_int(k)} AS {k}" for k in ("rows", "bytes", "pid"))])  # fmt: skip
    return f"""
        WITH raw AS (
            SELECT lineno, line, ok, json_type(doc) AS kind, json_extract(doc, [{paths}]) AS v
            FROM (SELECT lineno, line, json_valid(line) AS ok,
                         CASE WHEN json_valid(line) THEN line END AS doc FROM {source})),
        parts AS (SELECT lineno, line, ok, kind, {parts} FROM raw),
        typed AS (SELECT *, {typed} FROM parts)
        SELECT lineno, {_problem()} AS problem, {_OUT} FROM typed
    """


class AccessJsonl(Reader):
    id: ClassVar[str] = "access_jsonl"
    description: ClassVar[str] = "hemostat native access JSON Lines (data-access events)"
    tables: ClassVar[tuple[Table, ...]] = (Table.ACCESS,)

    def sniff(self, sample: Sample) -> bool:
        for line in sample.head.removeprefix(_BOM).splitlines():
            if line.strip():
                try:
                    obj = orjson.loads(line)
                except orjson.JSONDecodeError:
                    return False
                return isinstance(obj, dict) and {"ts", "action", "object"} <= obj.keys()
        return False

    def read(
        self, path: Path, con: duckdb.DuckDBPyConnection, log: Log
    ) -> Iterator[tuple[Table, Any]]:
        side = con.cursor()  # a failing statement here cannot abort the runner's transaction
        try:
            for chunk in _chunks(path):
                good = _check(side, chunk, log)
                if good.num_rows:
                    yield Table.ACCESS, good
        finally:
            side.close()


def _check(side: duckdb.DuckDBPyConnection, chunk: pa.Table, log: Log) -> pa.Table:
    """The good lines of ``chunk`` as access rows; each bad one is reported to ``log``."""
    side.register("_access_chunk", chunk)
    try:
        checked = side.sql(_checked("_access_chunk") + " ORDER BY lineno").to_arrow_table()
    finally:
        side.unregister("_access_chunk")
    problems = checked.column("problem")
    if problems.null_count < len(problems):
        bad = checked.filter(problems.is_valid())
        for lineno, problem in zip(bad.column("lineno").to_pylist(),
                                   bad.column("problem").to_pylist(), strict=True):  # fmt: skip
            log.bad_line(lineno, problem)
    return checked.filter(problems.is_null()).drop_columns(["lineno", "problem"])


def _chunks(path: Path) -> Iterator[pa.Table]:
    """``(lineno, line)`` of the non-blank lines, a few MB at a time."""
    first = 1
    with _open_binary(path) as fh:
        while block := fh.read(CHUNK_BYTES):
            block += fh.readline()  # finish the last line
            if first == 1:
                block = block.removeprefix(_BOM)  # as Windows tools write
            lines = _lines(block)
            numbers = pa.array(np.arange(first, first + len(lines), dtype=np.int64))
            first += len(lines) - (not block.endswith(b"\n"))
            keep = pc.invert(pc.match_substring_regex(lines, r"^\s*$"))
            lines = pc.utf8_rtrim(lines, characters="\r\n")
            # arrays, not the table, filtered: Table.filter's first call costs ~1 s
            yield pa.table({"lineno": numbers.filter(keep), "line": lines.filter(keep)})


def _lines(block: bytes) -> pa.Array:
    """The lines of ``block``, each with its ``\\n``, without copying: Arrow offsets at
    each newline (``split_pattern`` on one 32 MB value took seconds)."""
    ends = np.flatnonzero(np.frombuffer(block, np.uint8) == ord("\n")) + 1
    last = [] if block.endswith(b"\n") else [len(block)]
    offsets = np.concatenate(([0], ends, last)).astype(np.int32)
    whole = pa.Array.from_buffers(
        pa.binary(), len(offsets) - 1, [None, pa.py_buffer(offsets), pa.py_buffer(block)]
    )
    try:
        return whole.cast(pa.string())
    except pa.ArrowInvalid:  # undecodable bytes: replaced, as by open_text()
        return _lines(block.decode("utf-8", "replace").encode())


def _open_binary(path: Path) -> IO[bytes]:
    with path.open("rb") as fh:
        gz = fh.read(2) == GZIP_MAGIC
    return gzip.open(path, "rb") if gz else path.open("rb")  # type: ignore[return-value]

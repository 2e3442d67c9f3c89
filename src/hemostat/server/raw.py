"""Raw log chunks in a batch (sensor hosts ship Zeek, Suricata, auditd... lines as they grow):
each chunk is parsed on its own by the ingest reader of its format, into Arrow tables.

A chunk is written to a scratch file and read by the reader exactly as ``hemostat ingest``
would read a file (on a scratch in-memory DuckDB connection, not the store's). Bad lines are
skipped and counted, as on file ingest; a chunk its reader refuses as a whole is a 422.
"""

from __future__ import annotations

import logging
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import duckdb
import pyarrow as pa

from hemostat.errors import IngestError
from hemostat.schema import Table
from hemostat.server import Refused

log = logging.getLogger(__name__)

#: readers of binary inputs, which cannot come as lines
BINARY = frozenset({"pcap", "netflow", "netflow_pcap", "nfcapd"})
_local = threading.local()


@dataclass(frozen=True, slots=True)
class Parsed:
    """What one chunk gave: parts of canonical tables, and the lines skipped."""

    parts: tuple[tuple[Table, pa.Table], ...]
    lines: int
    bad_lines: int


def formats() -> list[str]:
    from hemostat.ingest import READERS

    return [name for name in READERS if name not in BINARY]


def parse(chunk: Any, where: str) -> Parsed:
    """One ``raw`` chunk ``{"format", "path", "first_line", "lines"}`` through its reader."""
    fmt, path, first, lines = _fields(chunk, where)
    from hemostat.ingest import READERS
    from hemostat.ingest.reader import Log

    reader = READERS[fmt]()
    with tempfile.TemporaryDirectory(prefix="hemostat-raw-") as tmp:
        file = Path(tmp) / (PurePosixPath(path).name or "chunk.log")
        with file.open("w", encoding="utf-8", newline="") as fh:
            fh.writelines(line if line.endswith("\n") else line + "\n" for line in lines)
        found = Log(file)
        con = _scratch()
        try:
            parts = tuple((t, _arrow(data)) for t, data in reader.read(file, con, found))
        except IngestError as exc:
            line = f" line {first + exc.line - 1}" if exc.line else ""
            raise Refused(422, f"{path}{line}: {exc.message}", where) from None
        except duckdb.Error as exc:
            raise Refused(422, f"{path}: cannot read: {str(exc).splitlines()[0]}", where) from None
    if found.bad_count:
        log.info("raw chunk %s from line %d: %d bad line(s) skipped", path, first, found.bad_count)
    return Parsed(parts, len(lines), found.bad_count)


def _fields(chunk: Any, where: str) -> tuple[str, str, int, list[str]]:
    if not isinstance(chunk, dict):
        raise Refused(422, "expected an object with format, path, first_line, lines", where)
    unknown = set(chunk) - {"format", "path", "first_line", "lines"}
    if unknown:
        raise Refused(422, "unknown key", f"{where}.{sorted(unknown)[0]}")
    fmt, path, first, lines = (chunk.get(k) for k in ("format", "path", "first_line", "lines"))
    if fmt not in formats():
        raise Refused(422, f"unknown format {fmt!r}; known: {', '.join(formats())}",
                      f"{where}.format")  # fmt: skip
    if not isinstance(path, str) or not path:
        raise Refused(422, "expected the log file's path", f"{where}.path")
    if first is None:
        first = 1
    if not isinstance(first, int) or isinstance(first, bool) or first < 1:
        raise Refused(422, "expected a line number (1 or more)", f"{where}.first_line")
    if not isinstance(lines, list) or not all(isinstance(line, str) for line in lines):
        raise Refused(422, "expected a list of strings", f"{where}.lines")
    return fmt, path, first, lines


def _scratch() -> duckdb.DuckDBPyConnection:
    """This thread's in-memory DuckDB connection for readers that build relations."""
    con: duckdb.DuckDBPyConnection | None = getattr(_local, "con", None)
    if con is None:
        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        con.execute("SET enable_progress_bar = false")
        con.execute("SET threads = 1")
        _local.con = con
    return con


def _arrow(data: Any) -> pa.Table:
    """A reader's part (Arrow table or reader, or a relation over the scratch file) read
    now, before the file goes."""
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatchReader):
        return data.read_all()
    if isinstance(data, duckdb.DuckDBPyRelation):
        return data.to_arrow_table()
    raise TypeError(f"unexpected reader output {type(data).__name__}")

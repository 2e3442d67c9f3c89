"""What every reader shares: the ``Reader`` base, the per-file ``Log`` of bad lines, and
the helpers to open (possibly gzipped) inputs and to run the external tools some need.

A reader turns one file into parts of canonical tables: it yields ``(Table, data)`` where
``data`` is an Arrow table / record-batch reader, or a DuckDB relation built on the
connection it was given. It never writes: the runner appends, inside one transaction.
"""

from __future__ import annotations

import contextlib
import gzip
import re
import shutil
import subprocess
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, ClassVar

import duckdb
import orjson
import pyarrow as pa

from hemostat.errors import IngestError
from hemostat.schema import SCHEMAS, Sample, Table

GZIP_MAGIC = b"\x1f\x8b"
SAMPLE_BYTES = 64 * 1024

#: how many bad lines a log keeps word for word (the rest are only counted)
KEEP_BAD = 20


@dataclass
class Log:
    """What went wrong or was left out while reading one file."""

    path: Path
    bad_count: int = 0
    bad: list[IngestError] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)

    def bad_line(self, line: int | None, message: str) -> None:
        self.bad_count += 1
        if len(self.bad) < KEEP_BAD:
            self.bad.append(IngestError(self.path, line, message))

    def skip(self, reason: str, n: int = 1) -> None:
        """Rows that are valid but not for hemostat (e.g. Suricata ``alert`` events)."""
        self.skipped[reason] += n


class Reader:
    """Base of all readers. Subclasses set ``id`` and ``description`` and implement both methods."""

    id: ClassVar[str]
    description: ClassVar[str]
    #: tables this reader can produce
    tables: ClassVar[tuple[Table, ...]]

    def sniff(self, head: Sample) -> bool:
        """True when ``head`` (the first bytes of a file) is in this reader's format."""
        raise NotImplementedError

    def read(
        self, path: Path, con: duckdb.DuckDBPyConnection, log: Log
    ) -> Iterator[tuple[Table, Any]]:
        """Yield parts of canonical tables; record bad lines in ``log``; raise ``IngestError``
        when the file as a whole cannot be read."""
        raise NotImplementedError


def sample(path: Path, size: int = SAMPLE_BYTES) -> Sample:
    """The first ``size`` bytes of ``path``, decompressed when it is gzip."""
    with path.open("rb") as fh:
        head = fh.read(size)
    if head[:2] != GZIP_MAGIC:
        return Sample(path.name, head, gzip=False)
    try:
        with gzip.open(path, "rb") as gz:
            return Sample(path.name, gz.read(size), gzip=True)
    except (OSError, EOFError) as exc:
        # a truncated gzip still yields its first bytes; an invalid one yields nothing
        raise IngestError(path, None, f"cannot decompress gzip: {exc}") from exc


def open_text(path: Path) -> IO[str]:
    """Open a text input, transparently decompressing gzip; undecodable bytes are replaced."""
    with path.open("rb") as fh:
        gz = fh.read(2) == GZIP_MAGIC
    if gz:
        return gzip.open(path, "rt", encoding="utf-8", errors="replace", newline="")
    return path.open("r", encoding="utf-8", errors="replace", newline="")


def require_tool(name: str, package: str) -> str:
    """Absolute path of an external tool, or an error saying how to install it."""
    found = shutil.which(name)
    if found is None:
        raise IngestError(
            Path(name), None, f"{name} not found on PATH; install it with apt-get install {package}"
        )
    return found


def run_tool(argv: list[str], path: Path, timeout: float = 3600, out: Path | None = None) -> str:
    """Run an external converter on ``path``; its failure becomes an ``IngestError``.

    Returns what the tool printed; with ``out``, its output streams to that file instead
    (large outputs never sit in memory) and what it printed on stderr is returned.
    """
    try:
        with out.open("wb") if out else contextlib.nullcontext() as sink:
            done = subprocess.run(
                argv, stdout=sink or subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                timeout=timeout, check=False,
            )  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        raise IngestError(path, None, f"{Path(argv[0]).name} timed out after {timeout}s") from exc
    if done.returncode != 0:
        detail = (done.stderr or done.stdout or "").strip().splitlines()
        raise IngestError(
            path, None, f"{Path(argv[0]).name} failed: {detail[-1] if detail else done.returncode}"
        )
    return done.stderr if out else done.stdout


def json_lines(path: Path, log: Log) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` for each JSON object line; bad lines go to ``log``."""
    with open_text(path) as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                log.bad_line(lineno, f"invalid JSON ({exc.msg}): {line[:60].strip()!r}")
                continue
            if not isinstance(obj, dict):
                log.bad_line(lineno, f"expected a JSON object, got {type(obj).__name__}")
                continue
            yield lineno, obj


class Columns:
    """Rows gathered column by column, then turned into one Arrow table of a canonical
    schema (for readers that parse in Python; DuckDB-backed readers do not need it)."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self.schema = SCHEMAS[table]
        self.data: dict[str, list[Any]] = {f.name: [] for f in self.schema}

    def add(self, **values: Any) -> None:
        for name, column in self.data.items():
            column.append(values.get(name))

    def __len__(self) -> int:
        return len(self.data["ts"])

    def arrow(self) -> pa.Table:
        return pa.table(
            {f.name: pa.array(self.data[f.name], type=f.type) for f in self.schema},
            schema=self.schema,
        )


#: ``read_csv`` options that set rejected rows aside for :func:`take_rejects`
REJECTS: dict[str, Any] = {
    "rejects_table": "_hemostat_rejects",
    "rejects_scan": "_hemostat_reject_scans",
}


def take_rejects(con: duckdb.DuckDBPyConnection) -> list[tuple[int, str, str, str]]:
    """Rows a ``read_csv`` with :data:`REJECTS` set aside, once the relation has been read:
    ``(line, error type, message, text)`` per line, in order. The reject tables are dropped."""
    rows = con.execute(
        "SELECT line, any_value(error_type), any_value(error_message), any_value(csv_line) "
        f"FROM {REJECTS['rejects_table']} GROUP BY line ORDER BY line"
    ).fetchall()
    for table in REJECTS.values():
        con.execute(f"DROP TABLE IF EXISTS {table}")
    return [(int(line), kind, message, text) for line, kind, message, text in rows]


def read_error(path: Path, exc: duckdb.Error) -> IngestError:
    """A DuckDB error met while reading ``path`` (often only when the rows are appended: a
    relation over a file is read lazily), as one line naming the file, and the line of the
    file when DuckDB gives it."""
    first = str(exc).split("\n", 1)[0].replace(f": {path}", "").strip()
    line = re.search(r"\bLine: (\d+)", str(exc))
    hint = "; the gzip file is truncated or corrupt" if "GZIP" in first.upper() else ""
    return IngestError(path, int(line.group(1)) if line else None, f"cannot read: {first}{hint}")


def reject_reason(error_type: str, message: str) -> str:
    """A short reason for a rejected row: ``truncated line`` or DuckDB's first line."""
    return "truncated line" if error_type == "MISSING COLUMNS" else message.split("\n")[0]


def port(value: Any) -> int | None:
    """A port number from JSON, checked to be 0 to 65535 (``ValueError`` otherwise)."""
    if value is None:
        return None
    number = int(value)
    if not 0 <= number <= 65535:
        raise ValueError(f"port out of range {number}")
    return number

"""PostgreSQL server logs: reads of tables, from pgaudit or from logged statements.

Formats (recognised by content): ``stderr`` logs with a ``log_line_prefix`` that starts with
the time (``%m`` or ``%t``; e.g. Debian's ``'%m [%p] %q%u@%d '``, or ``'%t:%r:%u@%d:[%p]:'``);
the pid (``[%p]``), ``user@db``, ``user=``/``db=``/``app=``/``client=`` and the client
address (``%r``/``%h``) are taken from the prefix wherever they are. Continuation lines
of multi-line statements start with a tab. ``csvlog`` and ``jsonlog`` (PostgreSQL 15) are
read by their columns.

Messages that become ``access`` rows (object ``postgresql://DB/schema.table``):

- pgaudit ``AUDIT: SESSION|OBJECT,stmt,substmt,READ,command,type,schema.table,statement,
  parameter[,rows]``: one row per relation read (``pgaudit.log_relation`` names each; without
  it the relations are taken from the statement); ``rows`` when ``pgaudit.log_rows`` is on.
  The SESSION and OBJECT lines of one relation give one row. Other classes (WRITE, DDL,
  ROLE, ...) are skipped.
- ``statement:`` (``log_statement``), ``execute <name>:`` and ``duration: ... statement:``
  (``log_min_duration_statement``): one row per table the statement reads. When the same
  backend's statement is also audited by pgaudit, the pgaudit lines win (they name what the
  server actually read).

The action is ``export`` for ``COPY ... TO`` (``\\copy ... to`` included), ``copy`` when the
rows land in another table (``CREATE TABLE ... AS``, ``SELECT ... INTO``, ``INSERT ...
SELECT``), else ``query``. Unqualified tables are taken to be in ``public``; ``pg_catalog``
and ``information_schema`` are not data. The process is the client's ``application_name``
when the log has it, else ``postgres``.
"""

from __future__ import annotations

import csv
import io
import ipaddress
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import IO, Any, ClassVar

import duckdb
import orjson

from hemostat.ingest.pgsql import catalog, qualified, reads
from hemostat.ingest.reader import Columns, Log, Reader, open_text
from hemostat.schema import Action, Sample, Table

SOURCE = "pglog"
BATCH_ROWS = 100_000

_TS = (
    r"(?P<ts>\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:\.\d+)?)"
    r"(?: ?(?P<tz>[A-Za-z]{1,5}|[+-]\d\d(?::?\d\d)?))?"
)
_SEVERITY = (
    r"(?P<sev>LOG|NOTICE|WARNING|ERROR|FATAL|PANIC|INFO|DEBUG[1-5]?|DETAIL|HINT|CONTEXT"
    r"|STATEMENT|QUERY|LOCATION)"
)
_STDERR = re.compile(
    rf"(?:{_TS}|(?P<epoch>\d{{10}}\.\d{{3}}))(?P<prefix>.*?)\b{_SEVERITY}:  (?P<msg>.*)"
)
_CSV = re.compile(rf"{_TS},")
_PID = re.compile(r"\[(\d+)(?:-\d+)?\]")
_USER_DB = re.compile(r"(?:^|[\s:\[,])([A-Za-z_][\w$.-]*)@([A-Za-z_][\w$.-]*)(?=[\s:\],]|$)")
_KEYS = re.compile(r"\b(user|db|database|app|client|host|remote)=([^,\s\]]*)")
_ADDRESS = re.compile(r"([0-9A-Fa-f:.]+)\(\d+\)")  # %r: host(port)
_STATEMENT = re.compile(r"(?:duration: [\d.]+ ms  )?(?:statement|execute [^:]*): (?P<sql>.*)", re.S)
_ZONES = {"UTC": 0, "UT": 0, "GMT": 0, "Z": 0, "WET": 0, "WEST": 1, "BST": 1, "CET": 1,
          "CEST": 2, "EET": 2, "EEST": 3, "MSK": 3, "EST": -5, "EDT": -4, "CST": -6,
          "CDT": -5, "MST": -7, "MDT": -6, "PST": -8, "PDT": -7, "JST": 9}  # fmt: skip
#: csvlog columns (PostgreSQL 13 to 17 share these first ones)
_C_TIME, _C_USER, _C_DB, _C_PID, _C_FROM, _C_SEV, _C_MSG, _C_APP = 0, 1, 2, 3, 4, 11, 13, 22


@dataclass(frozen=True, slots=True)
class _Record:
    line: int
    ts: datetime
    severity: str
    message: str
    pid: int | None = None
    user: str | None = None
    db: str | None = None
    client_ip: str | None = None
    app: str | None = None


class Pglog(Reader):
    id: ClassVar[str] = "pglog"
    description: ClassVar[str] = (
        "PostgreSQL logs: pgaudit and logged statements (stderr, csv, json)"
    )
    tables: ClassVar[tuple[Table, ...]] = (Table.ACCESS,)

    def sniff(self, sample: Sample) -> bool:
        text = sample.head.decode("utf-8", "replace")
        first = next((line for line in text.splitlines() if line.strip()), "")
        if first.startswith("{"):
            return '"error_severity"' in first and '"timestamp"' in first
        m = _CSV.match(first)
        if m:  # csvlog: log_time has a zone; error_severity and sql_state in their columns
            try:
                cells = next(csv.reader(io.StringIO(text)), [])
            except csv.Error:
                return False
            return (
                m["tz"] is not None
                and len(cells) > _C_MSG
                and (
                    re.fullmatch(_SEVERITY, cells[_C_SEV]) is not None
                    and re.fullmatch(r"[0-9A-Z]{5}", cells[_C_SEV + 1]) is not None
                )
            )
        m = _STDERR.match(first)
        return m is not None and (m["ts"] is not None or m["epoch"] is not None)

    def read(
        self, path: Path, con: duckdb.DuckDBPyConnection, log: Log
    ) -> Iterator[tuple[Table, Any]]:
        cols = Columns(Table.ACCESS)
        rows = _Rows(cols)
        for record in _records(path, log):
            reason = rows.add(record)
            if reason:
                log.skip(reason)
            if len(cols) >= BATCH_ROWS:
                yield Table.ACCESS, cols.arrow()
                cols = rows.cols = Columns(Table.ACCESS)
        rows.flush()
        if len(cols):
            yield Table.ACCESS, cols.arrow()


# -- records ---------------------------------------------------------------------------------


def _records(path: Path, log: Log) -> Iterator[_Record]:
    with open_text(path) as fh:
        first = fh.readline()
        fh.seek(0)
        if first.startswith("{"):
            yield from _json_records(fh, log)
        elif _CSV.match(first):
            yield from _csv_records(fh, log)
        else:
            yield from _stderr_records(fh, log)


def _stderr_records(fh: IO[str], log: Log) -> Iterator[_Record]:
    head: tuple[int, re.Match[str]] | None = None
    parts: list[str] = []
    for lineno, line in enumerate(fh, 1):
        line = line.rstrip("\r\n")
        if line.startswith("\t") and head is not None:
            parts.append(line[1:])
            continue
        if head is not None:
            yield from _stderr_record(head[0], head[1], "\n".join(parts), log)
            head, parts = None, []
        m = _STDERR.match(line)
        if m is not None:
            head, parts = (lineno, m), [m["msg"]]
        elif line.startswith("\t"):
            log.skip("continuation of a record before the file's start")
        elif line.strip():
            log.bad_line(lineno, f"not a PostgreSQL log line (no time prefix): {line[:60]!r}")
    if head is not None:
        yield from _stderr_record(head[0], head[1], "\n".join(parts), log)


def _stderr_record(lineno: int, m: re.Match[str], message: str, log: Log) -> Iterator[_Record]:
    ts = _time(m["ts"], m["tz"], m["epoch"])
    if ts is None:
        log.bad_line(lineno, f"unknown time zone {m['tz']!r}; set log_timezone = 'UTC'")
        return
    prefix = m["prefix"]
    keys = dict(_KEYS.findall(prefix))
    pid, user_db = _PID.search(prefix), _USER_DB.search(prefix)
    yield _Record(
        lineno, ts, m["sev"], message, int(pid.group(1)) if pid else None,
        keys.get("user") or (user_db.group(1) if user_db else None),
        keys.get("db") or keys.get("database") or (user_db.group(2) if user_db else None),
        _address(prefix) or _ip(keys.get("client") or keys.get("host")),
        keys.get("app"),
    )  # fmt: skip


def _csv_records(fh: IO[str], log: Log) -> Iterator[_Record]:
    reader = csv.reader(fh)
    start = 1
    for cells in reader:
        lineno, start = start, reader.line_num + 1
        if len(cells) <= _C_MSG:
            log.bad_line(lineno, f"csvlog line with {len(cells)} columns (expected 23 or more)")
            continue
        m = _CSV.match(cells[_C_TIME] + ",")
        ts = _time(m["ts"], m["tz"], None) if m else None
        if ts is None:
            log.bad_line(lineno, f"bad log_time {cells[_C_TIME][:40]!r}")
            continue
        yield _Record(
            lineno, ts, cells[_C_SEV], cells[_C_MSG], _int(cells[_C_PID]),
            cells[_C_USER] or None, cells[_C_DB] or None,
            _ip(cells[_C_FROM].rpartition(":")[0] or None),
            (cells[_C_APP] or None) if len(cells) > _C_APP else None,
        )  # fmt: skip


def _json_records(fh: IO[str], log: Log) -> Iterator[_Record]:
    for lineno, line in enumerate(fh, 1):
        if not line.strip():
            continue
        try:
            obj = orjson.loads(line)
            m = _CSV.match(str(obj["timestamp"]) + ",")
            ts = _time(m["ts"], m["tz"], None) if m else None
            if ts is None:
                raise ValueError(f"bad timestamp {obj['timestamp']!r}")
            yield _Record(lineno, ts, str(obj.get("error_severity")), str(obj.get("message")),
                          _int(str(obj.get("pid", ""))), obj.get("user"), obj.get("dbname"),
                          _ip(obj.get("remote_host")), obj.get("application_name"))  # fmt: skip
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            log.bad_line(lineno, f"not a jsonlog record: {exc}")


def _time(text: str | None, zone: str | None, epoch: str | None) -> datetime | None:
    if epoch is not None or text is None:  # the pattern has one or the other
        return datetime.fromtimestamp(float(epoch or 0), UTC)
    base = datetime.fromisoformat(text)
    if zone is None or zone.upper() in _ZONES:
        return base.replace(tzinfo=UTC) - timedelta(hours=_ZONES.get((zone or "UTC").upper(), 0))
    if zone[0] in "+-":
        digits = zone[1:].replace(":", "").ljust(4, "0")
        delta = timedelta(hours=int(digits[:2]), minutes=int(digits[2:4]))
        return base.replace(tzinfo=timezone(delta if zone[0] == "+" else -delta)).astimezone(UTC)
    return None


def _address(prefix: str) -> str | None:
    """The client address of ``%r`` (``10.1.2.3(51234)``) in a prefix, if any."""
    for m in _ADDRESS.finditer(prefix):
        found = _ip(m.group(1)) or _ip(m.group(1).lstrip(":"))
        if found:
            return found
    return None


def _ip(text: str | None) -> str | None:
    try:
        return str(ipaddress.ip_address(text)) if text else None
    except ValueError:
        return None


def _int(text: str) -> int | None:
    return int(text) if text.isdigit() else None


# -- rows --------------------------------------------------------------------------------------


class _Rows:
    """Records into access rows; holds each backend's last logged statement until we know
    whether pgaudit audits it too."""

    def __init__(self, cols: Columns) -> None:
        self.cols = cols
        self._pending: dict[int | None, list[dict[str, Any]]] = {}
        self._audited: dict[int | None, tuple[str, str, str, set[str]]] = {}

    def add(self, r: _Record) -> str | None:
        """Rows of one record; otherwise the reason it is skipped."""
        if r.message.startswith("AUDIT: "):
            return self._audit(r)
        m = _STATEMENT.fullmatch(r.message) if r.severity == "LOG" else None
        if m is None:
            return f"postgresql {r.severity} (not a statement)"
        self._flush(r.pid)
        action, tables = reads(m["sql"])
        if not tables:
            return "postgresql statement (reads no table)"
        self._pending[r.pid] = [self._row(r, action, t, None) for t in tables]
        return None

    def flush(self) -> None:
        for pid in list(self._pending):
            self._flush(pid)

    def _flush(self, pid: int | None) -> None:
        for row in self._pending.pop(pid, []):
            self.cols.add(**row)

    def _audit(self, r: _Record) -> str | None:
        try:
            f = next(csv.reader(io.StringIO(r.message.removeprefix("AUDIT: "))))
        except (StopIteration, csv.Error):
            return "pgaudit (unreadable line)"
        if len(f) < 9:
            return "pgaudit (unreadable line)"
        self._pending.pop(r.pid, None)  # audited: the audit lines say what was read
        statement = self._statement(r.pid, f[1], f[2], f[7])
        if f[3] != "READ":
            return f"pgaudit {f[3]}"
        action, tables = reads(statement)
        objects = [qualified(f[6])] if f[6] else tables
        seen = self._audited[r.pid][3]
        rows = _int(f[9]) if len(f) > 9 else None
        added = 0
        for table in objects:
            if table and table not in seen and not catalog(table):
                seen.add(table)
                self.cols.add(**self._row(r, action or Action.QUERY, table, rows))
                added += 1
        return None if added else "pgaudit READ (no new table)"

    def _statement(self, pid: int | None, stmt: str, sub: str, text: str) -> str:
        """The statement's text (``<previously logged>`` resolved); the set of relations
        already counted is reset with each new statement or sub-statement."""
        known = self._audited.get(pid)
        if known is None or known[:2] != (stmt, sub):
            known = self._audited[pid] = (stmt, sub, text, set())
        elif not text.startswith("<"):
            self._audited[pid] = known = (stmt, sub, text, known[3])
        return known[2]

    @staticmethod
    def _row(r: _Record, action: Action | None, table: str, rows: int | None) -> dict[str, Any]:
        return {"ts": r.ts, "host": None, "user": r.user, "process": r.app or "postgres",
                "action": str(action or Action.QUERY), "rows": rows, "client_ip": r.client_ip,
                "object": f"postgresql://{r.db or ''}/{table}", "pid": r.pid,
                "source": SOURCE}  # fmt: skip

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
        objects = [_qualified(f[6])] if f[6] else tables
        seen = self._audited[r.pid][3]
        rows = _int(f[9]) if len(f) > 9 else None
        added = 0
        for table in objects:
            if table and table not in seen and not _catalog(table):
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


# -- SQL ---------------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""(?P<ws>\s+|--[^\n]*|/\*.*?\*/)
    |(?P<str>'(?:[^']|'')*'|\$(?P<tag>\w*)\$.*?\$(?P=tag)\$)
    |(?P<qid>"(?:[^"]|"")+")
    |(?P<id>[A-Za-z_][\w$]*)
    |(?P<op>[\d.]+|.)""",
    re.S | re.X,
)
#: words after which "(" opens a group or a sub-query, not a function call
_NOT_CALLS = frozenset({"from", "join", "in", "exists", "as", "on", "any", "all", "some",
                        "values", "lateral", "where", "and", "or", "not", "select", "union",
                        "with", "using", "over", "filter", "within", "copy"})  # fmt: skip
_CLAUSES = frozenset({"where", "join", "inner", "left", "right", "full", "cross", "natural",
                      "on", "using", "group", "order", "limit", "offset", "union", "except",
                      "intersect", "having", "window", "for", "to", "with", "returning",
                      "fetch", "tablesample", "into", "from", "select", "lateral",
                      "only"})  # fmt: skip


def reads(sql: str) -> tuple[Action | None, list[str]]:
    """What a statement does with data and the tables it reads (``schema.table``); no tables
    for statements that only write or define."""
    tokens = _tokens(sql)
    words = [t.lower() for kind, t in tokens if kind == "id"]
    first = words[0] if words else ""
    if first == "explain" and "analyze" not in words[:3]:
        return None, []
    if first == "copy":
        return _copy(tokens)
    if first not in ("select", "with", "table", "insert", "create", "explain", "declare"):
        return None, []
    if first == "create" and not ("as" in words and {"table", "materialized"} & set(words[:4])):
        return None, []  # a view or function reads nothing when defined
    if first == "table":  # TABLE t is SELECT * FROM t
        found: list[str] = []
        _table_list(tokens, 1, found, set())
        return Action.QUERY, found
    into = ("into" in words and first == "select") or first in ("insert", "create")
    return (Action.COPY if into else Action.QUERY), _tables(tokens)


def _copy(tokens: list[tuple[str, str]]) -> tuple[Action | None, list[str]]:
    depth, name, end = 0, [], len(tokens)
    for i, (kind, text) in enumerate(tokens[1:], 1):
        if text == "(":
            depth += 1
        elif text == ")":
            depth -= 1
        elif depth == 0 and kind == "id" and text.lower() in ("to", "from"):
            if text.lower() == "from":
                return None, []
            end = i
            break
        elif depth == 0 and i <= 3 and (kind in ("id", "qid") or text == "."):
            name.append((kind, text))
    if end == len(tokens):
        return None, []
    if tokens[1][1] == "(":
        return Action.EXPORT, _tables(tokens[2:end])
    table = _name([t for t in name if t[1] != "."])
    return Action.EXPORT, [table] if table and not _catalog(table) else []


def _tokens(sql: str) -> list[tuple[str, str]]:
    out = []
    for m in _TOKEN.finditer(sql):
        kind = m.lastgroup if m.lastgroup != "tag" else "str"
        if kind not in ("ws", "str"):
            out.append((str(kind), m.group()))
    return out


def _tables(tokens: list[tuple[str, str]]) -> list[str]:
    """Tables after FROM and JOIN (not inside function calls such as EXTRACT(x FROM y)),
    less the statement's WITH names."""
    found: list[str] = []
    ctes: set[str] = set()
    calls: list[bool] = []
    i = 0
    while i < len(tokens):
        kind, text = tokens[i]
        word = text.lower() if kind == "id" else ""
        if text == "(":
            prev = tokens[i - 1] if i else ("op", "")
            calls.append(prev[0] in ("id", "qid") and prev[1].lower() not in _NOT_CALLS)
        elif text == ")" and calls:
            calls.pop()
        elif word == "as" and i + 1 < len(tokens) and tokens[i + 1][1] == "(" and i:
            ctes.add(_ident(tokens[i - 1]))
        elif word in ("from", "join") and not (calls and calls[-1]):
            i = _table_list(tokens, i + 1, found, ctes)
            continue
        i += 1
    return list(dict.fromkeys(found))


def _table_list(tokens: list[tuple[str, str]], i: int, found: list[str], ctes: set[str]) -> int:
    """Read ``a [AS x], b, ONLY c`` from ``i``; returns where it stopped."""
    while i < len(tokens):
        while i < len(tokens) and tokens[i][1].lower() in ("only", "lateral"):
            i += 1
        parts = []
        while i < len(tokens) and tokens[i][0] in ("id", "qid"):
            parts.append(tokens[i])
            if i + 1 < len(tokens) and tokens[i + 1][1] == ".":
                i += 2
            else:
                i += 1
                break
        cte = len(parts) == 1 and _ident(parts[0]) in ctes
        if parts and not cte and not (i < len(tokens) and tokens[i][1] == "("):  # a function
            table = _name(parts)
            if table and not _catalog(table):
                found.append(table)
        if i < len(tokens) and tokens[i][1].lower() == "as":
            i += 1
        if i < len(tokens) and tokens[i][0] in ("id", "qid") and (
                tokens[i][1].lower() not in _CLAUSES):  # fmt: skip
            i += 1  # alias
        if not (parts and i < len(tokens) and tokens[i][1] == ","):
            return i
        i += 1
    return i


def _ident(token: tuple[str, str]) -> str:
    kind, text = token
    return text[1:-1].replace('""', '"') if kind == "qid" else text.lower()


def _name(parts: list[tuple[str, str]]) -> str | None:
    names = [_ident(p) for p in parts]
    if not names or len(names) > 3:
        return None
    return ".".join(names[-2:]) if len(names) > 1 else f"public.{names[0]}"


def _qualified(name: str) -> str:
    return name if "." in name else f"public.{name}"


def _catalog(table: str) -> bool:
    schema, _, name = table.partition(".")
    return schema in ("pg_catalog", "information_schema") or (
        schema == "public" and name.startswith("pg_")
    )

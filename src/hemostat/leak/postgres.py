"""A PostgreSQL query as an export: rows streamed through a server-side cursor (psycopg 3),
values as text. The URL is shown without its password in every message.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from itertools import chain, islice
from typing import Any

import psycopg

from hemostat.leak.errors import LeakError
from hemostat.leak.reader import SAMPLE_ROWS, Row, Table

URL_SCHEMES = ("postgresql://", "postgres://")
FETCH_ROWS = 5000


def is_url(source: str) -> bool:
    return source.startswith(URL_SCHEMES)


def redact(url: str) -> str:
    """``postgresql://u:secret@h/db?password=x`` -> ``postgresql://u:***@h/db?password=***``."""
    url = re.sub(r"(://[^:/@?]*):[^@/?]*@", r"\1:***@", url)
    return re.sub(r"(?i)(password=)[^&]*", r"\1***", url)


@contextmanager
def query_table(url: str, query: str | None) -> Iterator[Table]:
    """The rows ``query`` returns on ``url``; the connection closes when the block ends."""
    where = redact(url)
    if not query or not query.strip():
        raise LeakError(f"{where}: a PostgreSQL source needs --query 'select ...'")
    try:
        conn = psycopg.connect(url, connect_timeout=10)
    except psycopg.Error as exc:
        raise LeakError(f"{where}: cannot connect ({_first_line(exc)})") from None
    with conn, conn.cursor(name="hemostat_leak_export") as cursor:
        cursor.itersize = FETCH_ROWS
        try:
            cursor.execute(query)
        except psycopg.Error as exc:
            raise LeakError(f"{where}: query failed ({_first_line(exc)}): {query}") from None
        columns = tuple(d.name for d in cursor.description or ())
        rows = _rows(cursor, columns, where)
        sample = tuple(islice(rows, SAMPLE_ROWS))
        yield Table(where, "postgresql", columns, sample, chain(sample, rows))


def _rows(cursor: psycopg.ServerCursor[Any], columns: tuple[str, ...], where: str) -> Iterator[Row]:
    try:
        for record in cursor:
            yield {c: _text(v) for c, v in zip(columns, record, strict=True)}
    except psycopg.Error as exc:
        raise LeakError(f"{where}: reading rows failed ({_first_line(exc)})") from None


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]

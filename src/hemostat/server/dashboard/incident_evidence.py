"""The incident's evidence tables, and their CSV downloads.

* **flows** between the incident's hosts and its destinations (or other hosts), either way,
  that overlap its window;
* **dns**: the queries its hosts made in its window;
* **access**: access events of its window made from its hosts, on its hosts (the data
  stores it reached) or by the accounts its findings name.

The page shows the first ``SHOWN`` rows of each (with how many there are in all); the CSV
route streams every row with every canonical column (times in UTC, ISO 8601). A text cell a
spreadsheet would take for a formula (a DNS name or a path an attacker chose, starting with
``=``, ``+``, ``-``, ``@``, a tab or a CR) gets a leading ``'`` (OWASP's advice against CSV
injection); numbers are written as they are. The evidence bundle keeps the data verbatim.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from hemostat.schema import COLUMNS, Table, utc_text
from hemostat.server.dashboard.incident_data import Subject, find, subject
from hemostat.server.dashboard.session import ViewerDep
from hemostat.server.dashboard.views import collector, page, reader
from hemostat.store import Store

router = APIRouter(include_in_schema=False)
SHOWN = 200
BATCH = 5000
#: first characters that make a spreadsheet read a cell as a formula
FORMULA = ("=", "+", "-", "@", "\t", "\r")
#: the columns each table shows on the page (the CSV has them all)
SHOWN_COLUMNS: dict[Table, tuple[str, ...]] = {
    Table.FLOWS: ("ts", "end_ts", "src_ip", "dst_ip", "dst_port", "proto", "service",
                  "bytes_out", "bytes_in", "conn_state"),
    Table.DNS: ("ts", "src_ip", "query", "qtype", "rcode", "answers"),
    Table.ACCESS: ("ts", "host", "user", "action", "object", "rows", "bytes", "client_ip"),
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Evidence:
    """The first rows of one evidence table and how many there are in all."""

    table: Table
    columns: tuple[str, ...]
    rows: tuple[dict[str, Any], ...]
    total: int

    @property
    def hidden(self) -> int:
        return self.total - len(self.rows)


def where(table: Table, s: Subject) -> tuple[str, list[Any]]:
    """The SQL condition selecting ``table``'s evidence of the incident, and its parameters."""
    start, end = s.window
    hosts = list(s.hosts)
    if table is Table.FLOWS:
        return (
            "((list_contains(?::VARCHAR[], src_ip) AND list_contains(?::VARCHAR[], dst_ip)) "
            "OR (list_contains(?::VARCHAR[], src_ip) AND list_contains(?::VARCHAR[], dst_ip))) "
            "AND ts < ? AND coalesce(end_ts, ts) >= ?",
            [hosts, list(s.peers), list(s.peers), hosts, end, start],
        )
    if table is Table.DNS:
        return "list_contains(?::VARCHAR[], src_ip) AND ts >= ? AND ts <= ?", [hosts, start, end]
    return (
        "ts >= ? AND ts <= ? AND (list_contains(?::VARCHAR[], client_ip) "
        'OR list_contains(?::VARCHAR[], host) OR list_contains(?::VARCHAR[], "user"))',
        [start, end, hosts, hosts, list(s.accounts)],
    )


def tables(store: Store, s: Subject) -> tuple[Evidence, ...]:
    return tuple(first(store, t, s) for t in Table)


def first(store: Store, table: Table, s: Subject) -> Evidence:
    columns = SHOWN_COLUMNS[table]
    condition, params = where(table, s)
    names = ", ".join(f'"{c}"' for c in columns)
    cursor = store.con.execute(
        f"SELECT {names}, count(*) OVER () FROM {table} WHERE {condition} "
        f"ORDER BY ts, {names} LIMIT ?",
        [*params, SHOWN],
    )  # fmt: skip
    rows = cursor.fetchall()
    total = int(rows[0][-1]) if rows else 0
    return Evidence(table, columns, tuple(dict(zip(columns, r, strict=False)) for r in rows),
                    total)  # fmt: skip


def csv_rows(store: Store, table: Table, s: Subject) -> Iterator[str]:
    """Every row of ``table``'s evidence as CSV text (a header first), a batch at a time."""
    columns = [name for name, _ in COLUMNS[table]]
    names = ", ".join(f'"{c}"' for c in columns)
    condition, params = where(table, s)
    cursor = store.con.execute(
        f"SELECT {names} FROM {table} WHERE {condition} ORDER BY ts, {names}",
        params,
    )
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    while batch := cursor.fetchmany(BATCH):
        writer.writerows([_cell(v) for v in row] for row in batch)
        yield out.getvalue()
        out.seek(0)
        out.truncate()
    yield out.getvalue()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return utc_text(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return _text(" ".join(str(v) for v in value))
    if isinstance(value, str):
        return _text(value)
    return str(value)  # a number, even a negative one, stays a number


def _text(text: str) -> str:
    """``text`` as a spreadsheet shows it: as text, never as a formula."""
    return f"'{text}" if text.startswith(FORMULA) else text


@router.get("/incidents/{ident}/evidence/{name}.csv")
def download(request: Request, viewer: ViewerDep, ident: str, name: str) -> Response:
    """One evidence table in full, streamed as CSV."""
    table = next((t for t in Table if t.value == name), None)
    with reader(request) as store:
        listed = find(store, ident)
        found = subject(store, collector(request).inventory(), listed) if listed else None
    if found is None or table is None:
        return page(request, viewer, "incident_missing.html.j2", status=404, ident=ident)
    return StreamingResponse(
        _streamed(request, table, found),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{ident}-{table}.csv"',
                 "Cache-Control": "no-store"},
    )  # fmt: skip


def _streamed(request: Request, table: Table, s: Subject) -> Iterator[str]:
    """The CSV on a cursor of its own, open while the response is sent."""
    with reader(request) as store:
        yield from csv_rows(store, table, s)

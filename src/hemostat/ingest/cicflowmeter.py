"""CICFlowMeter flow CSV, in its header dialects: CICFlowMeter-V4 (``Tot Fwd Pkts``,
``TotLen Fwd Pkts``; CSE-CIC-IDS2018 and most re-extractions), the current CICFlowMeter and
the improved CIC-IDS2017 (``Total Fwd Packet``, ``Total Length of Fwd Packet``, an ``id``
column) and the original CIC-IDS2017 ``TrafficLabelling`` files (`` Source IP``, leading
spaces). Columns are matched by name, case, spaces and punctuation ignored, so column order
and the 80-odd statistics columns (and the ``Label`` columns) do not matter.

The file is read by DuckDB's CSV scanner with the needed columns typed, so a row whose
timestamp, ports or counters do not parse is rejected with its line number. ``Timestamp``
has no time zone: it is taken as UTC (the improved CIC-IDS2017 files are in UTC; CICFlowMeter
itself writes the capture machine's local time). Its format is chosen per file from the
first rows: ISO ``2017-07-06 12:39:06.818901``, or day first ``06/05/2023 07:04:12 PM``,
``14/02/2018 08:31:01``, ``06/05/2023 19:50``.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

import duckdb

from hemostat.errors import IngestError
from hemostat.ingest.reader import REJECTS, Log, Reader, reject_reason, sample, take_rejects
from hemostat.schema import PROTO_NAMES, Sample, Table

#: canonical role → accepted header names, normalised (lower case, letters and digits only)
_NAMES = {
    "conn_id": ("flowid",),
    "src_ip": ("srcip", "sourceip"),
    "src_port": ("srcport", "sourceport"),
    "dst_ip": ("dstip", "destinationip"),
    "dst_port": ("dstport", "destinationport"),
    "proto": ("protocol",),
    "ts": ("timestamp",),
    "duration": ("flowduration",),
    "pkts_out": ("totfwdpkts", "totalfwdpacket", "totalfwdpackets"),
    "pkts_in": ("totbwdpkts", "totalbwdpackets", "totalbackwardpackets"),
    "bytes_out": ("totlenfwdpkts", "totallengthoffwdpacket", "totallengthoffwdpackets"),
    "bytes_in": ("totlenbwdpkts", "totallengthofbwdpacket", "totallengthofbwdpackets"),
}
_REQUIRED = ("src_ip", "dst_ip", "ts", "duration", "bytes_out", "bytes_in")
#: DuckDB types of the columns used (BIGINT reads ``1.12E+07``, rejects ``Infinity``, ``NaN``)
_TYPES = {
    "src_port": "INTEGER", "dst_port": "INTEGER", "proto": "INTEGER", "ts": "TIMESTAMP",
    "duration": "BIGINT", "pkts_out": "BIGINT", "pkts_in": "BIGINT", "bytes_out": "BIGINT",
    "bytes_in": "BIGINT",
}  # fmt: skip
#: longest believable flow, in microseconds; a longer (or negative) duration counts as 0
_MAX_DURATION = 366 * 86400 * 1_000_000
#: day-first formats CICFlowMeter and spreadsheets write (ISO needs none: DuckDB's own cast)
_TS_FORMATS = ("%d/%m/%Y %I:%M:%S %p", "%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M")
_FORMAT_ROWS = 200

_FLOW_SQL = """
    timezone('UTC', {ts}) AS ts,
    timezone('UTC', {ts} + to_microseconds(CASE WHEN {duration} BETWEEN 0 AND {max_duration}
        THEN {duration} ELSE 0 END)) AS end_ts,
    {src_ip} AS src_ip, {src_port} AS src_port, {dst_ip} AS dst_ip, {dst_port} AS dst_port,
    {proto} AS proto,
    coalesce({bytes_out}, 0) AS bytes_out, coalesce({bytes_in}, 0) AS bytes_in,
    coalesce({pkts_out}, 0) AS pkts_out, coalesce({pkts_in}, 0) AS pkts_in,
    {conn_id} AS conn_id, 'cicflowmeter' AS source
"""


def _normal(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _roles(fields: list[str]) -> dict[str, int]:
    """Canonical role → column index, for the roles this header has."""
    index = {_normal(f): i for i, f in reversed(list(enumerate(fields)))}
    roles = {}
    for role, names in _NAMES.items():
        found = [index[n] for n in names if n in index]
        if found:
            roles[role] = found[0]
    return roles


def _lines(head: Sample) -> list[str]:
    """Complete lines of a sample (the last one may be cut by the sample size)."""
    lines = head.head.decode("utf-8", "replace").removeprefix("\ufeff").splitlines()
    return lines[:-1] if len(lines) > 1 and not head.head.endswith(b"\n") else lines


def _header(head: Sample) -> list[str]:
    lines = _lines(head)
    return next(csv.reader(lines[:1]), [])


class CicFlowMeter(Reader):
    id: ClassVar[str] = "cicflowmeter"
    description: ClassVar[str] = "CICFlowMeter flow CSV (V4, CIC-IDS2017 original and improved)"
    tables: ClassVar[tuple[Table, ...]] = (Table.FLOWS,)

    def sniff(self, head: Sample) -> bool:
        return all(role in _roles(_header(head)) for role in _REQUIRED)

    def read(
        self, path: Path, con: duckdb.DuckDBPyConnection, log: Log
    ) -> Iterator[tuple[Table, Any]]:
        head = sample(path)
        fields = _header(head)
        roles = _roles(fields)
        missing = [_NAMES[r][0] for r in _REQUIRED if r not in roles]
        if missing:
            raise IngestError(path, 1, f"not a CICFlowMeter header: no {', '.join(missing)} "
                              "column (normalised names)")  # fmt: skip
        types = {i: _TYPES.get(role, "VARCHAR") for role, i in roles.items()}
        columns = {f"c{i}": types.get(i, "VARCHAR") for i in range(len(fields))}
        options: dict[str, Any] = {}
        fmt = _timestamp_format(path, _lines(head)[1 : _FORMAT_ROWS + 1], roles["ts"])
        if fmt:
            options["timestamp_format"] = fmt
        for table in REJECTS.values():  # none left over from an earlier read
            con.execute(f"DROP TABLE IF EXISTS {table}")
        rel = con.read_csv(
            str(path), header=True, delimiter=",", columns=columns, auto_detect=False,
            compression="gzip" if head.gzip else "none", null_padding=False,
            ignore_errors=True, store_rejects=True, **REJECTS, **options,
        )  # fmt: skip
        yield Table.FLOWS, rel.select(_FLOW_SQL.format(**_selects(roles)))
        _report_rejects(con, log, fields)


def _selects(roles: dict[str, int]) -> dict[str, str]:
    """SQL for each role: its column, or a typed NULL when the header lacks it."""
    sql = {role: f'"c{i}"' for role, i in roles.items()}
    for role in _NAMES:
        sql.setdefault(role, f"NULL::{_TYPES.get(role, 'VARCHAR')}")
    names = " ".join(f"WHEN {n} THEN '{name}'" for n, name in PROTO_NAMES.items())
    sql["proto"] = f"CASE {sql['proto']} {names} ELSE {sql['proto']}::VARCHAR END"
    sql["max_duration"] = str(_MAX_DURATION)
    return sql


def _timestamp_format(path: Path, lines: list[str], column: int) -> str | None:
    """The ``strptime`` format of the ``Timestamp`` column (None: ISO, DuckDB's own cast)."""
    values = [row[column].strip() for row in csv.reader(lines) if len(row) > column]
    values = [v for v in values if v]
    if not values:
        return None
    scores = {fmt: sum(_parses(v, fmt) for v in values) for fmt in (None, *_TS_FORMATS)}
    best = max(scores, key=lambda fmt: scores[fmt])  # the first of the best, in order
    if scores[best] == 0:
        expected = "ISO (2017-07-06 12:39:06.818901) or day first (06/05/2023 19:50)"
        raise IngestError(path, 2, f"unrecognised Timestamp {values[0]!r}; expected {expected}")
    return best


def _parses(value: str, fmt: str | None) -> bool:
    try:
        if fmt is None:
            datetime.fromisoformat(value)
        else:
            datetime.strptime(value, fmt)  # naive on purpose: UTC by contract
    except ValueError:
        return False
    return True


def _report_rejects(con: duckdb.DuckDBPyConnection, log: Log, fields: list[str]) -> None:
    """Rows DuckDB rejected (once the relation has been read), as bad lines that name the
    file's own columns."""

    def named(match: re.Match[str]) -> str:
        return f'column "{fields[int(match[1])].strip()}"'

    for line, error_type, message, text in take_rejects(con):
        what = re.sub(r'column "c(\d+)"', named, reject_reason(error_type, message))
        log.bad_line(line, f"{what}: {text[:60]!r}")

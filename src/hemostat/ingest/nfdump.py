"""nfdump: its CSV output (``nfdump -o csv``) and binary nfcapd files (through ``nfdump``).

Both land in ``flows`` with one row per nfdump record. NetFlow v5/v9 exporters and nfpcapd
write *unidirectional* records: a connection is two rows, request and reply, each with the
sender as ``src``; ``bytes_in``/``pkts_in`` are nfdump's ``obyt``/``opkt``, which only
bidirectional exporters (IPFIX biflows, NSEL) fill, else 0. Rows are not paired: summing
``bytes_out`` by ``src_ip`` still gives what each host sent.

nfcapd files are converted by ``nfdump -q -N -6 -o fmt:…`` into a temporary file that
DuckDB reads (epoch start times with milliseconds; ``-o csv`` has whole seconds only).
CSV times are the local time of the machine that ran nfdump; they are read as UTC.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import duckdb

from hemostat.errors import IngestError
from hemostat.ingest.reader import (
    REJECTS,
    Log,
    Reader,
    reject_reason,
    require_tool,
    run_tool,
    take_rejects,
)
from hemostat.ingest.reader import sample as take_sample
from hemostat.schema import PROTO_NAMES, Sample, Table

#: the header of ``nfdump -o csv`` (nfdump 1.6 and 1.7)
CSV_HEADER = [
    "ts", "te", "td", "sa", "da", "sp", "dp", "pr", "flg", "fwd", "stos", "ipkt", "ibyt", "opkt",
    "obyt", "in", "out", "sas", "das", "smk", "dmk", "dtos", "dir", "nh", "nhb", "svln", "dvln",
    "ismc", "odmc", "idmc", "osmc", "mpls1", "mpls2", "mpls3", "mpls4", "mpls5", "mpls6", "mpls7",
    "mpls8", "mpls9", "mpls10", "cl", "sl", "al", "ra", "eng", "exid", "tr",
]  # fmt: skip
_CSV_TYPES = {
    "ts": "TIMESTAMP", "td": "DOUBLE", "sp": "INTEGER", "dp": "INTEGER",
    "ipkt": "UBIGINT", "ibyt": "UBIGINT", "opkt": "UBIGINT", "obyt": "UBIGINT",
}  # fmt: skip
_CSV_NEEDED = ("ts", "td", "sa", "da", "sp", "dp", "pr", "flg", "ipkt", "ibyt")
_CSV_OPTIONAL = {"opkt": "UBIGINT", "obyt": "UBIGINT", "ra": "VARCHAR"}
_CSV_ROW = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)?,\d{4}-\d\d-\d\d \d\d:\d\d:\d")

#: protocol names nfdump prints in CSV (IANA keywords), by number
_NFDUMP_PROTOS = {
    "icmp": 1, "igmp": 2, "ggp": 3, "ipip": 4, "tcp": 6, "egp": 8, "udp": 17, "ipv6": 41,
    "rsvp": 46, "gre": 47, "esp": 50, "ah": 51, "icmp6": 58, "ospf": 89, "pim": 103,
    "vrrp": 112, "l2tp": 115, "sctp": 132,
}  # fmt: skip

#: what ``nfdump -o fmt:`` prints for a binary file (``%ter`` is wrong on old files: use %td)
_FMT_COLUMNS = {
    "tsr": "DOUBLE", "td": "DOUBLE", "sa": "VARCHAR", "da": "VARCHAR", "sp": "INTEGER",
    "dp": "VARCHAR", "pr": "INTEGER", "flg": "VARCHAR", "ipkt": "UBIGINT", "ibyt": "UBIGINT",
    "opkt": "UBIGINT", "obyt": "UBIGINT", "ra": "VARCHAR",
}  # fmt: skip
_FMT = "fmt:" + ",".join(f"%{name}" for name in _FMT_COLUMNS)

#: nfcapd file magic (0xA50C, little- or big-endian) and the layout versions nfdump reads
_NFCAPD_MAGIC = (b"\x0c\xa5", b"\xa5\x0c")
_NFCAPD_LAYOUTS = (1, 2)

#: lines ``nfdump`` prints around the records; counted as skipped, never as bad
_TRAILER = ("Summary", "flows,bytes,packets,avg_bps,avg_pps,avg_bpp", "No matching flows")

# one row of canonical flows from a normalised relation (ts, dur, sa, da, sp, icmp, pr, ...)
_FLOW_SQL = """
    ts, ts + to_microseconds((coalesce(dur, 0) * 1e6)::BIGINT) AS end_ts,
    trim(sa) AS src_ip, trim(da) AS dst_ip,
    CASE WHEN proto IN ('icmp', 'icmp6') THEN dp // 256 ELSE sp END::INTEGER AS src_port,
    CASE WHEN proto IN ('icmp', 'icmp6') THEN dp % 256 ELSE dp END::INTEGER AS dst_port,
    proto, NULL::VARCHAR AS service,
    coalesce(ibyt, 0)::BIGINT AS bytes_out, coalesce(obyt, 0)::BIGINT AS bytes_in,
    coalesce(ipkt, 0)::BIGINT AS pkts_out, coalesce(opkt, 0)::BIGINT AS pkts_in,
    CASE
        WHEN proto <> 'tcp' THEN CASE WHEN opkt > 0 THEN 'SF' END
        WHEN contains(flg, 'S') AND NOT contains(flg, 'A') THEN 'S0'
        WHEN contains(flg, 'R') AND NOT regexp_matches(flg, '[SPF]') THEN 'REJ'
        WHEN contains(flg, 'S') AND contains(flg, 'F') THEN 'SF'
        WHEN contains(flg, 'S') AND contains(flg, 'R') THEN 'RSTO'
        WHEN contains(flg, 'S') THEN 'S1'
        ELSE 'OTH'
    END AS conn_state,
    'N' || left(md5(concat_ws('|', trim(sa), sp, trim(da), dp, proto, epoch_ms(ts))), 17)
        AS conn_id,
    CASE WHEN trim(ra) NOT IN ('', '0.0.0.0', '::') THEN trim(ra) END AS host,
    'nfdump' AS source
"""


def _proto_sql(number: str) -> str:
    """SQL naming an IP protocol number the way ``schema.PROTO_NAMES`` does."""
    cases = " ".join(f"WHEN {n} THEN '{name}'" for n, name in PROTO_NAMES.items())
    return f"CASE {number} {cases} ELSE {number}::VARCHAR END"


def _csv_proto(column: str) -> str:
    """nfdump's protocol names (``TCP``, ``ICMP6``, ``IGMP``, ``0``) as hemostat names."""
    name = f"lower(trim({column}))"
    names = " ".join(f"WHEN '{k}' THEN {n}" for k, n in _NFDUMP_PROTOS.items())
    number = f"coalesce(TRY_CAST({name} AS INTEGER), CASE {name} {names} END)"
    return f"CASE WHEN {number} IS NULL THEN {name} ELSE {_proto_sql(number)} END"


class NfdumpCsv(Reader):
    id: ClassVar[str] = "nfdump_csv"
    description: ClassVar[str] = "nfdump CSV output (nfdump -o csv), with or without header"
    tables: ClassVar[tuple[Table, ...]] = (Table.FLOWS,)

    def sniff(self, sample: Sample) -> bool:
        first = sample.head.decode("utf-8", "replace").split("\n", 1)[0]
        return first.startswith("ts,te,td,sa,da,sp,dp,pr,") or (
            _CSV_ROW.match(first) is not None and first.count(",") >= 14
        )

    def read(
        self, path: Path, con: duckdb.DuckDBPyConnection, log: Log
    ) -> Iterator[tuple[Table, Any]]:
        first = take_sample(path).head.decode("utf-8", "replace").split("\n", 1)[0].strip()
        header = first.startswith("ts,")
        names = first.split(",") if header else _default_names(first.count(",") + 1)
        missing = [n for n in _CSV_NEEDED if n not in names]
        if missing:
            raise IngestError(path, 1, f"nfdump CSV lacks column(s) {', '.join(missing)}")
        columns = {n: _CSV_TYPES.get(n, "VARCHAR") for n in names}
        rel = _read_csv(con, path, columns, header=header)
        opt = {n: n if n in names else f"NULL::{t}" for n, t in _CSV_OPTIONAL.items()}
        rel = rel.select(
            f"timezone('UTC', ts) AS ts, td AS dur, sa, da, sp, dp, {_csv_proto('pr')} AS proto, "
            f"flg, ipkt, ibyt, {opt['opkt']} AS opkt, {opt['obyt']} AS obyt, {opt['ra']} AS ra"
        )
        yield Table.FLOWS, rel.select(_FLOW_SQL)
        _report_rejects(con, log)


class Nfcapd(Reader):
    id: ClassVar[str] = "nfcapd"
    description: ClassVar[str] = "nfcapd/nfpcapd binary flow files, read with the nfdump tool"
    tables: ClassVar[tuple[Table, ...]] = (Table.FLOWS,)

    def sniff(self, sample: Sample) -> bool:
        head = sample.head
        if sample.gzip or len(head) < 4 or head[:2] not in _NFCAPD_MAGIC:
            return False
        layout = head[2:4] if head[:2] == _NFCAPD_MAGIC[0] else head[3:1:-1]
        return int.from_bytes(layout, "little") in _NFCAPD_LAYOUTS

    def read(
        self, path: Path, con: duckdb.DuckDBPyConnection, log: Log
    ) -> Iterator[tuple[Table, Any]]:
        nfdump = require_tool("nfdump", "nfdump")
        with tempfile.TemporaryDirectory(prefix="hemostat-nfdump-") as tmp:
            out = Path(tmp) / "flows.csv"
            if not _convert(nfdump, path, out, log):
                return
            rel = _read_csv(con, out, _FMT_COLUMNS, header=False)
            dp = (
                "CASE WHEN contains(dp, '.') THEN split_part(dp, '.', 1)::INTEGER * 256 "
                "+ split_part(dp, '.', 2)::INTEGER ELSE trim(dp)::INTEGER END"
            )
            rel = rel.select(
                f"to_timestamp(tsr) AS ts, td AS dur, sa, da, sp, {dp} AS dp, "
                f"{_proto_sql('pr')} AS proto, trim(flg) AS flg, ipkt, ibyt, opkt, obyt, ra"
            )
            yield Table.FLOWS, rel.select(_FLOW_SQL)
            _report_rejects(con, log)


def _read_csv(
    con: duckdb.DuckDBPyConnection, path: Path, columns: dict[str, str], header: bool
) -> duckdb.DuckDBPyRelation:
    """Typed columns; rows that do not fit are set aside in ``_hemostat_rejects``."""
    return con.read_csv(
        str(path), delimiter=",", header=header, quotechar="", escapechar="", columns=columns,
        auto_detect=False, null_padding=False, ignore_errors=True, store_rejects=True,
        **REJECTS,
    )  # fmt: skip


def _default_names(count: int) -> list[str]:
    """Column names of a CSV written with ``-q`` (no header line)."""
    if count == len(CSV_HEADER):
        return CSV_HEADER
    return CSV_HEADER[:15] + [f"column{i}" for i in range(15, count)]


def _convert(nfdump: str, path: Path, out: Path, log: Log) -> bool:
    """Write the records of ``path`` to ``out``; False when it holds none."""
    errors = run_tool([nfdump, "-r", str(path), "-q", "-N", "-6", "-o", _FMT], path, out=out)
    problems = [line.strip() for line in errors.splitlines() if line.strip()]
    with out.open("rb") as fh:
        empty = fh.read(len(_TRAILER[2])) in (b"", _TRAILER[2].encode())
    if problems and empty:
        raise IngestError(
            path, None, f"nfdump cannot read it (truncated or corrupt?): {problems[0]}"
        )
    if problems:
        log.bad_line(None, f"nfdump stopped early (truncated file?): {problems[0]}")
    return not empty


def _report_rejects(con: duckdb.DuckDBPyConnection, log: Log) -> None:
    trailer_at = None
    for line, error_type, message, text in take_rejects(con):
        if text.strip() in _TRAILER or line == trailer_at:
            log.skip("nfdump summary lines")
            trailer_at = line + 1  # the totals line follows its own header
            continue
        log.bad_line(line, f"{reject_reason(error_type, message)}: {text[:60]!r}")

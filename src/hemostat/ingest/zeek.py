"""Zeek ``conn.log``, ``open_conn.log`` and ``dns.log``, in TSV (``#fields`` headers) and JSON.

TSV is read by DuckDB's own CSV scanner (typed columns, bad lines rejected with their line
number), so ingest runs at the speed of ``read_csv``. Other Zeek logs (http, ssl, …) are
recognised and skipped. Extra columns (``_node_name``, labels) are ignored except
``_node_name``, which names the sensor (``host``).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import duckdb

from hemostat.errors import IngestError
from hemostat.ingest.reader import (
    REJECTS,
    Columns,
    Log,
    Reader,
    json_lines,
    port,
    reject_reason,
    sample,
    take_rejects,
)
from hemostat.schema import QTYPE_NAMES, RCODE_NAMES, Sample, Table

_SQL_TYPES = {
    "time": "DOUBLE", "interval": "DOUBLE", "double": "DOUBLE", "count": "UBIGINT",
    "int": "BIGINT", "port": "USMALLINT",
}  # fmt: skip

_FLOW_SQL = """
    to_timestamp("ts") AS ts,
    to_timestamp("ts" + coalesce("duration", 0)) AS end_ts,
    "id.orig_h" AS src_ip, "id.orig_p"::INTEGER AS src_port,
    "id.resp_h" AS dst_ip, "id.resp_p"::INTEGER AS dst_port,
    lower("proto") AS proto, "service",
    coalesce("orig_bytes", 0)::BIGINT AS bytes_out, coalesce("resp_bytes", 0)::BIGINT AS bytes_in,
    coalesce("orig_pkts", 0)::BIGINT AS pkts_out, coalesce("resp_pkts", 0)::BIGINT AS pkts_in,
    "conn_state", "uid" AS conn_id, {host} AS host, 'zeek' AS source{open}
"""

_DNS_SQL = """
    to_timestamp("ts") AS ts, "id.orig_h" AS src_ip, "id.resp_h" AS dst_ip,
    "query", coalesce("qtype_name", {qtype}) AS qtype, coalesce("rcode_name", {rcode}) AS rcode,
    string_split("answers", '{set_sep}') AS answers, "uid" AS conn_id, {host} AS host,
    'zeek' AS source
"""

#: columns each log kind needs, with the Zeek type they must have
_REQUIRED = {
    "conn": ("ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "proto"),
    "dns": ("ts", "id.orig_h", "id.resp_h", "query"),
}


#: columns the SQL above reads that a log may lack (then NULL)
_OPTIONAL = {
    "conn": {"service": "VARCHAR", "duration": "DOUBLE", "orig_bytes": "UBIGINT",
             "resp_bytes": "UBIGINT", "orig_pkts": "UBIGINT", "resp_pkts": "UBIGINT",
             "conn_state": "VARCHAR"},
    "dns": {"qtype_name": "VARCHAR", "rcode_name": "VARCHAR", "answers": "VARCHAR",
            "qtype": "UBIGINT", "rcode": "UBIGINT"},
}  # fmt: skip


def _kind(declared: str, path: Path) -> str:
    """``conn``, ``open_conn``, ``dns`` or another Zeek log name.

    The open-connections package writes ``#path conn`` into ``open_conn.log``: the file
    name is what tells a snapshot of a still-open connection from a closed one.
    """
    kind = declared.removesuffix(".log")
    return (
        f"open_{kind}" if path.name.startswith("open_") and not kind.startswith("open_") else kind
    )


def _header(text: str) -> dict[str, str]:
    header = {}
    for raw in text.splitlines():
        line = raw.lstrip(" \t")  # some tools indent the first header line
        if not line.startswith("#"):
            break
        sep = " " if line.startswith("#separator ") else "\t"
        key, _, value = line[1:].partition(sep)
        header[key] = value
    return header


def _headerless(text: str) -> bool:
    """A Zeek TSV row without the header lines: epoch, uid, then two address/port pairs."""
    cells = text.split("\n", 1)[0].split("\t")
    return (
        len(cells) >= 12
        and cells[0].replace(".", "", 1).isdigit()
        and cells[1][:1] == "C"
        and cells[3].isdigit()
        and cells[5].isdigit()
    )


def _number_names(column: str, names: dict[int, str]) -> str:
    cases = " ".join(f"WHEN {n} THEN '{name}'" for n, name in names.items())
    return f'CASE "{column}" {cases} ELSE "{column}"::VARCHAR END'


class ZeekTsv(Reader):
    id: ClassVar[str] = "zeek_tsv"
    description: ClassVar[str] = "Zeek conn/open_conn/dns logs, TSV with #fields header"
    tables: ClassVar[tuple[Table, ...]] = (Table.FLOWS, Table.DNS)

    def sniff(self, head: Sample) -> bool:
        text = head.head.decode("utf-8", "replace").lstrip()
        return text.startswith(("#separator", "#fields")) or _headerless(text)

    def read(
        self, path: Path, con: duckdb.DuckDBPyConnection, log: Log
    ) -> Iterator[tuple[Table, Any]]:
        header = _header(sample(path).head.decode("utf-8", "replace"))
        fields = header.get("fields", "").split("\t")
        types = header.get("types", "").split("\t")
        if fields == [""]:
            raise IngestError(
                path,
                1,
                "Zeek TSV without its #fields/#types header lines; restore the header "
                "(e.g. from another log of the same sensor) and ingest again",
            )
        if len(types) != len(fields):
            types = ["string"] * len(fields)
        kind = _kind(header.get("path", path.name.split(".")[0]), path)
        base = kind.removeprefix("open_")
        if base not in _REQUIRED:
            log.skip(f"zeek {kind}.log (not used)")
            return
        missing = [f for f in _REQUIRED[base] if f not in fields]
        if missing:
            raise IngestError(path, None, f"Zeek {kind}.log lacks field(s) {', '.join(missing)}")
        columns = {f: _SQL_TYPES.get(t, "VARCHAR") for f, t in zip(fields, types, strict=True)}
        rel = con.read_csv(
            str(path), delimiter="\t", header=False, comment="#", quotechar="", escapechar="",
            columns=columns, auto_detect=False, null_padding=False,
            na_values=["-", header.get("empty_field", "(empty)")],
            ignore_errors=True, store_rejects=True, **REJECTS,
        )  # fmt: skip
        host = '"_node_name"' if "_node_name" in fields else "NULL::VARCHAR"
        optional = _OPTIONAL["conn" if base == "conn" else "dns"]
        absent = [f'NULL::{t} AS "{n}"' for n, t in optional.items() if n not in fields]
        if absent:
            rel = rel.select(", ".join(["*", *absent]))
        if base == "conn":
            # no ``open`` column unless snapshots: the store then appends without merging
            sql = _FLOW_SQL.format(host=host, open=", true AS open" if kind == "open_conn" else "")
            yield Table.FLOWS, rel.select(sql)
        else:
            qtype = _number_names("qtype", QTYPE_NAMES)
            rcode = _number_names("rcode", RCODE_NAMES)
            sep = header.get("set_separator", ",").replace("'", "''")
            yield (
                Table.DNS,
                rel.select(_DNS_SQL.format(qtype=qtype, rcode=rcode, set_sep=sep, host=host)),
            )
        _report_rejects(con, log)


def _report_rejects(con: duckdb.DuckDBPyConnection, log: Log) -> None:
    for line, error_type, message, text in take_rejects(con):
        if text.lstrip(" \t").startswith("#"):
            continue  # an indented header line: DuckDB saw no comment, but it is not data
        log.bad_line(line, f"{reject_reason(error_type, message)}: {text[:60]!r}")


# ---- JSON ----------------------------------------------------------------------------------


def _ts(value: Any) -> datetime:
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _get(obj: dict[str, Any], key: str) -> Any:
    """Dotted keys (``id.orig_h``) or nested objects (``{"id": {"orig_h": …}}``)."""
    if key in obj:
        return obj[key]
    head, _, rest = key.partition(".")
    inner = obj.get(head)
    return inner.get(rest) if rest and isinstance(inner, dict) else None


def _json_kind(path: Path, obj: dict[str, Any]) -> str:
    if isinstance(obj.get("_path"), str):
        return _kind(str(obj["_path"]), path)
    stem = path.name.split(".")[0].removesuffix("_json")
    if stem in ("conn", "open_conn", "dns"):
        return stem
    return "dns" if "query" in obj else "conn" if "conn_state" in obj else stem


class ZeekJson(Reader):
    id: ClassVar[str] = "zeek_json"
    description: ClassVar[str] = "Zeek conn/open_conn/dns logs, JSON lines (dotted or nested keys)"
    tables: ClassVar[tuple[Table, ...]] = (Table.FLOWS, Table.DNS)

    def sniff(self, head: Sample) -> bool:
        first = head.head.lstrip()[:2000]
        return (
            first.startswith(b"{")
            and b'"ts"' in first
            and (b'"id.orig_h"' in first or b'"orig_h"' in first)
        )

    def read(
        self, path: Path, con: duckdb.DuckDBPyConnection, log: Log
    ) -> Iterator[tuple[Table, Any]]:
        flows, dns = Columns(Table.FLOWS), Columns(Table.DNS)
        for lineno, obj in json_lines(path, log):
            kind = _json_kind(path, obj)
            base = kind.removeprefix("open_")
            if base not in _REQUIRED:
                log.skip(f"zeek {kind} record (not used)")
                continue
            try:
                if base == "conn":
                    flows.add(**_json_flow(obj, open_=kind == "open_conn"))
                else:
                    dns.add(**_json_dns(obj))
            except (KeyError, ValueError, TypeError, OverflowError) as exc:
                log.bad_line(lineno, f"bad Zeek {base} record: {exc}")
        if len(flows):
            yield Table.FLOWS, flows.arrow()
        if len(dns):
            yield Table.DNS, dns.arrow()


def _required(obj: dict[str, Any], key: str) -> Any:
    value = _get(obj, key)
    if value is None:
        raise KeyError(f"missing {key!r}")
    return value


def _json_flow(obj: dict[str, Any], open_: bool) -> dict[str, Any]:
    ts = _ts(_required(obj, "ts"))
    duration = float(obj.get("duration") or 0)
    return {
        "ts": ts,
        "end_ts": datetime.fromtimestamp(ts.timestamp() + duration, UTC),
        "src_ip": str(_required(obj, "id.orig_h")),
        "src_port": port(_get(obj, "id.orig_p")),
        "dst_ip": str(_required(obj, "id.resp_h")),
        "dst_port": port(_get(obj, "id.resp_p")),
        "proto": str(_required(obj, "proto")).lower(),
        "service": obj.get("service"),
        "bytes_out": int(obj.get("orig_bytes") or 0),
        "bytes_in": int(obj.get("resp_bytes") or 0),
        "pkts_out": int(obj.get("orig_pkts") or 0),
        "pkts_in": int(obj.get("resp_pkts") or 0),
        "conn_state": obj.get("conn_state"),
        "conn_id": obj.get("uid"),
        "host": obj.get("_node_name"),
        "source": "zeek",
        "open": open_,
    }


def _json_dns(obj: dict[str, Any]) -> dict[str, Any]:
    answers = obj.get("answers")
    qtype = obj.get("qtype_name") or QTYPE_NAMES.get(obj.get("qtype", -1), obj.get("qtype"))
    rcode = obj.get("rcode_name") or RCODE_NAMES.get(obj.get("rcode", -1), obj.get("rcode"))
    return {
        "ts": _ts(_required(obj, "ts")),
        "src_ip": str(_required(obj, "id.orig_h")),
        "dst_ip": _get(obj, "id.resp_h"),
        "query": obj.get("query"),
        "qtype": None if qtype is None else str(qtype),
        "rcode": None if rcode is None else str(rcode),
        "answers": [str(a) for a in answers] if isinstance(answers, list) else None,
        "conn_id": obj.get("uid"),
        "host": obj.get("_node_name"),
        "source": "zeek",
    }

"""Writers: Zeek TSV ``conn`` and ``dns`` logs (hourly files, Zeek's headers and footer),
the native ``access.jsonl``, and JSON/YAML documents.

Columns become text with Arrow compute kernels and reach the file through Arrow's CSV writer
(tab-delimited, never quoted), in chunks, so memory stays bounded whatever the hour's size.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import yaml

from hemostat.simulate import flows
from hemostat.simulate.access import ACTIONS, NONE, Events
from hemostat.simulate.dns import QTYPE_NAMES, RCODES, Queries
from hemostat.simulate.flows import Flows
from hemostat.simulate.rhythm import from_us

CHUNK = 1 << 20  # rows formatted and written at a time


def _words(text: str) -> list[str]:
    return text.split()


CONN_FIELDS = _words(
    "ts uid id.orig_h id.orig_p id.resp_h id.resp_p proto service duration orig_bytes "
    "resp_bytes conn_state local_orig local_resp missed_bytes history orig_pkts orig_ip_bytes "
    "resp_pkts resp_ip_bytes tunnel_parents"
)
CONN_TYPES = _words(
    "time string addr port addr port enum string interval count count string bool bool count "
    "string count count count count set[string]"
)
DNS_FIELDS = _words(
    "ts uid id.orig_h id.orig_p id.resp_h id.resp_p proto trans_id rtt query qclass "
    "qclass_name qtype qtype_name rcode rcode_name AA TC RD RA Z answers TTLs rejected"
)
DNS_TYPES = _words(
    "time string addr port addr port enum count interval string count string count string "
    "count string bool bool bool bool count vector[string] vector[interval] bool"
)
_OPTIONS = pa_csv.WriteOptions(include_header=False, delimiter="\t", quoting_style="none")
_BASE62 = np.frombuffer(
    b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", dtype=np.uint8
)


def stamp(us: int) -> str:
    """Zeek's rotation time format, e.g. ``2023-06-12-05-00-00`` (UTC)."""
    return from_us(us).strftime("%Y-%m-%d-%H-%M-%S")


class ZeekLog:
    """One Zeek TSV log file: header, rows appended in chunks, ``#close`` footer."""

    def __init__(self, path: Path, kind: str, opened: int, closed: int) -> None:
        fields, types = (CONN_FIELDS, CONN_TYPES) if kind == "conn" else (DNS_FIELDS, DNS_TYPES)
        self.path, self.closed = path, closed
        self.sink = pa.OSFile(str(path), "wb")
        head = [
            "#separator \\x09",
            "#set_separator\t,",
            "#empty_field\t(empty)",
            "#unset_field\t-",
            f"#path\t{kind}",
            f"#open\t{stamp(opened)}",
            "#fields\t" + "\t".join(fields),
            "#types\t" + "\t".join(types),
        ]
        self.sink.write(("\n".join(head) + "\n").encode())
        self.writer: pa_csv.CSVWriter | None = None

    def write(self, table: pa.Table) -> None:
        if self.writer is None:
            self.writer = pa_csv.CSVWriter(self.sink, table.schema, write_options=_OPTIONS)
        self.writer.write_table(table)

    def __enter__(self) -> ZeekLog:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.writer is not None:
            self.writer.close()
        self.sink.write(f"#close\t{stamp(self.closed)}\n".encode())
        self.sink.close()


def write_conn(
    log: ZeekLog, batch: Flows, addresses: pa.StringArray, internal: npt.NDArray[np.bool_]
) -> None:
    for lo in range(0, len(batch), CHUNK):
        part = Flows(*(getattr(batch, f)[lo : lo + CHUNK] for f in Flows.__dataclass_fields__))
        log.write(conn_table(part, addresses, internal))


def conn_table(b: Flows, addresses: pa.StringArray, internal: npt.NDArray[np.bool_]) -> pa.Table:
    """The batch as the 21 text/number columns of a Zeek conn.log."""
    opkts, rpkts = flows.packets(b)
    header = np.where(b.proto == flows.TCP, 40, 28)
    silent = (b.ob == 0) & (b.rb == 0) & (b.state != flows.STATE["SF"])
    history = np.where(b.proto == flows.TCP, b.state, b.state + len(flows.STATES))
    cols = [
        time_text(b.ts),
        uid_text(b.uid),
        addresses.take(pa.array(b.src)),
        b.sport,
        addresses.take(pa.array(b.dst)),
        b.dport,
        _pick(flows.PROTOS, b.proto),
        _pick(flows.SERVICES, b.service),
        _unset(time_text(b.dur), b.dur == 0),
        _unset(b.ob, silent),
        _unset(b.rb, silent),
        _pick(flows.STATES, b.state),
        _pick(("F", "T"), internal[b.src]),
        _pick(("F", "T"), internal[b.dst]),
        np.zeros(len(b), np.int8),
        _pick(flows.HISTORY_TCP + flows.HISTORY_UDP, history),
        opkts,
        b.ob + opkts * header,
        rpkts,
        b.rb + rpkts * header,
        _const("(empty)", len(b)),
    ]
    return pa.table(cols, names=CONN_FIELDS)


def write_dns(log: ZeekLog, q: Queries, addresses: pa.StringArray) -> None:
    for lo in range(0, len(q), CHUNK):
        log.write(dns_table(q, addresses, lo, min(len(q), lo + CHUNK)))


def dns_table(q: Queries, addresses: pa.StringArray, lo: int, hi: int) -> pa.Table:
    """Rows ``lo:hi`` of the queries as the 24 columns of a Zeek dns.log."""
    s, n = slice(lo, hi), hi - lo
    answered = q.rtt[s] >= 0
    codes = sorted(QTYPE_NAMES)
    cols = [
        time_text(q.ts[s]),
        uid_text(q.uid[s]),
        addresses.take(pa.array(q.src[s])),
        q.sport[s],
        addresses.take(pa.array(q.dst[s])),
        np.full(n, 53, np.int32),
        _const("udp", n),
        q.trans_id[s],
        _unset(time_text(np.maximum(q.rtt[s], 0)), ~answered),
        q.query.slice(lo, n),
        np.ones(n, np.int8),
        _const("C_INTERNET", n),
        q.qtype[s],
        _pick(tuple(QTYPE_NAMES[c] for c in codes), np.searchsorted(codes, q.qtype[s])),
        q.rcode[s],
        _pick((RCODES[0], RCODES[3]), q.rcode[s] == 3),
        _const("F", n),
        _const("F", n),
        _const("T", n),
        _pick(("F", "T"), answered),
        np.zeros(n, np.int8),
        q.answer.slice(lo, n),
        q.ttl.slice(lo, n),
        _const("F", n),
    ]
    return pa.table(cols, names=DNS_FIELDS)


def time_text(us: npt.NDArray[np.int64]) -> pa.Array:
    """Non-negative microsecond times as Zeek writes them: seconds, a dot, six digits.

    Digits go column by column into a right-aligned byte matrix (the seconds through a
    table of the batch's range of seconds), then leading padding is squeezed out: no
    per-row formatting, whatever the number of rows.
    """
    n = len(us)
    seconds, micros = np.divmod(us, 1_000_000)
    digits = np.searchsorted(_POWERS, seconds, side="right") + 1
    most = int(digits.max(initial=1))
    matrix = np.empty((n, most + 7), np.uint8)
    matrix[:, most] = ord(".")
    _columns(matrix, micros.astype(np.int32), range(most + 6, most, -1))
    low, high = int(seconds.min(initial=0)), int(seconds.max(initial=0))
    if high - low < 1 << 20:  # a table of every second in the range, gathered by row
        table = np.empty((high - low + 1, most), np.uint8)
        _columns(table, np.arange(low, high + 1), range(most - 1, -1, -1))
        matrix[:, :most] = table[seconds - low]
    else:
        _columns(matrix, seconds, range(most - 1, -1, -1))
    if int(digits.min(initial=most)) == most:
        return _fixed(matrix)
    keep = np.arange(most + 7)[None, :] >= (most - digits)[:, None]
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(digits + 7, out=offsets[1:])
    return pa.StringArray.from_buffers(
        n, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(matrix[keep])
    )


_POWERS = 10 ** np.arange(1, 19, dtype=np.int64)


def _columns(matrix: npt.NDArray[np.uint8], value: npt.NDArray[Any], where: range) -> None:
    """Decimal digits of ``value``, least significant first, into columns ``where``."""
    x = value
    for column in where:
        q = x // 10
        matrix[:, column] = x - q * 10 + 48
        x = q


def _fixed(matrix: npt.NDArray[np.uint8]) -> pa.Array:
    """A string array from a matrix of bytes, one row per string."""
    n, width = matrix.shape
    offsets = np.arange(0, n * width + 1, width, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(matrix.tobytes()))


def uid_text(uid: npt.NDArray[np.uint64]) -> pa.Array:
    """Zeek-style connection uids: ``C`` and 17 base-62 characters, one per distinct ``uid``
    (its four 16-bit limbs as three characters each, then five from a hash of it)."""
    n = len(uid)
    out = np.empty(n, dtype=[("c", "S1"), *((f"l{i}", "S3") for i in range(5)), ("t", "S2")])
    out["c"] = b"C"
    for i in range(4):
        out[f"l{i}"] = _BASE62_3[((uid >> np.uint64(16 * i)) & np.uint64(0xFFFF)).astype(np.intp)]
    y = flows.mix(uid)
    out["l4"] = _BASE62_3[(y % np.uint64(62**3)).astype(np.intp)]
    out["t"] = _BASE62_2[((y >> np.uint64(40)) % np.uint64(62**2)).astype(np.intp)]
    return _fixed(out.view(np.uint8).reshape(n, 18))


def _base62_table(width: int) -> npt.NDArray[np.bytes_]:
    """Every ``width``-character base-62 string, indexed by its value."""
    values = np.arange(62**width)
    chars = [_BASE62[(values // 62**k) % 62] for k in range(width - 1, -1, -1)]
    return np.ascontiguousarray(np.stack(chars, axis=1)).view(f"S{width}").ravel()


_BASE62_3 = _base62_table(3)
_BASE62_2 = _base62_table(2)


def _pick(values: tuple[str, ...], index: npt.NDArray[Any]) -> pa.Array:
    return pa.array(values, pa.string()).take(pa.array(np.asarray(index, np.int32)))


def _const(value: str, n: int) -> pa.Array:
    return pa.array([value], pa.string()).take(pa.array(np.zeros(n, np.int32)))


def _unset(values: Any, mask: npt.NDArray[np.bool_]) -> pa.Array:
    """``values`` as text, ``-`` (Zeek's unset field) where ``mask``."""
    text = values if isinstance(values, pa.Array) else pc.cast(pa.array(values), pa.string())
    return pc.if_else(pa.array(mask), "-", text)


def access_lines(ev: Events, addresses: pa.StringArray) -> pa.Array:
    """One JSON object per event, keys in the native order, each ending with a newline."""
    stamp_ = pc.strftime(
        pa.array(ev.ts).cast(pa.timestamp("us", tz="UTC")), format="%Y-%m-%dT%H:%M:%S"
    )
    client = pc.binary_join_element_wise(
        '"', addresses.take(pa.array(np.maximum(ev.client, 0))), '"', ""
    )
    return pc.binary_join_element_wise(
        '{"ts":"',
        stamp_,
        'Z","host":"',
        addresses.take(pa.array(ev.host)),
        '","user":"',
        ev.user,
        '","process":"',
        ev.process,
        '","action":"',
        _pick(tuple(ACTIONS), ev.action),
        '","object":"',
        ev.object,
        '","rows":',
        _null(ev.rows),
        ',"bytes":',
        _null(ev.bytes),
        ',"client_ip":',
        pc.if_else(pa.array(ev.client == NONE), "null", client),
        "}\n",
        "",
    )


def _null(values: npt.NDArray[np.int64]) -> pa.Array:
    return pc.if_else(pa.array(values == NONE), "null", pc.cast(pa.array(values), pa.string()))


def text_bytes(lines: pa.Array) -> bytes:
    """The text of a string array, concatenated (lines already end with a newline)."""
    if not len(lines):
        return b""
    offsets = np.frombuffer(lines.buffers()[1], np.int32, len(lines) + 1, lines.offset * 4)
    return memoryview(lines.buffers()[2])[int(offsets[0]) : int(offsets[-1])].tobytes()


def write_json(path: Path, document: Any) -> None:
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def write_yaml(path: Path, document: Any) -> None:
    text = yaml.dump(
        document,
        Dumper=yaml.CSafeDumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=None,
        width=120,
    )
    path.write_text(text, encoding="utf-8")


def iso(us: int) -> str:
    """ISO 8601 UTC with a ``Z``, e.g. ``2023-06-12T05:00:00.123456Z``."""
    moment: datetime = from_us(us)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")

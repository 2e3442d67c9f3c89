"""Suricata EVE JSON (``eve.json``): ``flow`` and ``netflow`` events become flows, ``dns``
events become DNS rows; every other event type (alert, http, tls, fileinfo, stats, …) is
counted as skipped.

- ``flow`` events are bidirectional: ``src_*`` is the client, ``bytes_toserver`` is what it
  sent (``bytes_out``). Suricata counts whole packets (headers included), not payload.
- ``netflow`` events are unidirectional, one per direction, the sender as ``src_ip``: each is
  one flow row whose ``bytes_out``/``pkts_out`` are that direction's counts and whose
  ``bytes_in``/``pkts_in`` are NULL (not measured by that record). Both halves share
  ``conn_id`` (the ``flow_id``), so a reply is never mistaken for the client's upload.
- DNS: one row per transaction (a question and its response). Events are folded by
  ``(flow_id, DNS id)`` in file order: a question opens a transaction (the same question
  again before any response is a retransmission or duplicate capture and is merged); a
  response fills ``rcode`` and ``answers`` of the open transaction (answers de-duplicated,
  so repeated responses and Suricata 3/4 one-record-per-event answers add up to one list);
  a response with no question seen becomes a row of its own. EVE DNS versions 1, 2 and 3
  (``query``/``answer``, ``request``/``response`` with ``queries``) are understood.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import duckdb
import orjson
import pyarrow as pa

from hemostat.ingest.reader import Columns, Log, Reader, json_lines, port
from hemostat.schema import PROTO_NAMES, QTYPE_NAMES, Sample, Table

SOURCE = "suricata"

#: ports of DNS servers (plain, over TLS, multicast): the other side is the client
_DNS_PORTS = frozenset({53, 853, 5353})
_QUESTION = frozenset({"query", "request"})
_RESPONSE = frozenset({"answer", "response"})
#: Suricata protocol names that hemostat spells differently
_PROTO_ALIASES = {"ipv6-icmp": "icmp6", "icmpv6": "icmp6"}
_BAD_EVENT = (KeyError, ValueError, TypeError, AttributeError, OverflowError)


class SuricataEve(Reader):
    id: ClassVar[str] = "suricata_eve"
    description: ClassVar[str] = "Suricata EVE JSON lines: flow/netflow events, dns events"
    tables: ClassVar[tuple[Table, ...]] = (Table.FLOWS, Table.DNS)

    def sniff(self, head: Sample) -> bool:
        text = head.head.lstrip()
        if not text.startswith(b"{"):
            return False
        line = text.split(b"\n", 1)[0]
        try:
            first = orjson.loads(line)
        except orjson.JSONDecodeError:  # a first line longer than the sample
            return b'"event_type"' in line and b'"timestamp"' in line
        return isinstance(first, dict) and "event_type" in first and "timestamp" in first

    def read(
        self, path: Path, con: duckdb.DuckDBPyConnection, log: Log
    ) -> Iterator[tuple[Table, Any]]:
        flows, dns = Columns(Table.FLOWS), _DnsTransactions()
        for lineno, obj in json_lines(path, log):
            kind = obj.get("event_type")
            try:
                if kind == "flow":
                    flows.add(**_flow(obj))
                elif kind == "netflow":
                    flows.add(**_netflow(obj))
                elif kind == "dns":
                    dns.add(obj)
                elif isinstance(kind, str):
                    log.skip(f"suricata {kind} event")
                else:
                    log.bad_line(lineno, "not a Suricata EVE event: no event_type")
            except _BAD_EVENT as exc:
                log.bad_line(lineno, f"bad Suricata {kind} event: {_why(exc)}")
        if len(flows):
            yield Table.FLOWS, flows.arrow()
        if dns.rows:
            yield Table.DNS, dns.arrow()


def _why(exc: Exception) -> str:
    return f"missing {exc}" if isinstance(exc, KeyError) else str(exc)


# ---- fields ----------------------------------------------------------------------------------


def _ts(value: Any) -> datetime:
    """An EVE timestamp (``2022-05-08T10:09:30.309072+0300``) as an aware UTC datetime."""
    if not isinstance(value, str):
        raise TypeError(f"timestamp {value!r} is not a string")
    parsed = datetime.fromisoformat(value)
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _proto(value: Any) -> str | None:
    """``TCP`` → ``tcp``; a protocol number (Suricata prints unknown ones so) → its name."""
    if value is None:
        return None
    name = str(value).strip().lower()
    if name.isdigit():
        return PROTO_NAMES.get(int(name), str(int(name)))
    return _PROTO_ALIASES.get(name, name)


def _service(value: Any) -> str | None:
    """``app_proto``; ``failed`` (protocol detection gave up) means unknown."""
    return None if value in (None, "", "failed", "unknown") else str(value)


def _host(obj: dict[str, Any]) -> str | None:
    host = obj.get("host") or obj.get("sensor_name")
    return None if host is None else str(host)


def _conn_id(obj: dict[str, Any]) -> str | None:
    flow_id = obj.get("flow_id")
    return None if flow_id is None else str(flow_id)


def _endpoints(obj: dict[str, Any]) -> dict[str, Any]:
    return {
        "src_ip": str(obj["src_ip"]),
        "src_port": port(obj.get("src_port")),
        "dst_ip": str(obj["dest_ip"]),
        "dst_port": port(obj.get("dest_port")),
        "proto": _proto(obj.get("proto")),
        "service": _service(obj.get("app_proto")),
        "conn_id": _conn_id(obj),
        "community_id": obj.get("community_id"),
        "host": _host(obj),
        "source": SOURCE,
        "open": False,  # NULL would let the store merge rows sharing a conn_id as snapshots
    }


def _flow(obj: dict[str, Any]) -> dict[str, Any]:
    flow = obj["flow"]
    return {
        **_endpoints(obj),
        "ts": _ts(flow["start"]),
        "end_ts": _ts(flow.get("end", flow["start"])),
        "bytes_out": int(flow.get("bytes_toserver", 0)),
        "bytes_in": int(flow.get("bytes_toclient", 0)),
        "pkts_out": int(flow.get("pkts_toserver", 0)),
        "pkts_in": int(flow.get("pkts_toclient", 0)),
        "conn_state": flow.get("state"),
    }


def _netflow(obj: dict[str, Any]) -> dict[str, Any]:
    netflow = obj["netflow"]
    return {
        **_endpoints(obj),
        "ts": _ts(netflow["start"]),
        "end_ts": _ts(netflow.get("end", netflow["start"])),
        "bytes_out": int(netflow.get("bytes", 0)),
        "pkts_out": int(netflow.get("pkts", 0)),
    }


# ---- DNS -------------------------------------------------------------------------------------


def _question(dns: dict[str, Any]) -> tuple[str | None, str | None]:
    """``(name, type)`` asked: ``queries[0]`` (EVE v3) or ``rrname``/``rrtype`` (v1, v2)."""
    queries = dns.get("queries")
    asked = queries[0] if isinstance(queries, list) and queries else dns
    name, qtype = asked.get("rrname"), asked.get("rrtype")
    if isinstance(qtype, int) or (isinstance(qtype, str) and qtype.isdigit()):
        qtype = QTYPE_NAMES.get(int(qtype), str(qtype))
    return (None if name is None else str(name)), (None if qtype is None else str(qtype))


def _answers(dns: dict[str, Any]) -> list[str]:
    """Record data of a response: ``answers`` (detailed), ``grouped``, or v1 ``rdata``."""
    if isinstance(dns.get("answers"), list):
        return [str(a["rdata"]) for a in dns["answers"] if isinstance(a, dict) and "rdata" in a]
    if isinstance(dns.get("grouped"), dict):
        groups = [v for v in dns["grouped"].values() if isinstance(v, list)]
        return [str(d) for group in groups for d in group if isinstance(d, str | int)]
    return [str(dns["rdata"])] if "rdata" in dns else []


def _client_server(obj: dict[str, Any]) -> tuple[str, str]:
    """``(client, server)`` of a DNS event, whichever way Suricata wrote the addresses."""
    src, dst = str(obj["src_ip"]), str(obj["dest_ip"])
    if obj.get("src_port") in _DNS_PORTS and obj.get("dest_port") not in _DNS_PORTS:
        return dst, src
    return src, dst


@dataclass(slots=True)
class _Transaction:
    row: dict[str, Any]
    answers: list[str] = field(default_factory=list)
    answered: bool = False

    def respond(self, rcode: Any, answers: list[str]) -> None:
        self.answered = True
        if rcode is not None:
            self.row["rcode"] = str(rcode)
        self.answers.extend(a for a in answers if a not in self.answers)


class _DnsTransactions:
    """DNS events folded into one row per transaction (see the module docstring)."""

    def __init__(self) -> None:
        self.rows: list[_Transaction] = []
        self.current: dict[tuple[Any, Any], _Transaction] = {}

    def add(self, obj: dict[str, Any]) -> None:
        dns = obj["dns"]
        kind = dns["type"]
        if kind not in _QUESTION and kind not in _RESPONSE:
            raise ValueError(f"unknown dns type {kind!r}")
        key = (obj.get("flow_id") or _client_server(obj), dns.get("id"))
        current = self.current.get(key)
        if kind in _QUESTION:
            if current and not current.answered and current.row["query"] == _question(dns)[0]:
                return  # retransmitted (or twice captured) question
            self.current[key] = self._open(obj, dns)
        else:
            rcode, answers = dns.get("rcode"), _answers(dns)
            if current is None:
                current = self.current[key] = self._open(obj, dns)
            current.respond(rcode, answers)

    def _open(self, obj: dict[str, Any], dns: dict[str, Any]) -> _Transaction:
        (client, server), (query, qtype) = _client_server(obj), _question(dns)
        transaction = _Transaction({
            "ts": _ts(obj["timestamp"]), "src_ip": client, "dst_ip": server, "query": query,
            "qtype": qtype, "rcode": None, "conn_id": _conn_id(obj), "host": _host(obj),
            "source": SOURCE,
        })  # fmt: skip
        self.rows.append(transaction)
        return transaction

    def arrow(self) -> pa.Table:
        columns = Columns(Table.DNS)
        for t in self.rows:
            columns.add(**t.row, answers=t.answers or None)
        return columns.arrow()

"""Canonical tables and records (DESIGN §4). Column names are contracts: add, never rename.

Imports nothing else of hemostat, so every layer (agent included) can use it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import pyarrow as pa


class Table(enum.StrEnum):
    FLOWS = "flows"
    DNS = "dns"
    ACCESS = "access"


class Action(enum.StrEnum):
    """What a data-access event did to its object."""

    READ = "read"
    QUERY = "query"
    EXPORT = "export"
    COPY = "copy"
    LOGIN = "login"


class Category(enum.StrEnum):
    """Data categories of a data store (DESIGN §5)."""

    PATIENT = "patient"
    STAFF = "staff"
    FINANCE = "finance"
    RESEARCH = "research"
    OTHER = "other"


_TS = pa.timestamp("us", tz="UTC")

#: one row per connection, or per active-timeout slice of a long connection
FLOWS = pa.schema(
    [
        ("ts", _TS),
        ("end_ts", _TS),
        ("src_ip", pa.string()),
        ("src_port", pa.int32()),
        ("dst_ip", pa.string()),
        ("dst_port", pa.int32()),
        ("proto", pa.string()),
        ("service", pa.string()),
        ("bytes_out", pa.int64()),
        ("bytes_in", pa.int64()),
        ("pkts_out", pa.int64()),
        ("pkts_in", pa.int64()),
        ("conn_state", pa.string()),
        ("conn_id", pa.string()),
        ("community_id", pa.string()),
        ("host", pa.string()),
        ("process", pa.string()),
        ("user", pa.string()),
        ("source", pa.string()),
        # extensions (not in the DESIGN contract, free to grow)
        ("open", pa.bool_()),  # snapshot of a connection still open (Zeek open_conn.log)
        ("ingest_id", pa.int64()),  # which ingested file the row came from
    ]
)

DNS = pa.schema(
    [
        ("ts", _TS),
        ("src_ip", pa.string()),
        ("query", pa.string()),
        ("qtype", pa.string()),
        ("rcode", pa.string()),
        ("answers", pa.list_(pa.string())),
        ("source", pa.string()),
        ("dst_ip", pa.string()),
        ("conn_id", pa.string()),
        ("host", pa.string()),
        ("ingest_id", pa.int64()),
    ]
)

ACCESS = pa.schema(
    [
        ("ts", _TS),
        ("host", pa.string()),
        ("user", pa.string()),
        ("process", pa.string()),
        ("action", pa.string()),
        ("object", pa.string()),
        ("rows", pa.int64()),
        ("bytes", pa.int64()),
        ("client_ip", pa.string()),
        ("source", pa.string()),
        ("pid", pa.int64()),
        ("ingest_id", pa.int64()),
    ]
)

SCHEMAS: dict[Table, pa.Schema] = {Table.FLOWS: FLOWS, Table.DNS: DNS, Table.ACCESS: ACCESS}

#: the keys of one native access JSON Lines record (DESIGN §4), in order
ACCESS_JSON_KEYS = (
    "ts", "host", "user", "process", "action", "object", "rows", "bytes", "client_ip",
)  # fmt: skip

#: IP protocol numbers hemostat names (others are kept as their number)
PROTO_NAMES = {1: "icmp", 6: "tcp", 17: "udp", 47: "gre", 50: "esp", 58: "icmp6", 132: "sctp"}
PROTO_NUMBERS = {name: number for number, name in PROTO_NAMES.items()}

#: DNS query types by number (RFC 1035 and later), for readers that see numbers
QTYPE_NAMES = {
    1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 10: "NULL", 12: "PTR", 15: "MX", 16: "TXT",
    28: "AAAA", 33: "SRV", 35: "NAPTR", 43: "DS", 46: "RRSIG", 47: "NSEC", 48: "DNSKEY",
    64: "SVCB", 65: "HTTPS", 99: "SPF", 252: "AXFR", 255: "ANY", 257: "CAA",
}  # fmt: skip

#: DNS response codes by number (RFC 1035, 2136, 6895)
RCODE_NAMES = {
    0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED",
    6: "YXDOMAIN", 7: "YXRRSET", 8: "NXRRSET", 9: "NOTAUTH", 10: "NOTZONE",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Sample:
    """A few bytes from the start of an input, for format detection."""

    name: str  # file name (without directories), e.g. "conn.05:00:00-06:00:00.log.gz"
    head: bytes  # first bytes, decompressed
    gzip: bool

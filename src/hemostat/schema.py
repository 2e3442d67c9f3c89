"""Canonical tables and records (DESIGN §4). Column names are contracts: add, never rename.

Imports nothing else of hemostat, so every layer (agent included) can use it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa


def utc_text(moment: datetime) -> str:
    """How hemostat writes a moment in JSON and on the wire (contract §3):
    ``2026-11-23T10:00:00.123456Z``, ISO 8601 in UTC with microseconds."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


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


class Kind(enum.StrEnum):
    """What an incident (or a finding) is about, in the order that names a mixed incident."""

    EXFILTRATION = "exfiltration"
    DNS_TUNNEL = "dns_tunnel"
    C2 = "c2"
    STAGING = "staging"
    THIRD_PARTY_ACCESS = "third_party_access"
    DATA_ACCESS = "data_access"
    THREAT_INTEL = "threat_intel"


class CommandStatus(enum.StrEnum):
    """The result of a command an agent carried out, e.g. a containment step (contract §5)."""

    DONE = "done"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"


class Severity(enum.StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @classmethod
    def of(cls, score: float) -> Severity:
        """Scores are 0-100: ≥ 85 critical, ≥ 65 high, ≥ 40 medium, else low."""
        for bound, severity in ((85, cls.CRITICAL), (65, cls.HIGH), (40, cls.MEDIUM)):
            if score >= bound:
                return severity
        return cls.LOW


#: column types, as plain names so that the agent can validate rows without pyarrow
Type = str  # "timestamp" (UTC, microseconds) | "string" | "int32" | "int64" | "bool" | "strings"

#: every canonical table's columns in order (DESIGN §4 first, then extensions)
COLUMNS: dict[Table, tuple[tuple[str, Type], ...]] = {
    # one row per connection, or per active-timeout slice of a long connection
    Table.FLOWS: (
        ("ts", "timestamp"), ("end_ts", "timestamp"), ("src_ip", "string"),
        ("src_port", "int32"), ("dst_ip", "string"), ("dst_port", "int32"), ("proto", "string"),
        ("service", "string"), ("bytes_out", "int64"), ("bytes_in", "int64"),
        ("pkts_out", "int64"), ("pkts_in", "int64"), ("conn_state", "string"),
        ("conn_id", "string"), ("community_id", "string"), ("host", "string"),
        ("process", "string"), ("user", "string"), ("source", "string"),
        # extensions (not in the DESIGN contract, free to grow)
        ("open", "bool"),  # snapshot of a connection still open (Zeek open_conn.log)
        ("ingest_id", "int64"),  # which ingested file the row came from
    ),
    Table.DNS: (
        ("ts", "timestamp"), ("src_ip", "string"), ("query", "string"), ("qtype", "string"),
        ("rcode", "string"), ("answers", "strings"), ("source", "string"),
        ("dst_ip", "string"), ("conn_id", "string"), ("host", "string"), ("ingest_id", "int64"),
    ),
    Table.ACCESS: (
        ("ts", "timestamp"), ("host", "string"), ("user", "string"), ("process", "string"),
        ("action", "string"), ("object", "string"), ("rows", "int64"), ("bytes", "int64"),
        ("client_ip", "string"), ("source", "string"), ("pid", "int64"), ("ingest_id", "int64"),
    ),
}  # fmt: skip


def arrow_schema(table: Table) -> pa.Schema:
    """The Arrow schema of a canonical table (pyarrow is imported only when asked for)."""
    import pyarrow as pa

    types = {
        "timestamp": pa.timestamp("us", tz="UTC"), "string": pa.string(), "int32": pa.int32(),
        "int64": pa.int64(), "bool": pa.bool_(), "strings": pa.list_(pa.string()),
    }  # fmt: skip
    return pa.schema([(name, types[kind]) for name, kind in COLUMNS[table]])


def __getattr__(name: str) -> Any:
    """``FLOWS``, ``DNS``, ``ACCESS`` and ``SCHEMAS`` (Arrow schemas), built on first use."""
    if name in ("FLOWS", "DNS", "ACCESS"):
        schema = arrow_schema(Table(name.lower()))
        globals()[name] = schema
        return schema
    if name == "SCHEMAS":
        schemas = {t: __getattr__(t.name) for t in Table}
        globals()[name] = schemas
        return schemas
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


#: the keys of one native access JSON Lines record (DESIGN §4), in order
ACCESS_JSON_KEYS = (
    "ts", "host", "user", "process", "action", "object", "rows", "bytes", "client_ip",
)  # fmt: skip

#: IP protocol numbers hemostat names (others are kept as their number)
PROTO_NAMES = {1: "icmp", 6: "tcp", 17: "udp", 47: "gre", 50: "esp", 58: "icmp6", 132: "sctp"}
PROTO_NUMBERS = {name: number for number, name in PROTO_NAMES.items()}

#: DNS query types by number (IANA "Resource Record (RR) TYPEs"), for readers that see numbers
QTYPE_NAMES = {
    1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 10: "NULL", 11: "WKS", 12: "PTR", 13: "HINFO",
    15: "MX", 16: "TXT", 17: "RP", 18: "AFSDB", 24: "SIG", 25: "KEY", 28: "AAAA", 29: "LOC",
    33: "SRV", 35: "NAPTR", 36: "KX", 37: "CERT", 39: "DNAME", 41: "OPT", 42: "APL", 43: "DS",
    44: "SSHFP", 45: "IPSECKEY", 46: "RRSIG", 47: "NSEC", 48: "DNSKEY", 49: "DHCID",
    50: "NSEC3", 51: "NSEC3PARAM", 52: "TLSA", 53: "SMIMEA", 55: "HIP", 59: "CDS",
    60: "CDNSKEY", 61: "OPENPGPKEY", 62: "CSYNC", 63: "ZONEMD", 64: "SVCB", 65: "HTTPS",
    99: "SPF", 108: "EUI48", 109: "EUI64", 249: "TKEY", 250: "TSIG", 251: "IXFR", 252: "AXFR",
    255: "ANY", 256: "URI", 257: "CAA", 32768: "TA", 32769: "DLV",
}  # fmt: skip

#: DNS response codes by number (RFC 1035, 2136, 6895, 8490; 16+ are extended, via EDNS)
RCODE_NAMES = {
    0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED",
    6: "YXDOMAIN", 7: "YXRRSET", 8: "NXRRSET", 9: "NOTAUTH", 10: "NOTZONE", 11: "DSOTYPENI",
    16: "BADVERS", 17: "BADKEY", 18: "BADTIME", 19: "BADMODE", 20: "BADNAME", 21: "BADALG",
    22: "BADTRUNC", 23: "BADCOOKIE",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Sample:
    """A few bytes from the start of an input, for format detection."""

    name: str  # file name (without directories), e.g. "conn.05:00:00-06:00:00.log.gz"
    head: bytes  # first bytes, decompressed
    gzip: bool


@dataclass(frozen=True, slots=True)
class Finding:
    """One detector's verdict about one host (and destination) over one stretch of time."""

    id: str  # stable: the same activity found again keeps its id
    detector: str
    kind: Kind
    ts: datetime
    end_ts: datetime
    host: str  # the internal actor (or the outside source, for supplier access)
    destination: str | None  # an address, a range or a domain
    score: float  # 0-100, after the expected-transfer discount
    bytes_out: int
    attack: tuple[str, ...]
    summary: str  # one sentence a SOC analyst can read aloud
    hosts: tuple[str, ...] = ()  # every internal address involved (lineage), host first
    expected: str | None = None  # name of the matching inventory expected transfer
    evidence: dict[str, Any] = field(default_factory=dict)  # flow ids, figures, baselines

    @property
    def severity(self) -> Severity:
        return Severity.of(self.score)


@dataclass(frozen=True, slots=True)
class Incident:
    """Findings grouped by host chain, destination and time (DESIGN §4 ``incidents``)."""

    id: str
    kind: Kind
    score: float
    hosts: tuple[str, ...]
    destinations: tuple[str, ...]
    start: datetime
    end: datetime
    bytes_out: int
    detectors: tuple[str, ...]
    attack: tuple[str, ...]
    summary: str
    findings: tuple[str, ...]  # finding ids
    expected: tuple[str, ...] = ()  # expected transfers that lowered the score

    @property
    def severity(self) -> Severity:
        return Severity.of(self.score)

"""pcap and pcapng captures, turned into flows and DNS rows by ``tshark`` (no Zeek needed).

One ``tshark -T fields`` pass writes one line per packet to a temporary file; DuckDB reads it
into a temporary table and builds both tables in SQL, so a capture never sits in Python.

Flows: TCP per ``tcp.stream``; UDP per ``udp.stream``, cut after 60 s without a packet; other
protocols (ICMP, IGMP, GRE, …) per protocol and address pair, cut the same way, with the first
packet's ICMP type and code as ports (as Zeek does). The originator sent the first bare SYN,
else the first packet, unless that packet goes from a port below 1024 to one above (a reply
to a request sent before the capture began). Bytes are payload bytes (TCP segment data, UDP
data, the IP payload otherwise). ``conn_state`` follows Zeek (S0 S1 S2 S3 SF REJ RSTO RSTR
OTH). Packets inside ICMP errors belong to the ICMP flow; non-IP frames (ARP, …) are skipped.

DNS: one row per query message (``dns.flags.response == 0``, mDNS and LLMNR included), with
the first reply carrying the same transaction id on the reversed 5-tuple within 60 s.
Answers are the A, AAAA, CNAME, PTR, MX, NS, TXT and SRV data of the reply (tshark does not
tell answer from additional records, so glue addresses may appear).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import duckdb

from hemostat.errors import IngestError
from hemostat.ingest.reader import REJECTS, Log, Reader, require_tool, run_tool, take_rejects
from hemostat.schema import PROTO_NAMES, QTYPE_NAMES, RCODE_NAMES, Sample, Table

#: pcap (µs and ns, both byte orders, and the "modified" variant) and pcapng magic numbers
_MAGIC = (
    b"\xa1\xb2\xc3\xd4", b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\x3c\x4d", b"\x4d\x3c\xb2\xa1",
    b"\xa1\xb2\xcd\x34", b"\x34\xcd\xb2\xa1",
)  # fmt: skip
_PCAPNG = b"\x0a\x0d\x0d\x0a"
_PCAPNG_ORDER = (b"\x1a\x2b\x3c\x4d", b"\x4d\x3c\x2b\x1a")

#: gap that ends a UDP or other non-TCP flow, in seconds (Zeek's UDP inactivity timeout)
INACTIVITY = 60
#: how long after a query its reply may come, in seconds
REPLY_WINDOW = 60

#: (column, tshark field), one tshark output column each
FIELDS = (
    ("n", "frame.number"), ("t", "frame.time_epoch"), ("protos", "frame.protocols"),
    ("ip_src", "ip.src"), ("ip_dst", "ip.dst"), ("ip6_src", "ipv6.src"),
    ("ip6_dst", "ipv6.dst"), ("ip_proto", "ip.proto"), ("ip6_nxt", "ipv6.nxt"),
    ("ip_len", "ip.len"), ("ip_hlen", "ip.hdr_len"), ("ip6_plen", "ipv6.plen"),
    ("tcp_stream", "tcp.stream"), ("tcp_sport", "tcp.srcport"), ("tcp_dport", "tcp.dstport"),
    ("tcp_len", "tcp.len"), ("tcp_flags", "tcp.flags"), ("udp_stream", "udp.stream"),
    ("udp_sport", "udp.srcport"), ("udp_dport", "udp.dstport"), ("udp_len", "udp.length"),
    ("icmp_type", "icmp.type"), ("icmp_code", "icmp.code"), ("icmp6_type", "icmpv6.type"),
    ("icmp6_code", "icmpv6.code"), ("dns_id", "dns.id"), ("dns_resp", "dns.flags.response"),
    ("dns_rcode", "dns.flags.rcode"), ("dns_qname", "dns.qry.name"),
    ("dns_qtype", "dns.qry.type"), ("a", "dns.a"), ("aaaa", "dns.aaaa"), ("cname", "dns.cname"),
    ("ptr", "dns.ptr.domain_name"), ("mx", "dns.mx.mail_exchange"), ("ns", "dns.ns"),
    ("txt", "dns.txt"), ("srv", "dns.srv.target"),
)  # fmt: skip
_ANSWERS = ("a", "aaaa", "cname", "ptr", "mx", "ns", "txt", "srv")

#: tshark's name of the first protocol above IP, as hemostat names it
_TRANSPORTS = {"icmp": "icmp", "icmpv6": "icmp6", "igmp": "igmp", "gre": "gre", "esp": "esp",
               "sctp": "sctp", "tcp": "tcp", "udp": "udp"}  # fmt: skip
#: tshark application protocols as Zeek ``service`` names
_SERVICES = {
    "dns": "dns", "mdns": "dns", "llmnr": "dns", "http": "http", "tls": "ssl", "ssh": "ssh",
    "smtp": "smtp", "ftp": "ftp", "dhcp": "dhcp", "ntp": "ntp", "kerberos": "krb", "smb": "smb",
    "smb2": "smb", "ldap": "ldap", "rdp": "rdp", "quic": "quic", "snmp": "snmp", "sip": "sip",
    "mysql": "mysql", "pgsql": "postgresql", "imap": "imap", "pop": "pop3", "dcerpc": "dce_rpc",
}  # fmt: skip

_AGG = "chr(31)"  # tshark's separator between occurrences of one field (ASCII unit separator)


def _first(column: str, cast: str = "VARCHAR") -> str:
    return f"TRY_CAST(nullif(split_part({column}, {_AGG}, 1), '') AS {cast})"


def _names(expr: str, names: Mapping[Any, str], other: str | None = None) -> str:
    """SQL naming the value of ``expr`` from ``names`` (else ``other``, else the value)."""
    cases = " ".join(f"WHEN {k!r} THEN '{v}'" for k, v in names.items())
    return f"CASE {expr} {cases} ELSE {other or f'{expr}::VARCHAR'} END"


def _packets_sql(tsv: Path) -> str:
    """One row per IP packet: its flow key (``fkey``), direction-free facts, DNS fields."""
    columns = "{" + ", ".join(f"'{c}': 'VARCHAR'" for c, _ in FIELDS) + "}"
    answers = ", ".join(f"string_split(coalesce({c}, ''), {_AGG})" for c in _ANSWERS)
    number = f"coalesce({_first('ip_proto', 'INTEGER')}, {_first('ip6_nxt', 'INTEGER')})"
    return f"""
    WITH raw AS (
        SELECT * FROM read_csv('{str(tsv).replace("'", "''")}', delim='\t', header=false,
            quote='', escape='', columns={columns}, auto_detect=false, ignore_errors=true,
            store_rejects=true, rejects_table='{REJECTS["rejects_table"]}',
            rejects_scan='{REJECTS["rejects_scan"]}')
    ), p AS (
        SELECT n::BIGINT AS n, t::DOUBLE AS t, *
            EXCLUDE (n, t),
            regexp_extract(protos, '(?:^|:)(?:ip|ipv6)(?::ipv6\\.[a-z_]+)*:([a-z0-9_]+)', 1)
                AS tok,
            regexp_extract(protos, ':(?:tcp|udp):([a-z0-9_]+)', 1) AS app
        FROM raw
    ), k AS (
        SELECT n, to_timestamp(t) AS ts, t,
            CASE WHEN tok = 'tcp' AND tcp_stream IS NOT NULL THEN 'tcp'
                 WHEN tok = 'udp' AND udp_stream IS NOT NULL THEN 'udp' ELSE 'other' END AS kind,
            coalesce(nullif(split_part(ip_src, {_AGG}, 1), ''), {_first("ip6_src")}) AS src,
            coalesce(nullif(split_part(ip_dst, {_AGG}, 1), ''), {_first("ip6_dst")}) AS dst,
            coalesce({_names("tok", _TRANSPORTS, "NULL")}, {_names(number, PROTO_NAMES)}) AS proto,
            tcp_stream, udp_stream, {_names("app", _SERVICES, "NULL")} AS service,
            CASE kind WHEN 'tcp' THEN {_first("tcp_sport", "INTEGER")}
                WHEN 'udp' THEN {_first("udp_sport", "INTEGER")}
                ELSE coalesce({_first("icmp_type", "INTEGER")}, {_first("icmp6_type", "INTEGER")})
            END AS sport,
            CASE kind WHEN 'tcp' THEN {_first("tcp_dport", "INTEGER")}
                WHEN 'udp' THEN {_first("udp_dport", "INTEGER")}
                ELSE coalesce({_first("icmp_code", "INTEGER")}, {_first("icmp6_code", "INTEGER")})
            END AS dport,
            CASE kind WHEN 'tcp' THEN {_first("tcp_len", "BIGINT")}
                WHEN 'udp' THEN greatest({_first("udp_len", "BIGINT")} - 8, 0)
                ELSE coalesce({_first("ip_len", "BIGINT")} - {_first("ip_hlen", "BIGINT")},
                              {_first("ip6_plen", "BIGINT")})
            END AS payload,
            coalesce({_first("tcp_flags", "INTEGER")}, 0) AS flags,
            CASE WHEN kind <> 'other' THEN {_first("dns_id")} END AS dns_id,
            {_first("dns_resp")} IN ('1', 'True') AS dns_resp,
            {_first("dns_rcode", "INTEGER")} AS dns_rcode, {_first("dns_qname")} AS dns_qname,
            {_first("dns_qtype", "INTEGER")} AS dns_qtype,
            CASE WHEN {_first("dns_resp")} IN ('1', 'True') THEN
                nullif(list_filter(flatten([{answers}]), lambda x: x <> ''), []::VARCHAR[]) END
                AS answers
        FROM p
    ), g AS (
        SELECT *, CASE kind WHEN 'tcp' THEN 't' || tcp_stream WHEN 'udp' THEN 'u' || udp_stream
                ELSE proto || ' ' || least(src, dst) || ' ' || greatest(src, dst) END AS key,
            t - lag(t) OVER (PARTITION BY key ORDER BY n) AS gap
        FROM k WHERE src IS NOT NULL
    )
    SELECT * EXCLUDE (gap, tcp_stream, udp_stream),
        key || '#' || sum(CASE WHEN kind <> 'tcp' AND gap > {INACTIVITY} THEN 1 ELSE 0 END)
            OVER (PARTITION BY key ORDER BY n ROWS UNBOUNDED PRECEDING) AS fkey
    FROM g
    """


_FLOWS_SQL = """
    WITH head AS (
        SELECT fkey, arg_min(src, n) AS src, arg_min(dst, n) AS dst, arg_min(sport, n) AS sport,
            arg_min(dport, n) AS dport,
            arg_min(src, n) FILTER (WHERE kind = 'tcp' AND flags & 18 = 2) AS syn_src,
            arg_min(sport, n) FILTER (WHERE kind = 'tcp' AND flags & 18 = 2) AS syn_sport,
            any_value(kind) <> 'other' AND arg_min(sport, n) < 1024
                AND arg_min(dport, n) >= 1024 AS from_server
        FROM _hemostat_pkt GROUP BY fkey
    ), o AS (
        SELECT fkey,
            CASE WHEN syn_src IS NOT NULL THEN syn_src WHEN from_server THEN dst ELSE src END
                AS oip,
            CASE WHEN syn_src IS NOT NULL THEN syn_sport WHEN from_server THEN dport ELSE sport
                END AS oport
        FROM head
    ), d AS (
        SELECT p.*, o.oip, o.oport,
            p.src = o.oip AND (p.kind = 'other' OR p.sport IS NOT DISTINCT FROM o.oport) AS fwd,
            (flags & 2) > 0 AS syn, (flags & 16) > 0 AS ack, (flags & 4) > 0 AS rst,
            (flags & 1) > 0 AS fin
        FROM _hemostat_pkt p JOIN o USING (fkey)
    ), f AS (
        SELECT fkey, any_value(kind) AS kind, min(ts) AS ts, max(ts) AS end_ts,
            any_value(oip) AS src_ip, any_value(oport) AS src_port,
            coalesce(arg_min(dst, n) FILTER (WHERE fwd), arg_min(src, n) FILTER (WHERE NOT fwd))
                AS dst_ip,
            coalesce(arg_min(dport, n) FILTER (WHERE fwd AND kind <> 'other'),
                     arg_min(sport, n) FILTER (WHERE NOT fwd AND kind <> 'other'),
                     arg_min(dport, n)) AS dst_port,
            any_value(proto) AS proto, arg_min(service, n) AS service,
            coalesce(sum(payload) FILTER (WHERE fwd), 0) AS bytes_out,
            coalesce(sum(payload) FILTER (WHERE NOT fwd), 0) AS bytes_in,
            count(*) FILTER (WHERE fwd) AS pkts_out, count(*) FILTER (WHERE NOT fwd) AS pkts_in,
            bool_or(fwd AND syn AND NOT ack) AS syn_o, bool_or(NOT fwd AND syn AND ack) AS synack,
            bool_or(fwd AND rst) AS rst_o, bool_or(NOT fwd AND rst) AS rst_r,
            bool_or(fwd AND fin) AS fin_o, bool_or(NOT fwd AND fin) AS fin_r
        FROM d GROUP BY fkey
    )
    SELECT fkey, ts, end_ts, src_ip, src_port, dst_ip, dst_port, proto, service,
        bytes_out, bytes_in, pkts_out, pkts_in,
        CASE WHEN kind <> 'tcp' THEN CASE WHEN pkts_in > 0 THEN 'SF' ELSE 'S0' END
             WHEN NOT syn_o THEN 'OTH'
             WHEN pkts_in = 0 THEN 'S0'
             WHEN NOT synack THEN CASE WHEN rst_r THEN 'REJ' ELSE 'OTH' END
             WHEN rst_o THEN 'RSTO'
             WHEN rst_r THEN 'RSTR'
             WHEN fin_o AND fin_r THEN 'SF'
             WHEN fin_o THEN 'S2'
             WHEN fin_r THEN 'S3'
             ELSE 'S1' END AS conn_state,
        'P' || left(md5(concat_ws('|', src_ip, src_port, dst_ip, dst_port, proto, epoch_us(ts))),
                    17) AS conn_id
    FROM f
"""

_DNS_SQL = f"""
    WITH m AS (
        SELECT ts, fkey, dns_resp, dns_rcode, dns_qname, dns_qtype, answers, src, dst,
            concat_ws('|', kind, src, sport, dst, dport, dns_id) AS k,
            concat_ws('|', kind, dst, dport, src, sport, dns_id) AS reply_k
        FROM _hemostat_pkt WHERE dns_id IS NOT NULL
    ), q AS (SELECT * FROM m WHERE NOT dns_resp),
    r AS (SELECT reply_k, ts AS rts, dns_rcode AS rcode, answers AS ans FROM m WHERE dns_resp)
    SELECT q.ts, q.src AS src_ip, q.dst AS dst_ip, q.dns_qname AS query,
        {_names("q.dns_qtype", QTYPE_NAMES)} AS qtype,
        CASE WHEN r.rts - q.ts <= INTERVAL {REPLY_WINDOW} SECOND
             THEN {_names("r.rcode", RCODE_NAMES)} END AS rcode,
        CASE WHEN r.rts - q.ts <= INTERVAL {REPLY_WINDOW} SECOND THEN r.ans END AS answers,
        f.conn_id, NULL::VARCHAR AS host, 'tshark' AS source
    FROM q ASOF LEFT JOIN r ON q.k = r.reply_k AND q.ts <= r.rts
    LEFT JOIN _hemostat_pflows f USING (fkey)
"""

_CANONICAL = """ts, end_ts, src_ip, src_port, dst_ip, dst_port, proto, service, bytes_out,
    bytes_in, pkts_out, pkts_in, conn_state, conn_id, NULL::VARCHAR AS host, 'tshark' AS source"""


class Pcap(Reader):
    id: ClassVar[str] = "pcap"
    description: ClassVar[str] = "pcap/pcapng packet captures, flows and DNS through tshark"
    tables: ClassVar[tuple[Table, ...]] = (Table.FLOWS, Table.DNS)

    def sniff(self, sample: Sample) -> bool:
        head = sample.head
        return head[:4] in _MAGIC or (head[:4] == _PCAPNG and head[8:12] in _PCAPNG_ORDER)

    def read(
        self, path: Path, con: duckdb.DuckDBPyConnection, log: Log
    ) -> Iterator[tuple[Table, Any]]:
        tshark = require_tool("tshark", "tshark")
        with tempfile.TemporaryDirectory(prefix="hemostat-pcap-") as tmp:
            tsv = Path(tmp) / "packets.tsv"
            _dissect(tshark, path, tsv, log)
            # the runner's transaction rolls these temporary tables back if anything fails
            con.execute(f"CREATE OR REPLACE TEMP TABLE _hemostat_pkt AS {_packets_sql(tsv)}")
            _count_skipped(con, tsv, _report_rejects(con, log), log)
            con.execute(f"CREATE OR REPLACE TEMP TABLE _hemostat_pflows AS {_FLOWS_SQL}")
            yield Table.FLOWS, con.sql(f"SELECT {_CANONICAL} FROM _hemostat_pflows")
            yield Table.DNS, con.sql(_DNS_SQL)
            con.execute("DROP TABLE _hemostat_pkt")
            con.execute("DROP TABLE _hemostat_pflows")


def _dissect(tshark: str, path: Path, tsv: Path, log: Log) -> None:
    """One line per packet of ``path`` into ``tsv``; a capture cut short keeps its packets."""
    argv = [tshark, "-n", "-r", str(path), "-T", "fields", "-E", "header=n", "-E", "quote=n",
            "-E", "separator=/t", "-E", "occurrence=a", "-E", "aggregator=\x1f"]  # fmt: skip
    argv += [arg for _, field in FIELDS for arg in ("-e", field)]
    try:
        run_tool(argv, path, out=tsv)
    except IngestError as exc:
        if "cut short" not in exc.message or tsv.stat().st_size == 0:
            raise
        log.bad_line(None, "capture cut short in the middle of a packet; earlier packets read")


def _count_skipped(con: duckdb.DuckDBPyConnection, tsv: Path, rejected: int, log: Log) -> None:
    """Frames tshark listed that are not IP packets (and not rejected lines either)."""
    row = con.execute("SELECT count(*) FROM _hemostat_pkt").fetchone()
    ip_packets = int(row[0]) if row else 0
    with tsv.open("rb") as fh:
        lines = sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))
    if lines > ip_packets + rejected:
        log.skip("non-IP frames (ARP, …)", lines - ip_packets - rejected)


def _report_rejects(con: duckdb.DuckDBPyConnection, log: Log) -> int:
    rows = take_rejects(con)
    for line, _, _, text in rows:
        log.bad_line(None, f"packet {line}: tshark output not understood: {text[:60]!r}")
    return len(rows)

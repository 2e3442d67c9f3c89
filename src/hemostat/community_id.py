"""Community ID v1 (corelight/community-id-spec): one flow hash that every tool agrees on.

TCP, UDP and SCTP over IPv4 — nearly every row — are hashed inside DuckDB by a SQL macro
(vectorised, multi-threaded); the rest (IPv6, ICMP, other protocols) go through the
reference Python implementation (``communityid``), registered as a DuckDB function that the
SQL calls only for those rows.
"""

from __future__ import annotations

import contextlib

import communityid
import duckdb

SEED = 0

_ICMP = {"icmp": 1, "icmp6": 58}
_PROTO = {"tcp": 6, "udp": 17, "sctp": 132, **_ICMP}


def _hex_ip4(col: str) -> str:
    parts = [
        f"lpad(to_hex(TRY_CAST(split_part({col}, '.', {i}) AS UTINYINT)), 2, '0')"
        for i in range(1, 5)
    ]
    return " || ".join(parts)


def _key4(ip: str, port: str) -> str:
    """An integer that orders (ip, port) endpoints exactly like the spec's byte comparison."""
    octets = " + ".join(
        f"TRY_CAST(split_part({ip}, '.', {i}) AS UBIGINT) * {256 ** (4 - i)}" for i in range(1, 5)
    )
    return f"(({octets}) * 65536 + {port})"


_IPV4_FAST = """
    proto IN ('tcp', 'udp', 'sctp') AND src_port IS NOT NULL AND dst_port IS NOT NULL
    AND regexp_full_match(src_ip, '\\d{1,3}\\.\\d{1,3}\\.\\d{1,3}\\.\\d{1,3}')
    AND regexp_full_match(dst_ip, '\\d{1,3}\\.\\d{1,3}\\.\\d{1,3}\\.\\d{1,3}')
"""


def _macro_sql() -> str:
    a = _hex_ip4("src_ip") + " || " + _hex_ip4("dst_ip")
    b = _hex_ip4("dst_ip") + " || " + _hex_ip4("src_ip")
    proto = "lpad(to_hex(CASE proto WHEN 'tcp' THEN 6 WHEN 'udp' THEN 17 ELSE 132 END), 2, '0')"
    ports_a = (
        "lpad(to_hex(src_port::USMALLINT), 4, '0') || lpad(to_hex(dst_port::USMALLINT), 4, '0')"
    )
    ports_b = (
        "lpad(to_hex(dst_port::USMALLINT), 4, '0') || lpad(to_hex(src_port::USMALLINT), 4, '0')"
    )
    seed = f"{SEED:04x}"
    ordered = (
        f"CASE WHEN {_key4('src_ip', 'src_port')} <= {_key4('dst_ip', 'dst_port')} "
        f"THEN {a} || {proto} || '00' || {ports_a} "
        f"ELSE {b} || {proto} || '00' || {ports_b} END"
    )
    return f"""
    CREATE OR REPLACE MACRO community_id(src_ip, src_port, dst_ip, dst_port, proto) AS
    CASE
      WHEN src_ip IS NULL OR dst_ip IS NULL OR proto IS NULL THEN NULL
      WHEN {_IPV4_FAST}
        THEN '1:' || to_base64(unhex(sha1(unhex('{seed}' || {ordered}))))
      ELSE hemostat_community_id_py(src_ip, src_port, dst_ip, dst_port, proto)
    END
    """


_generator = communityid.CommunityID(seed=SEED)


def compute(
    src_ip: str, src_port: int | None, dst_ip: str, dst_port: int | None, proto: str
) -> str | None:
    """Community ID of one flow with the reference implementation; None when undefined."""
    name = proto.lower()
    number = _PROTO.get(name)
    if number is None and name.isdigit():
        number = int(name)
    if number is None:
        return None
    try:
        if number in (1, 58):
            tpl = (
                communityid.FlowTuple.make_icmp6
                if number == 58
                else communityid.FlowTuple.make_icmp
            )(src_ip, dst_ip, src_port or 0, dst_port or 0)
        elif number in (6, 17, 132) and src_port is not None and dst_port is not None:
            tpl = communityid.FlowTuple(number, src_ip, dst_ip, src_port, dst_port)
        else:
            tpl = communityid.FlowTuple(number, src_ip, dst_ip)
        return str(_generator.calc(tpl))
    except (communityid.FlowTupleError, ValueError, TypeError):
        return None


def register(con: duckdb.DuckDBPyConnection) -> None:
    """Define ``community_id(src_ip, src_port, dst_ip, dst_port, proto)`` on a connection."""
    with contextlib.suppress(duckdb.NotImplementedException):  # already registered
        con.create_function(  # type: ignore[call-overload]
            "hemostat_community_id_py",
            compute,
            ["VARCHAR", "INTEGER", "VARCHAR", "INTEGER", "VARCHAR"],
            "VARCHAR",
            null_handling="special",
            side_effects=False,
        )
    con.execute(_macro_sql())

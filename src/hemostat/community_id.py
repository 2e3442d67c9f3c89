"""Community ID v1 (corelight/community-id-spec): one flow hash that every tool agrees on.

TCP, UDP and SCTP over IPv4 — nearly every row — are hashed inside DuckDB in SQL
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


_PROTO_HEX = "CASE {proto} WHEN 'tcp' THEN '06' WHEN 'udp' THEN '11' ELSE '84' END"


def key_sql(ip: str, port: str) -> str:
    """SQL for one endpoint as 12 hex digits (IPv4 address, port), NULL if not IPv4.

    Fixed-width hex compares like the spec's byte comparison, so ``least``/``greatest``
    of the two keys give the spec's endpoint order.
    """
    octets = [f"TRY_CAST(split_part({ip}, '.', {i}) AS UBIGINT)" for i in range(1, 5)]
    address = f"({octets[0]} * 16777216 + {octets[1]} * 65536 + {octets[2]} * 256 + {octets[3]})"
    return f"lpad(to_hex({address} * 65536 + {port}), 12, '0')"


def hash_sql(src_key: str, dst_key: str, proto: str, fallback: str) -> str:
    """SQL for the Community ID from two endpoint keys (see :func:`key_sql`).

    ``fallback`` is evaluated only for rows outside the fast path (IPv6, ICMP, …).
    """
    lo, hi = f"least({src_key}, {dst_key})", f"greatest({src_key}, {dst_key})"
    data = (
        f"'{SEED:04x}' || {lo}[1:8] || {hi}[1:8] || {_PROTO_HEX.format(proto=proto)} || '00' "
        f"|| {lo}[9:12] || {hi}[9:12]"
    )
    return (
        f"CASE WHEN {src_key} IS NOT NULL AND {dst_key} IS NOT NULL "
        f"AND {proto} IN ('tcp', 'udp', 'sctp') "
        f"THEN '1:' || to_base64(unhex(sha1(unhex({data})))) ELSE {fallback} END"
    )


PY_CALL = "hemostat_community_id_py(src_ip, src_port, dst_ip, dst_port, proto)"


def _macro_sql() -> str:
    src, dst = key_sql("src_ip", "src_port"), key_sql("dst_ip", "dst_port")
    return f"""
    CREATE OR REPLACE MACRO community_id(src_ip, src_port, dst_ip, dst_port, proto) AS
    CASE WHEN src_ip IS NULL OR dst_ip IS NULL OR proto IS NULL THEN NULL
         ELSE {hash_sql(src, dst, "proto", PY_CALL)} END
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
    """Define ``community_id(src_ip, src_port, dst_ip, dst_port, proto)`` on a connection,
    and the Python function behind its slow path (what :func:`hash_sql` falls back to)."""
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

"""Community ID v1 (corelight/community-id-spec): one flow hash that every tool agrees on.

TCP, UDP and SCTP over IPv4 — nearly every row — are hashed inside DuckDB in SQL
(vectorised, multi-threaded); the rest (IPv6, ICMP, other protocols) go through the
reference Python implementation (``communityid``), registered as a DuckDB function that the
SQL calls only for those rows.

The SQL path, per row: each IPv4 endpoint becomes one integer ``address << 16 | port`` (one
regular expression per address); the smaller and the larger of the two are the spec's
ordered endpoints; the 16 bytes the spec hashes (seed, addresses, protocol, padding, ports)
are one 128-bit integer, turned into a BLOB through ``BIT``. No hex strings are built.
"""

from __future__ import annotations

import contextlib

import communityid
import duckdb

SEED = 0

_ICMP = {"icmp": 1, "icmp6": 58}
_PROTO = {"tcp": 6, "udp": 17, "sctp": 132, **_ICMP}

_IPV4 = r"'^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$'"
#: NULL for any other protocol, which sends the row to the fallback
_PROTO_NUMBER = "CASE {proto} WHEN 'tcp' THEN 6 WHEN 'udp' THEN 17 WHEN 'sctp' THEN 132 END"

#: the Python fallback, for rows the SQL path does not cover (see :func:`hash_sql`)
PY_CALL = "hemostat_community_id_py(src_ip, src_port, dst_ip, dst_port, proto)"


def octets_sql(ip: str) -> str:
    """SQL for the four dotted-decimal parts of an IPv4 address (a STRUCT; NULL parts if
    ``ip`` is not one). Computed once per row, in its own projection: :func:`address_sql`
    reads it four times."""
    return f"regexp_extract({ip}, {_IPV4}, ['a', 'b', 'c', 'd'])"


def address_sql(octets: str) -> str:
    """SQL for an IPv4 address as an integer (UBIGINT), from :func:`octets_sql`; NULL when
    it is not one."""
    parts = [f"TRY_CAST({octets}.{p} AS UTINYINT)::UBIGINT" for p in "abcd"]
    return _or(*(f"({part} << {8 * (3 - i)})" for i, part in enumerate(parts)))


def key_sql(address: str, port: str) -> str:
    """SQL for one endpoint as ``address << 16 | port`` (UBIGINT), from :func:`address_sql`;
    NULL when the address is NULL or the port is missing or out of range.

    Integers compare like the spec's byte strings, so the smaller and the larger of the two
    keys are the spec's endpoint order.
    """
    return _or(f"({address} << 16)", f"TRY_CAST({port} AS USMALLINT)")


def _or(*terms: str) -> str:
    """Bitwise or of ``terms``, parenthesised: DuckDB gives ``|``, ``&``, ``<<`` and ``>>``
    one precedence, left to right (``1 << 4 | 1 << 2`` is 68)."""
    return "(" + " | ".join(terms) + ")"


def hash_sql(lo: str, hi: str, proto: str, fallback: str) -> str:
    """SQL for the Community ID from the smaller and larger endpoint keys (:func:`key_sql`).

    The fast path is NULL when a key is or the protocol is not TCP, UDP or SCTP (NULL goes
    through every step); ``fallback`` is evaluated only for those rows (IPv6, ICMP, …).
    """
    fields = (  # (value, shift): seed, addresses, protocol, zero padding, ports
        (str(SEED), 112), (f"({lo} >> 16)", 80), (f"({hi} >> 16)", 48),
        (_PROTO_NUMBER.format(proto=proto), 40), (f"({lo} & 65535)", 16), (f"({hi} & 65535)", 0),
    )  # fmt: skip
    data = _or(*(f"(({value})::UHUGEINT << {shift})" for value, shift in fields))
    return f"coalesce('1:' || to_base64(unhex(sha1({data}::BIT::BLOB))), {fallback})"


def keyed_sql(source: str) -> str:
    """``SELECT *`` from ``source`` (a table, view or parenthesised query with ``src_ip``,
    ``src_port``, ``dst_ip``, ``dst_port``) plus the ordered endpoint keys ``_cid_lo`` and
    ``_cid_hi``, for :func:`hash_sql`. Each step is its own projection, so each expression
    is computed once per row (DuckDB does not share sub-expressions inside ``CASE``)."""
    parsed = (
        f"SELECT *, {octets_sql('src_ip')} AS _cid_so, {octets_sql('dst_ip')} AS _cid_do "
        f"FROM {source}"
    )
    src = key_sql(address_sql("_cid_so"), "src_port")
    dst = key_sql(address_sql("_cid_do"), "dst_port")
    keys = f"SELECT * EXCLUDE (_cid_so, _cid_do), {src} AS _cid_s, {dst} AS _cid_d FROM ({parsed})"
    lo, hi = ordered_sql("_cid_s", "_cid_d")
    return f"SELECT * EXCLUDE (_cid_s, _cid_d), {lo} AS _cid_lo, {hi} AS _cid_hi FROM ({keys})"


def ordered_sql(src_key: str, dst_key: str) -> tuple[str, str]:
    """SQL for the smaller and the larger of two endpoint keys; both NULL if either is.
    (``CASE`` rather than ``least``/``greatest``: those skip NULLs, and cost ten times more.)"""
    return (
        f"CASE WHEN {src_key} <= {dst_key} THEN {src_key} "
        f"WHEN {src_key} > {dst_key} THEN {dst_key} END",
        f"CASE WHEN {src_key} <= {dst_key} THEN {dst_key} "
        f"WHEN {src_key} > {dst_key} THEN {src_key} END",
    )


def _macro_sql() -> str:
    src = key_sql(address_sql(octets_sql("src_ip")), "src_port")
    dst = key_sql(address_sql(octets_sql("dst_ip")), "dst_port")
    lo, hi = ordered_sql(src, dst)
    return f"""
    CREATE OR REPLACE TEMP MACRO community_id(src_ip, src_port, dst_ip, dst_port, proto) AS
    CASE WHEN src_ip IS NULL OR dst_ip IS NULL OR proto IS NULL THEN NULL
         ELSE {hash_sql(lo, hi, "proto", PY_CALL)} END
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
    """Define ``community_id(src_ip, src_port, dst_ip, dst_port, proto)`` on a connection
    (a temporary macro: nothing is written to the database, so read-only connections work
    too), and the Python function behind its slow path (what :func:`hash_sql` falls back to)."""
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

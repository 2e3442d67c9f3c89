"""Community ID v1 against the spec's published baseline (corelight/community-id-spec,
baseline/baseline_deflt.json, seed 0), through the same SQL path the store uses."""

from __future__ import annotations

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hemostat import community_id

# (proto, saddr, daddr, sport, dport, expected) — restated from the spec's baseline
BASELINE = [
    ("icmp6", "fe80::200:86ff:fe05:80da", "fe80::260:97ff:fe07:69ea", 135, 136, "1:dGHyGvjMfljg6Bppwm3bg0LO8TY="),
    ("icmp6", "fe80::260:97ff:fe07:69ea", "fe80::200:86ff:fe05:80da", 136, 135, "1:dGHyGvjMfljg6Bppwm3bg0LO8TY="),
    ("icmp6", "fe80::260:97ff:fe07:69ea", "fe80::200:86ff:fe05:80da", 135, 136, "1:zavyT/cezQr1fmImYCwYnMXbgck="),
    ("icmp6", "3ffe:501:1800:2345::2", "3ffe:507:0:1:200:86ff:fe05:80da", 3, 0, "1:2ObVBgIn28oZvibYZhZMBgh7WdQ="),
    ("icmp6", "3ffe:501:410:0:2c0:dfff:fe47:33e", "3ffe:507:0:1:200:86ff:fe05:80da", 1, 4, "1:hLZd0XGWojozrvxqE0dWB1iM6R0="),
    ("icmp6", "3ffe:507:0:1:200:86ff:fe05:80da", "3ffe:501:0:1001::2", 128, 129, "1:+TW+HtLHvV1xnGhV1lv7XoJrqQg="),
    ("icmp6", "fe80::200:86ff:fe05:80da", "ff02::2", 133, 134, "1:hO+sN4H+MG5MY/8hIrXPqc4ZQz0="),
    ("icmp6", "fe80::260:97ff:fe07:69ea", "ff02::1", 134, 133, "1:pkvHqCL88/tg1k4cPigmZXUtL00="),
    ("icmp", "192.168.0.89", "192.168.0.1", 8, 0, "1:X0snYXpgwiv9TZtqg64sgzUn6Dk="),
    ("icmp", "192.168.0.1", "192.168.0.89", 0, 8, "1:X0snYXpgwiv9TZtqg64sgzUn6Dk="),
    ("icmp", "10.0.0.1", "10.0.0.2", 11, 0, "1:YHxtAirCG//0OzkcVAukqKQN9xM="),
    ("tcp", "2001:470:e5bf:dead:4957:2174:e82c:4887", "2607:f8b0:400c:c03::1a", 63943, 25, "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4="),
    ("tcp", "2607:f8b0:400c:c03::1a", "2001:470:e5bf:dead:4957:2174:e82c:4887", 25, 63943, "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4="),
    ("sctp", "192.168.170.8", "192.168.170.56", 7, 7, "1:MP2EtRCAUIZvTw6MxJHLV7N7JDs="),
    ("sctp", "192.168.170.56", "192.168.170.8", 7, 7, "1:MP2EtRCAUIZvTw6MxJHLV7N7JDs="),
    ("tcp", "128.232.110.120", "66.35.250.204", 34855, 80, "1:LQU9qZlK+B5F3KDmev6m5PMibrg="),
    ("tcp", "66.35.250.204", "128.232.110.120", 80, 34855, "1:LQU9qZlK+B5F3KDmev6m5PMibrg="),
    ("udp", "192.168.1.52", "8.8.8.8", 54585, 53, "1:d/FP5EW3wiY1vCndhwleRRKHowQ="),
    ("udp", "8.8.8.8", "192.168.1.52", 53, 54585, "1:d/FP5EW3wiY1vCndhwleRRKHowQ="),
    ("46", "10.1.12.1", "10.1.12.2", None, None, "1:KHlLkgoJW7ifUTyTSgyVfkFHzKw="),
    ("46", "10.1.12.2", "10.1.12.1", None, None, "1:KHlLkgoJW7ifUTyTSgyVfkFHzKw="),
]  # fmt: skip


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    c = duckdb.connect()
    community_id.register(c)
    return c


#: the store's path (endpoint keys in their own projections, then the hash) and the macro
STORE_PATH = (
    f"SELECT {community_id.hash_sql('_cid_lo', '_cid_hi', 'proto', community_id.PY_CALL)} "
    f"FROM ({community_id.keyed_sql('t')}) ORDER BY i"
)
MACRO = "SELECT community_id(src_ip, src_port, dst_ip, dst_port, proto) FROM t ORDER BY i"


def _sql(
    con: duckdb.DuckDBPyConnection, rows: list[tuple[object, ...]], query: str = STORE_PATH
) -> list[str | None]:
    con.execute(
        "CREATE OR REPLACE TEMP TABLE t (i INT, proto VARCHAR, src_ip VARCHAR, dst_ip VARCHAR, "
        "src_port INT, dst_port INT)"
    )
    con.execute(
        "INSERT INTO t SELECT * FROM (SELECT unnest(?, recursive := true))",
        [[dict(zip(("i", "proto", "src_ip", "dst_ip", "src_port", "dst_port"), (i, *r),
                   strict=True)) for i, r in enumerate(rows)]],
    )  # fmt: skip
    return [g[0] for g in con.execute(query).fetchall()]


@pytest.mark.parametrize("query", [STORE_PATH, MACRO], ids=["store", "macro"])
def test_sql_matches_published_baseline(con: duckdb.DuckDBPyConnection, query: str) -> None:
    got = _sql(con, [row[:5] for row in BASELINE], query)
    assert got == [row[5] for row in BASELINE]


@pytest.mark.parametrize("row", BASELINE, ids=lambda r: f"{r[0]}-{r[1]}-{r[3]}")
def test_python_path_matches_published_baseline(row: tuple[object, ...]) -> None:
    proto, src, dst, sport, dport, expected = row
    assert community_id.compute(src, sport, dst, dport, proto) == expected  # type: ignore[arg-type]


ip4 = st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t)))


_CON = duckdb.connect()
community_id.register(_CON)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["tcp", "udp", "sctp"]),
            ip4,
            ip4,
            st.integers(0, 65535),
            st.integers(0, 65535),
        ),
        min_size=1,
        max_size=20,
    )
)
def test_vectorised_ipv4_equals_reference(rows: list[tuple[object, ...]]) -> None:
    expected = [community_id.compute(s, sp, d, dp, p) for p, s, d, sp, dp in rows]  # type: ignore[arg-type]
    assert _sql(_CON, rows) == expected


UNDEFINED = [
    ("tcp", "not-an-ip", "10.0.0.1", 1, 2),
    ("tcp", None, "10.0.0.1", 1, 2),
    ("tcp", "10.0.0.1", "10.0.0.2", 70000, 2),  # port out of range
    ("tcp", "10.0.0.256", "10.0.0.2", 1, 2),  # octet out of range
    ("tcp", "10.0.0.1", "10.0.0.2", None, 2),  # one port missing
]


@pytest.mark.parametrize("query", [STORE_PATH, MACRO], ids=["store", "macro"])
def test_undefined_inputs_give_null(con: duckdb.DuckDBPyConnection, query: str) -> None:
    """Not a half-computed hash: the fast path must not take one valid endpoint for two."""
    assert _sql(con, UNDEFINED, query) == [None] * len(UNDEFINED)


def test_extreme_endpoints(con: duckdb.DuckDBPyConnection) -> None:
    rows = [("udp", "0.0.0.0", "255.255.255.255", 0, 65535),
            ("tcp", "255.255.255.255", "255.255.255.255", 65535, 0),
            ("sctp", "1.2.3.4", "1.2.3.4", 7, 7)]  # fmt: skip
    assert _sql(con, rows) == [community_id.compute(s, sp, d, dp, p) for p, s, d, sp, dp in rows]

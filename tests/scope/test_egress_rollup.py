"""The egress rollups: what they count, that rolling again never counts twice, coverage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import ibis
import pyarrow as pa

from hemostat.schema import FLOWS, Table
from hemostat.scope.backfill import fill
from hemostat.scope.egress_rollup import coverage, roll
from hemostat.store import Store

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
INTERNAL = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]
OUT = "198.51.100.7"
TABLES = ("egress_hours", "egress_minutes", "egress_sources", "egress_targets")


def _flows(rows: list[tuple[int, str, str, int, int]]) -> pa.Table:
    """(minutes after T0, src, dst, dst_port, bytes_out) -> flows (bytes_in = bytes_out // 2)."""
    cols: dict[str, list[Any]] = {
        "ts": [T0 + timedelta(minutes=m) for m, *_ in rows],
        "end_ts": [T0 + timedelta(minutes=m, seconds=30) for m, *_ in rows],
        "src_ip": [r[1] for r in rows], "src_port": [40000 + i for i in range(len(rows))],
        "dst_ip": [r[2] for r in rows], "dst_port": [r[3] for r in rows],
        "proto": ["tcp"] * len(rows), "bytes_out": [r[4] for r in rows],
        "bytes_in": [r[4] // 2 for r in rows],
    }  # fmt: skip
    return pa.table({k: pa.array(v, type=FLOWS.field(k).type) for k, v in cols.items()})


#: egress (counted), then what is not egress: inside, inbound, multicast, broadcast, loopback
DAY = [
    (1, "10.1.2.3", OUT, 443, 1000), (1, "10.1.2.3", OUT, 443, 500),
    (2, "10.1.2.3", "203.0.113.9", 80, 300), (61, "10.1.2.3", OUT, 443, 7000),
    (62, "172.16.1.10", OUT, 443, 40), (125, "192.168.1.1", "203.0.113.9", 22, 9),
    (5, "10.1.2.3", "10.1.2.4", 445, 10**9), (6, OUT, "10.1.2.3", 22, 10**9),
    (7, "10.1.2.3", "239.255.255.250", 1900, 10**9), (8, "10.1.2.3", "255.255.255.255", 67, 10**9),
    (9, "10.1.2.3", "127.0.0.1", 80, 10**9),
]  # fmt: skip


def _all(store: Store, sql: str) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in store.con.execute(sql).fetchall()]


def test_rollups_count_egress_only_per_hour_and_per_minute(store: Store) -> None:
    store.append(Table.FLOWS, _flows(DAY))
    roll(store, INTERNAL, T0, T0 + timedelta(hours=3))
    hours = _all(store, "SELECT hour, src_ip, dst_ip, dst_port, bytes_out, bytes_in, flows "
                        "FROM egress_hours ORDER BY ALL")  # fmt: skip
    h = timedelta(hours=1)
    assert hours == [
        (T0, "10.1.2.3", OUT, 443, 1500, 750, 2),
        (T0, "10.1.2.3", "203.0.113.9", 80, 300, 150, 1),
        (T0 + h, "10.1.2.3", OUT, 443, 7000, 3500, 1),
        (T0 + h, "172.16.1.10", OUT, 443, 40, 20, 1),
        (T0 + 2 * h, "192.168.1.1", "203.0.113.9", 22, 9, 4, 1),
    ]
    minutes = _all(store, "SELECT minute, src_ip, bytes_out, flows FROM egress_minutes "
                          "ORDER BY ALL")  # fmt: skip
    m = timedelta(minutes=1)
    assert minutes == [
        (T0 + m, "10.1.2.3", 1500, 2), (T0 + 2 * m, "10.1.2.3", 300, 1),
        (T0 + 61 * m, "10.1.2.3", 7000, 1), (T0 + 62 * m, "172.16.1.10", 40, 1),
        (T0 + 125 * m, "192.168.1.1", 9, 1),
    ]  # fmt: skip
    first_last = _all(store, f"SELECT first, last FROM egress_hours WHERE hour = '{T0}' "
                             f"AND dst_port = 443")  # fmt: skip
    assert first_last == [(T0 + m, T0 + m + timedelta(seconds=30))]


def test_summaries_per_source_and_destination(store: Store) -> None:
    store.append(Table.FLOWS, _flows(DAY))
    roll(store, INTERNAL, T0, T0 + timedelta(hours=3))
    sources = _all(store, "SELECT hour, src_ip, bytes_out, flows, destinations FROM "
                          "egress_sources ORDER BY ALL")  # fmt: skip
    h = timedelta(hours=1)
    assert sources == [(T0, "10.1.2.3", 1800, 3, 2), (T0 + h, "10.1.2.3", 7000, 1, 1),
                       (T0 + h, "172.16.1.10", 40, 1, 1),
                       (T0 + 2 * h, "192.168.1.1", 9, 1, 1)]  # fmt: skip
    targets = _all(store, f"SELECT hour, bytes_out, hosts FROM egress_targets "
                          f"WHERE dst_ip = '{OUT}' ORDER BY ALL")  # fmt: skip
    assert targets == [(T0, 1500, 1), (T0 + h, 7040, 2)]


def test_rolling_again_or_with_late_rows_never_counts_twice(store: Store) -> None:
    store.append(Table.FLOWS, _flows(DAY[:4]))
    roll(store, INTERNAL, T0, T0 + timedelta(minutes=30))
    roll(store, INTERNAL, T0 + timedelta(minutes=30), T0 + timedelta(minutes=90))
    store.append(Table.FLOWS, _flows([(20, "10.1.2.3", OUT, 443, 5)]))  # late: an agent's spool
    roll(store, INTERNAL, T0 + timedelta(minutes=20), T0 + timedelta(minutes=90))
    roll(store, INTERNAL, T0 + timedelta(minutes=20), T0 + timedelta(minutes=90))
    total = _all(store, "SELECT sum(bytes_out), sum(flows) FROM egress_hours")
    assert total == [(1000 + 500 + 300 + 7000 + 5, 5)]
    assert _all(store, "SELECT sum(bytes_out), sum(flows) FROM egress_minutes") == total
    assert _all(store, "SELECT sum(bytes_out), sum(flows) FROM egress_sources") == total


def test_a_pass_over_an_old_period_leaves_later_hours_alone(store: Store) -> None:
    store.append(Table.FLOWS, _flows(DAY))
    roll(store, INTERNAL, T0, T0 + timedelta(hours=3))
    roll(store, INTERNAL, T0, T0 + timedelta(minutes=10))  # e.g. hemostat detect --until
    assert _all(store, "SELECT count(*), sum(bytes_out) FROM egress_hours") == [(5, 8849)]


def test_coverage_names_the_stretch_no_pass_rolled_up_and_fill_rolls_it(store: Store) -> None:
    store.append(Table.FLOWS, _flows(DAY))
    end = T0 + timedelta(hours=3)
    assert coverage(store, T0, end).missing == ((T0 + timedelta(minutes=1),
                                                 T0 + timedelta(minutes=125)),)  # fmt: skip
    roll(store, INTERNAL, T0 + timedelta(hours=1), end)  # the first hour: detected before
    found = coverage(store, T0, end)
    assert found.until == end
    assert found.missing == ((T0 + timedelta(minutes=1), T0 + timedelta(minutes=9)),)
    assert _all(store, "SELECT sum(bytes_out) FROM egress_hours") == [(7049,)]
    assert fill(store, INTERNAL).periods
    assert coverage(store, T0, end).complete
    assert _all(store, "SELECT sum(bytes_out) FROM egress_hours") == [(8849,)]
    assert fill(store, INTERNAL).periods == ()


def test_coverage_finds_a_gap_between_passes(store: Store) -> None:
    store.append(Table.FLOWS, _flows(DAY))
    roll(store, INTERNAL, T0, T0 + timedelta(minutes=10))
    roll(store, INTERNAL, T0 + timedelta(minutes=10), T0 + timedelta(minutes=20))
    roll(store, INTERNAL, T0 + timedelta(hours=2), T0 + timedelta(hours=3))
    found = coverage(store, T0, T0 + timedelta(hours=3))
    assert found.missing == ((T0 + timedelta(minutes=61), T0 + timedelta(minutes=62)),)


def test_another_engine_computes_the_same_rollups(store: Store) -> None:
    """The Spark path (rollups computed where the flows are, rows brought back), here with
    a second DuckDB standing in for the lake."""
    store.append(Table.FLOWS, _flows(DAY))
    roll(store, INTERNAL, T0, T0 + timedelta(hours=3))
    here = [_all(store, f"SELECT * FROM {t} ORDER BY ALL") for t in TABLES]
    lake = ibis.duckdb.connect()
    lake.con.register("stored", store.con.sql("SELECT * FROM flows").to_arrow_table())
    lake.con.execute("CREATE TABLE flows AS SELECT * FROM stored")
    roll(store, INTERNAL, T0, T0 + timedelta(hours=3), backend=lake)
    assert [_all(store, f"SELECT * FROM {t} ORDER BY ALL") for t in TABLES] == here

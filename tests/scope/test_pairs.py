"""The ``pairs`` rollup: internal traffic per hour and pair; a period rolled up again (an
explicit ``detect --since`` over days already detected) is replaced, never counted twice."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.scope.test_egress_rollup import DAY, INTERNAL, T0, _flows

from hemostat.schema import Table
from hemostat.scope.pairs import roll
from hemostat.store import Store

INSIDE = [(m, "10.1.2.3", "10.1.2.4", 445, 100 + m) for m in (3, 20, 59, 61, 130)]


def _pairs(store: Store) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in store.con.execute(
        "SELECT hour, src_ip, dst_ip, dst_port, sum(bytes_out), sum(flows) FROM pairs "
        "GROUP BY ALL ORDER BY ALL").fetchall()]  # fmt: skip


def test_rolling_a_period_again_replaces_it(store: Store) -> None:
    store.append(Table.FLOWS, _flows(DAY + INSIDE))
    roll(store, INTERNAL, T0, T0 + timedelta(hours=3))
    once = _pairs(store)
    hours = {r[0]: r[4] for r in once if r[1] == "10.1.2.3" and r[2] == "10.1.2.4"}
    assert hours == {T0: 10**9 + 103 + 120 + 159, T0 + timedelta(hours=1): 161,
                     T0 + timedelta(hours=2): 230}  # fmt: skip
    roll(store, INTERNAL, T0 + timedelta(minutes=30), T0 + timedelta(minutes=90))  # overlaps
    roll(store, INTERNAL, T0, T0 + timedelta(hours=3))  # the whole period again
    assert _pairs(store) == once


def test_consecutive_live_windows_inside_one_hour_add_up_to_the_hour(store: Store) -> None:
    store.append(Table.FLOWS, _flows(DAY + INSIDE))
    for start in range(0, 180, 10):  # passes every 10 minutes, as the live loop makes them
        roll(store, INTERNAL, T0 + timedelta(minutes=start), T0 + timedelta(minutes=start + 10))
    live = _pairs(store)
    with Store(store.home.parent / "again") as other:
        other.append(Table.FLOWS, _flows(DAY + INSIDE))
        roll(other, INTERNAL, T0, T0 + timedelta(hours=3))
        assert live == _pairs(other)

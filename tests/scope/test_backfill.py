"""Rollups filled after the fact: the same rows as one pass over everything, whether the store
was never rolled up or has gaps between passes; long stretches in steps the progress follows;
nothing left to fill afterwards."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.scope.test_egress_rollup import DAY, INTERNAL, T0, TABLES, _flows

from hemostat.schema import Table
from hemostat.scope import egress_rollup, pairs
from hemostat.scope.backfill import fill
from hemostat.store import Store

TICK = timedelta(microseconds=1)
INSIDE = [(m, "10.1.2.3", "10.1.2.4", 445, 100 + m) for m in (3, 20, 59, 61, 130)]


def _rows(store: Store) -> list[list[tuple[Any, ...]]]:
    return [[tuple(r) for r in store.con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall()]
            for t in ("pairs", *TABLES)]  # fmt: skip


def _reference(store: Store, rows: list[tuple[int, str, str, int, int]]) -> list[Any]:
    """The rollups of one pass over every flow, in a store of their own."""
    with Store(store.home.parent / "reference") as other:
        other.append(Table.FLOWS, _flows(rows))
        pairs.roll(other, INTERNAL, T0, T0 + timedelta(days=1))
        egress_rollup.roll(other, INTERNAL, T0, T0 + timedelta(days=1))
        return _rows(other)


def test_a_store_never_rolled_up_gets_what_one_pass_writes(store: Store) -> None:
    store.append(Table.FLOWS, _flows(DAY + INSIDE))
    done = fill(store, INTERNAL)
    assert done.periods == ((T0 + timedelta(minutes=1), T0 + timedelta(minutes=130) + TICK),)
    assert done.hours == 3
    once = _rows(store)
    assert once == _reference(store, DAY + INSIDE)
    again = fill(store, INTERNAL)
    assert (again.periods, again.hours) == ((), 0)
    assert _rows(store) == once


def test_a_gap_between_passes_is_rolled_in_whole_hours_never_counted_twice(
    store: Store,
) -> None:
    store.append(Table.FLOWS, _flows(DAY + INSIDE))
    h = timedelta(hours=1)
    for since, until in ((T0, T0 + timedelta(minutes=10)), (T0 + 2 * h, T0 + 3 * h)):
        pairs.roll(store, INTERNAL, since, until)  # as two detection passes do
        egress_rollup.roll(store, INTERNAL, since, until)
    seen: list[tuple[int, int]] = []
    done = fill(store, INTERNAL, progress=lambda hours, total: seen.append((hours, total)))
    assert done.periods == ((T0 + timedelta(minutes=20), T0 + timedelta(minutes=62) + TICK),)
    assert (done.hours, seen) == (2, [(2, 2)])  # the first hour again: its flows after 10 min
    assert _rows(store) == _reference(store, DAY + INSIDE)


def test_a_long_stretch_is_rolled_in_steps_of_whole_hours(store: Store) -> None:
    late = [(13 * 60 + 5, "10.1.2.3", "198.51.100.7", 443, 77)]
    store.append(Table.FLOWS, _flows(DAY + INSIDE + late))
    seen: list[tuple[int, int]] = []
    done = fill(store, INTERNAL, progress=lambda hours, total: seen.append((hours, total)))
    assert seen == [(6, 14), (12, 14), (14, 14)]
    assert done.hours == 14
    rolls = store.con.execute("SELECT since, until FROM egress_rolls ORDER BY since").fetchall()
    h = timedelta(hours=1)
    assert [tuple(r) for r in rolls] == [(T0, T0 + 6 * h), (T0 + 6 * h, T0 + 12 * h),
                                         (T0 + 12 * h, T0 + 13 * h + timedelta(minutes=5) + TICK)]  # fmt: skip
    assert _rows(store) == _reference(store, DAY + INSIDE + late)


def test_since_and_until_fill_only_their_part(store: Store) -> None:
    store.append(Table.FLOWS, _flows(DAY + INSIDE))
    h = timedelta(hours=1)
    done = fill(store, INTERNAL, since=T0 + h, until=T0 + 2 * h)
    assert done.periods == ((T0 + timedelta(minutes=61), T0 + timedelta(minutes=62) + TICK),)
    hours = store.con.execute("SELECT DISTINCT hour FROM egress_hours UNION "
                              "SELECT DISTINCT hour FROM pairs").fetchall()  # fmt: skip
    assert [r[0] for r in hours] == [T0 + h]
    assert fill(store, INTERNAL, since=T0 + h, until=T0 + 2 * h).periods == ()
    rest = fill(store, INTERNAL)
    assert rest.periods == ((T0 + timedelta(minutes=1), T0 + timedelta(minutes=59) + TICK),
                            (T0 + timedelta(minutes=125), T0 + timedelta(minutes=130) + TICK))  # fmt: skip
    assert rest.hours == 2
    assert _rows(store) == _reference(store, DAY + INSIDE)

"""Records and data subjects per data store and per category, as low/high bounds.

For a store whose reads the access log proves (bulk reads, see ``reads``):

* **low** = the rows read, scaled down to what the egress can hold *uncompressed*: if the
  reads total more bytes than left, only that share is counted (largest read per object,
  so one table read twice counts once);
* **high** = every row the behind-the-egress accounts read (all their reads), scaled down
  only if even a ``max_compression``-times compressed archive of them could not fit in what
  left; never more than the store holds.

People follow rows through the table's subjects-per-row (inventory ``tables``) or the
store's; since every table of a store is about the same people, the low is the best single
table (or the share of the store's bytes read), the high the sum over tables, capped at the
store's subjects. A store only reached by flows (no read logged) gets low 0 and a high from
the bytes its host gave. Categories add stores up: records are summed; people are summed
for the high and the largest store's low is the low (the same patient is in several stores).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from hemostat.inventory import Datastore, Inventory
from hemostat.schema import Category
from hemostat.scope.model import ZERO, Bounds, CategoryScope, Hop, Reach, Read, Status
from hemostat.scope.reads import size_of
from hemostat.scope.words import Said, Size, Term, said


@dataclass(frozen=True, slots=True)
class Fit:
    """What the egress can hold of the bulk reads, per object: (low rows, high rows)."""

    rows: dict[str, tuple[int, int]]
    low: float  # share of the largest reads that fits uncompressed
    high: float  # share of all rows read that fits compressed (smallest rows first)
    egress: int
    read: int  # bytes of the largest read per object, all stores together
    max_compression: float


def fit(egress: int, reads: Iterable[Read], max_compression: float) -> Fit:
    """Low: the largest read per object, scaled to what ``egress`` holds uncompressed.
    High: every row read, filled smallest rows first into ``egress`` times
    ``max_compression`` (the most records that many bytes can be)."""
    largest: dict[str, tuple[int, int]] = {}  # rows, bytes of the largest read
    total: dict[str, int] = {}
    for r in (r for r in reads if r.bulk):
        rows, size = largest.get(r.object, (0, 0))
        largest[r.object] = (max(rows, r.rows), max(size, r.bytes))
        total[r.object] = total.get(r.object, 0) + r.rows_total
    read = sum(b for _, b in largest.values())
    low = min(1.0, egress / read) if read else 0.0
    room = egress * max_compression
    out: dict[str, tuple[int, int]] = {}
    taken_all = 0
    for obj in sorted(largest, key=lambda o: largest[o][1] / max(largest[o][0], 1)):
        rows, size = largest[obj]
        per_row = size / rows if rows else 0.0
        all_rows = max(total[obj], rows)
        take = all_rows if per_row == 0 else min(all_rows, math.ceil(room / per_row))
        room = max(0.0, room - take * per_row)
        out[obj] = (math.floor(low * rows), take)
        taken_all += take
    rows_all = sum(max(total[o], largest[o][0]) for o in largest)
    high = taken_all / rows_all if rows_all else 0.0
    return Fit(out, low, high, egress, read, max_compression)


def proven(store: Datastore, reads: list[Read], fit: Fit, hops: list[Hop]) -> Reach:
    """Bounds for a store the access log proves was read."""
    records_low = records_high = subjects_low = subjects_high = 0
    objects = sorted({r.object for r in reads})
    for obj in objects:
        low, high = fit.rows.get(obj, (0, 0))
        size = size_of(store, obj)
        low, high = (
            (min(low, size.records), min(high, size.records)) if size.records else (low, high)
        )
        records_low += low
        records_high += high
        subjects_low = max(
            subjects_low, math.floor(low * _density(size.records, size.subjects, store))
        )
        people = size.subjects if size.subjects is not None else store.subjects
        subjects_high += high if people is None else min(high, people)
    read_bytes = sum(max(r.bytes for r in reads if r.object == o) for o in objects)
    if store.bytes and store.subjects:
        share = min(1.0, fit.low * read_bytes / store.bytes)
        subjects_low = max(subjects_low, math.floor(store.subjects * share))
    records_high = _cap(records_high, store.records)
    subjects_high = _cap(subjects_high, store.subjects)
    records = Bounds(min(records_low, records_high), records_high)
    subjects = Bounds(min(subjects_low, subjects_high, records.low), subjects_high)
    why = _proven_evidence(store, reads, fit, records, subjects, read_bytes)
    return Reach(
        store.name, store.category, store.host, Status.PROVEN, records, subjects, read_bytes,
        store.records, store.subjects, _english(why), tuple(reads), tuple(hops), why,
    )  # fmt: skip


def _density(records: int | None, subjects: int | None, store: Datastore) -> float:
    if records and subjects is not None:
        return min(1.0, subjects / records)
    if store.records and store.subjects is not None:
        return min(1.0, store.subjects / store.records)
    return 1.0


def _cap(value: int, limit: int | None) -> int:
    return value if limit is None else min(value, limit)


def possible(store: Datastore, hops: list[Hop], egress: int, max_compression: float) -> Reach:
    """Bounds for a store only flows reached: no read logged, so the low is 0."""
    given = sum(h.bytes for h in hops)
    carried = min(given, egress * max_compression)
    per_row = min((t.bytes / t.records for t in store.tables if t.bytes and t.records),
                  default=(store.bytes / store.records) / 2 if store.bytes and store.records
                  else None)  # fmt: skip
    high = store.records or 0 if per_row is None else math.ceil(carried / per_row)
    records = Bounds(0, _cap(high, store.records))
    subjects = Bounds(0, _cap(records.high, store.subjects))
    hosts = ", ".join(sorted({h.dst for h in hops}))
    why = (
        said("possible.moved", size=Size(given), host=store.host, ports=_ports(hops),
             hosts=hosts),
        said("possible.high", records=records.high, size=Size(carried)),
    )  # fmt: skip
    return Reach(
        store.name, store.category, store.host, Status.POSSIBLE, records, subjects, 0,
        store.records, store.subjects, _english(why), (), tuple(hops), why,
    )  # fmt: skip


def _english(sentences: tuple[Said, ...]) -> tuple[str, ...]:
    return tuple(s.text() for s in sentences)


def _ports(hops: list[Hop]) -> str:
    return ", ".join(str(p) for p in sorted({h.port for h in hops}))


def _proven_evidence(
    store: Datastore, reads: list[Read], fit: Fit, records: Bounds, subjects: Bounds, read: int
) -> tuple[Said, ...]:
    accounts = ", ".join(sorted({r.account or "?" for r in reads}))
    clients = ", ".join(sorted({r.client or "?" for r in reads}))
    egress = Size(fit.egress)
    lines = [
        said("proven.reads", events=sum(r.events for r in reads),
             objects=len({r.object for r in reads}), store=store.name, accounts=accounts,
             clients=clients, size=Size(read)),
        said("proven.low", records=records.low,
             how=said("proven.low_scaled", share=fit.low, size=egress) if fit.low < 1
             else said("proven.low_all")),
        said("proven.high", records=records.high,
             how=said("proven.high_scaled", size=egress, ratio=fit.max_compression)
             if fit.high < 1 else said("proven.high_all", ratio=fit.max_compression),
             end=said("proven.high_store", records=store.records) if store.records
             else said("proven.high_end")),
        said("proven.people", low=subjects.low, high=subjects.high),
    ]  # fmt: skip
    if any(r.estimated for r in reads):
        lines.append(said("proven.estimated"))
    return tuple(lines)


def categories(reached: list[Reach]) -> dict[Category, CategoryScope]:
    out = {}
    for category in Category:
        mine = [r for r in reached if r.category == category]
        out[category] = _category(category, mine)
    return out


def _category(category: Category, mine: list[Reach]) -> CategoryScope:
    c = Term("category", category)
    if not mine:
        none = said("statement.none", c=c)
        return CategoryScope(category, Status.NONE, ZERO, ZERO, (), none.text(), none)
    status = Status.PROVEN if any(r.status == Status.PROVEN for r in mine) else Status.POSSIBLE
    records = Bounds(sum(r.records.low for r in mine), sum(r.records.high for r in mine))
    subjects = Bounds(max(r.subjects.low for r in mine), sum(r.subjects.high for r in mine))
    names = tuple(r.name for r in mine)
    stores = ", ".join(names)
    if status == Status.PROVEN:
        text = said("statement.proven", c=c, low=records.low, high=records.high,
                    people_low=subjects.low, people_high=subjects.high, stores=stores)  # fmt: skip
    else:
        text = said("statement.possible", c=c, stores=stores, high=records.high,
                    people_high=subjects.high)  # fmt: skip
    return CategoryScope(category, status, records, subjects, names, text.text(), text)


def unreached_hosts(inventory: Inventory, egress_hosts: Iterable[str]) -> list[Said]:
    """Sentences about data stores living on an egress host but not shown read."""
    hosts = set(egress_hosts)
    return [
        said("unknown.local_copy", host=d.host, store=d.name, c=Term("category", d.category))
        for d in inventory.datastores
        if d.host in hosts
    ]

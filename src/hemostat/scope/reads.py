"""Reads: what the access log says the hosts behind the egress read from the data stores.

An access event counts when its client is an egress or followed lineage host, or when it
happened on such a host without a remote client (a local dump). Events are grouped per
object, account and client; a group is **bulk** (evidence for the bounds) when one read
took at least ``bulk_share`` of its table (or of the data store when the inventory does not
list its tables), or when the account is one the incident's findings name. Routine reads
are kept apart: listed, never counted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import ibis.expr.types as ir

from hemostat.inventory import Datastore, Inventory, Table
from hemostat.schema import Finding
from hemostat.scope.model import Read


@dataclass(frozen=True, slots=True)
class Size:
    """The size of what an object belongs to: its table when listed, else its data store."""

    records: int | None
    subjects: int | None
    bytes: int | None

    @property
    def row_bytes(self) -> float | None:
        if self.records and self.bytes:
            return self.bytes / self.records
        return None


def query(
    access: ir.Table, clients: list[str], hosts: list[str], lo: datetime, hi: datetime
) -> ir.Table:
    """Access events of ``[lo, hi)`` made from ``clients``, or on ``hosts`` with no remote
    client (a local dump on an egress host)."""
    a = access.filter((access.ts >= lo) & (access.ts < hi))
    local = a.client_ip.isnull() | (a.client_ip == a.host) | (a.client_ip == "")
    a = a.filter(a.client_ip.isin(clients) | (a.host.isin(hosts) & local))
    return a.select("ts", "host", "user", "client_ip", "object", "action", "rows", "bytes")


#: account -> the object prefixes it is named for (``None``: everything it read)
Named = dict[str, tuple[str, ...] | None]


def accounts(findings: Iterable[Finding]) -> Named:
    """Accounts the incident's findings name: a supplier's accounts for everything they
    read, the reader of an unusual access for the objects that finding names."""
    out: Named = {}
    for f in findings:
        ev = f.evidence
        for account in [ev.get("account"), *(ev.get("accounts") or ())]:
            if isinstance(account, str):
                out[account] = None
        user = ev.get("user")
        if isinstance(user, str) and out.get(user, ()) is not None:
            objects = [o for o in [ev.get("part"), *(ev.get("objects") or ())]
                       if isinstance(o, str) and "://" in o]  # fmt: skip
            out[user] = (*(out.get(user) or ()), *objects) if objects else None
    return out


def store_of(inventory: Inventory, obj: str) -> Datastore | None:
    best: tuple[int, Datastore] | None = None
    for d in inventory.datastores:
        for prefix in d.objects:
            if obj.startswith(prefix) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), d)
    return best[1] if best else None


def size_of(store: Datastore, obj: str) -> Size:
    table: Table | None = max(
        (t for t in store.tables if obj.startswith(t.object)),
        key=lambda t: len(t.object),
        default=None,
    )
    if table is not None:
        return Size(table.records, table.subjects, table.bytes)
    return Size(store.records, store.subjects, store.bytes)


def classify(
    events: list[dict[str, Any]], inventory: Inventory, named: Named, bulk_share: float
) -> list[Read]:
    """Events on data-store objects, grouped per object/account/client and bulk or routine.

    An event is bulk when it took ``bulk_share`` of its table (rows or bytes), when a
    supplier account made it, or when it is a file read (no row count) by an account named
    for that object; a group's figures count its bulk events, or all of them if none is."""
    groups: dict[tuple[str, str, str | None, bool], list[dict[str, Any]]] = {}
    stores: dict[str, Datastore] = {}
    for e in events:
        store = store_of(inventory, e["object"] or "")
        if store is None:
            continue
        stores[e["object"]] = store
        big = _bulk(e, size_of(store, e["object"]), named, bulk_share)
        client = e["client_ip"] or e["host"]
        groups.setdefault((e["object"], e["user"], client, big), []).append(e)
    out = [
        _read(stores[obj], obj, user, client, bulk, rows)
        for (obj, user, client, bulk), rows in groups.items()
    ]
    return sorted(out, key=lambda x: (x.datastore, x.first, x.object))


def _bulk(e: dict[str, Any], size: Size, named: Named, bulk_share: float) -> bool:
    rows, nbytes = e["rows"], e["bytes"]
    if size.records and rows is not None and rows >= bulk_share * size.records:
        return True
    if size.bytes and nbytes is not None and nbytes >= bulk_share * size.bytes:
        return True
    user = e["user"]
    if user not in named:
        return False
    prefixes = named[user]
    return prefixes is None or (
        (rows is None or rows < 0) and any(e["object"].startswith(p) for p in prefixes)
    )


def _read(
    store: Datastore, obj: str, user: str | None, client: str | None, bulk: bool,
    events: list[dict[str, Any]],
) -> Read:  # fmt: skip
    size = size_of(store, obj)
    counted = [_rows(e, size) for e in events]
    largest = max(range(len(events)), key=lambda i: (counted[i][0], events[i]["bytes"] or 0))
    return Read(
        datastore=store.name, object=obj, account=user, client=client,
        actions=tuple(sorted({str(e["action"]) for e in events})), events=len(events),
        rows=counted[largest][0], rows_total=sum(c[0] for c in counted),
        bytes=int(events[largest]["bytes"] or 0) or _bytes(counted[largest][0], size),
        first=min(e["ts"] for e in events).astimezone(UTC),
        last=max(e["ts"] for e in events).astimezone(UTC),
        estimated=any(c[1] for c in counted), bulk=bulk,
    )  # fmt: skip


def _rows(e: dict[str, Any], size: Size) -> tuple[int, bool]:
    """Rows of one event (estimated from its bytes when the log gives none) and whether
    they are estimated."""
    if e["rows"] is not None and e["rows"] >= 0:
        return int(e["rows"]), False
    per_row = size.row_bytes
    return (round((e["bytes"] or 0) / per_row) if per_row else 0), True


def _bytes(rows: int, size: Size) -> int:
    return round(rows * (size.row_bytes or 0))

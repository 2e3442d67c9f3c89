"""Lineage: which internal hosts fed the egress hosts before they sent, hop by hop.

From each egress host, look at the data other internal hosts *gave* it (pushed to it or let
it pull) before its egress ended. A gift is a hop when it is big next to what the host sent
on (``hop_share``, ``min_hop_bytes``). A giver is followed further back only when the gift
is a real share of everything it gave inside the network in the period (``focus_share``):
a jump server that pulled a dump is followed; the application server every workstation
talks to is listed, not followed. Data stores end a path: a followed gift from a data
store's host and port means data moved from that store towards the egress.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from hemostat.inventory import Datastore, Inventory
from hemostat.scope.model import Hop


@dataclass(frozen=True, slots=True)
class Limits:
    max_hops: int
    hop_share: float
    min_hop_bytes: int
    focus_share: float


@dataclass
class Lineage:
    hops: list[Hop] = field(default_factory=list)
    followed: set[str] = field(default_factory=set)  # egress hosts and followed givers


#: (hosts) -> the gifts (``flows.gifts``) *to* them in the lineage period
Scanner = Callable[[list[str]], list[dict[str, Any]]]
#: (hosts) -> all each of them gave inside the network in the period
Totals = Callable[[list[str]], dict[str, int]]

#: at most this many givers per host are looked at, the biggest first
WIDTH = 8


def trace(
    scan: Scanner,
    totals: Totals,
    frontier: dict[str, tuple[int, datetime]],
    inventory: Inventory,
    limits: Limits,
    names: dict[str, str],
) -> Lineage:
    """Follow gifts back from ``frontier`` (host -> bytes it sent on, time it stopped)."""
    result = Lineage(followed=set(frontier))
    stores = _stores(inventory)
    edges, depth = (scan(sorted(frontier)) if frontier else []), 1
    while frontier and depth <= limits.max_hops:
        candidates = _candidates(edges, frontier, result.followed, limits)
        if not candidates:
            break
        given = totals(sorted({c["giver"] for c in candidates}))
        frontier = {}
        for c in candidates:
            store = _store_of(stores, c["giver"], c["port"])
            followed = c["bytes"] >= limits.focus_share * given.get(c["giver"], c["bytes"])
            result.hops.append(_hop(c, depth, store, followed, names))
            if followed:
                result.followed.add(c["giver"])
                if store is None and c["giver"] not in frontier:
                    frontier[c["giver"]] = (int(c["bytes"]), c["last"])
        if frontier:
            edges = scan(sorted(frontier))
        depth += 1
    return result


def _candidates(
    edges: list[dict[str, Any]],
    frontier: dict[str, tuple[int, datetime]],
    seen: set[str],
    limits: Limits,
) -> list[dict[str, Any]]:
    out = []
    for e in edges:
        if e["taker"] not in frontier or e["giver"] in seen or e["giver"] in frontier:
            continue
        down, until = frontier[e["taker"]]
        big = e["bytes"] >= max(limits.min_hop_bytes, limits.hop_share * down)
        if big and e["first"] < until:
            out.append(e)
    out.sort(key=lambda e: -e["bytes"])
    seen_per: dict[str, int] = {}
    kept = []
    for e in out:
        seen_per[e["taker"]] = seen_per.get(e["taker"], 0) + 1
        if seen_per[e["taker"]] <= WIDTH:
            kept.append(e)
    return kept


def _stores(inventory: Inventory) -> dict[str, list[Datastore]]:
    by_ip = {h.name: h.ip for h in inventory.hosts}
    out: dict[str, list[Datastore]] = {}
    for d in inventory.datastores:
        if d.host:
            out.setdefault(by_ip.get(d.host, d.host), []).append(d)
    return out


def _store_of(stores: dict[str, list[Datastore]], ip: str, port: int) -> str | None:
    return next((d.name for d in stores.get(ip, ()) if not d.ports or port in d.ports), None)


def _hop(
    e: dict[str, Any], depth: int, store: str | None, followed: bool, names: dict[str, str]
) -> Hop:
    return Hop(
        src=e["giver"], dst=e["taker"], src_name=names.get(e["giver"]),
        dst_name=names.get(e["taker"]), port=int(e["port"]), service=e["service"],
        bytes=int(e["bytes"]), flows=int(e["flows"]), first=e["first"].astimezone(UTC),
        last=e["last"].astimezone(UTC), depth=depth, datastore=store, followed=followed,
    )  # fmt: skip

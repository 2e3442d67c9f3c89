"""Breach scoping: what left, how much, and whose (DESIGN §1, §4).

``scope(store, inventory, incident_id, settings)`` answers for one incident:

1. the **egress**: bytes its hosts sent to its outside destinations in its window
   (``egress``), slices of connections still open at the end included;
2. the **lineage**: which internal hosts fed those hosts before they sent (``lineage``);
3. the **reads** the access log proves on the data stores (``reads``);
4. per data store and category, **records and people as low/high bounds** with the
   reasoning behind each (``bounds``), and a plain "no evidence" for categories not reached.

Scans of ``flows``, ``dns`` and ``access`` are Ibis expressions (DuckDB here, Spark for the
scale-out); what follows works on the small tables they return.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import ibis
import pyarrow as pa

from hemostat.config import Settings
from hemostat.detect.runner import load
from hemostat.errors import HemostatError
from hemostat.incidents import listing
from hemostat.inventory import Inventory
from hemostat.schema import Finding, Incident
from hemostat.scope import bounds, egress, flows, lineage, pairs, reads
from hemostat.scope.model import Egress, Event, Reach, Read, Scope, Status
from hemostat.scope.words import Said, said
from hemostat.store import Store

__all__ = ["Scope", "ScopeError", "scope"]


class ScopeError(HemostatError):
    """The incident cannot be scoped (unknown id, empty store)."""


def scope(
    store: Store,
    inventory: Inventory,
    incident_id: str,
    settings: Settings,
    progress: Callable[[str], None] | None = None,
    backend: Any = None,
) -> Scope:
    """Scope one incident over the store's telemetry, or ``backend``'s (the lake, for the
    Spark engine); the ``pairs`` rollup is always the store's."""
    say = progress or (lambda _: None)
    incident, detected = _incident(store, incident_id)
    found = [f for f in load(store) if f.id in set(incident.findings)]
    s = _settings(settings)
    backend = ibis.duckdb.from_connection(store.con) if backend is None else backend
    return _scope(backend, store, inventory, incident, found, s, detected, say)


def _scope(
    backend: Any,
    store: Store,
    inventory: Inventory,
    incident: Incident,
    found: list[Finding],
    s: dict[str, Any],
    detected: datetime | None,
    say: Callable[[str], None],
) -> Scope:
    window = (incident.start, incident.end)
    lo = incident.start - timedelta(hours=s["lead_hours"])
    tail = incident.end + timedelta(hours=s["tail_hours"])
    names = {h.ip: h.name for h in inventory.hosts}
    hosts = [h for h in incident.hosts if inventory.is_internal(h)]
    flow_table = backend.table("flows")

    margin = timedelta(hours=1)

    rolled = pairs.covered(store, lo - margin, incident.end)
    stored = ibis.duckdb.from_connection(store.con)  # the pairs rollup is the store's

    def scan(who: list[str]) -> list[dict[str, Any]]:
        if rolled:
            given = pairs.gifts(stored.table("pairs"), who, lo, incident.end, 2 * margin)
        else:
            touched = flows.touching(flow_table, who, lo, incident.end, margin)
            given = flows.gifts(touched, inventory.internal)
            given = given.filter(given.taker.isin(who))
        rows: list[dict[str, Any]] = (stored if rolled else backend).to_pyarrow(given).to_pylist()
        return rows

    def totals(who: list[str]) -> dict[str, int]:
        if rolled:
            given = pairs.given(stored.table("pairs"), who, lo, incident.end, 2 * margin)
        else:
            touched = flows.touching(flow_table, who, lo, incident.end, margin)
            edges = flows.gifts(touched, inventory.internal)
            edges = edges.filter(edges.giver.isin(who))
            given = edges.group_by("giver").aggregate(bytes=edges.bytes.sum())
        rows = (stored if rolled else backend).to_pyarrow(given).to_pylist()
        return {r["giver"]: int(r["bytes"]) for r in rows}

    say("egress: what the incident's hosts sent outside")
    # egress is what left in the window (and the tail of its open connections), not the lead
    sent = flows.outward(flow_table, hosts, inventory.internal, incident.start, tail, margin)
    first = backend.to_pyarrow(sent) if hosts else pa.table({})
    named = egress.destinations(incident, found, inventory.internal)
    dns = _dns(backend, hosts, window) if any(egress.is_domain(d) for d in named) else None
    out = egress.measure(
        first, dns if dns is not None else pa.table({}), hosts, named, window, names
    )
    senders = [h.ip for h in out.hosts if h.ip in hosts] or hosts
    say("lineage: which hosts fed them")
    limits = lineage.Limits(s["max_hops"], s["hop_share"], s["min_hop_bytes"], s["focus_share"])
    until = out.last or incident.end
    frontier = {h: (_sent(out, h), until) for h in senders}
    trace = lineage.trace(scan, totals, frontier, inventory, limits, names)
    say("reads: what the access log shows they read")
    access = backend.table("access")
    local = sorted({*senders, *(h.src for h in trace.hops if h.followed and not h.datastore)})
    rows = backend.to_pyarrow(reads.query(access, sorted(trace.followed), local, lo, incident.end))
    found_reads = reads.classify(
        rows.to_pylist(), inventory, reads.accounts(found), s["bulk_share"]
    )
    reached = _reached(inventory, found_reads, trace.hops, out, s["max_compression"])
    unknowns = _unknowns(inventory, out, reached)
    notes = _routine(found_reads) + _busy(trace.hops)
    return Scope(
        incident=incident, site=inventory.site, timezone=inventory.timezone, window=window,
        egress=out, lineage=tuple(h for h in trace.hops if h.followed), datastores=tuple(reached),
        categories=bounds.categories(reached),
        timeline=tuple(_timeline(incident, out, trace.hops, found_reads, detected)),
        actions=_actions(store, incident), unknowns=_english(unknowns),
        settings=s, generated_at=datetime.now(UTC), detected_at=detected,
        notes=_english(notes), unknowns_said=tuple(unknowns), notes_said=tuple(notes),
    )  # fmt: skip


def _english(sentences: list[Said]) -> tuple[str, ...]:
    return tuple(x.text() for x in sentences)


def _sent(out: Egress, host: str) -> int:
    return next((h.bytes for h in out.hosts if h.ip == host), 0)


def _reached(
    inventory: Inventory, found: list[Read], hops: list[Any], out: Egress, max_compression: float
) -> list[Reach]:
    fit = bounds.fit(out.bytes, found, max_compression)
    reached = []
    for store in inventory.datastores:
        mine = [r for r in found if r.datastore == store.name and r.bulk]
        store_hops = [h for h in hops if h.datastore == store.name and h.followed]
        if mine:
            reached.append(bounds.proven(store, mine, fit, store_hops))
        elif store_hops:
            reached.append(bounds.possible(store, store_hops, out.bytes, max_compression))
    return reached


def _incident(store: Store, incident_id: str) -> tuple[Incident, datetime | None]:
    for listed in listing(store):
        if listed.incident.id == incident_id:
            row = store.con.execute(
                "SELECT created_at FROM incidents WHERE id = ?", [incident_id]
            ).fetchone()
            created = row[0].astimezone(UTC) if row and row[0] else None
            return listed.incident, created
    known = ", ".join(x.incident.id for x in listing(store)[:5]) or "none yet (run hemostat detect)"
    raise ScopeError(f"no incident {incident_id!r} in {store.path}; known: {known}")


def _settings(settings: Settings) -> dict[str, Any]:
    names = ("lead_hours", "tail_hours", "max_hops", "hop_share", "min_hop_bytes",
             "focus_share", "max_compression", "bulk_share")  # fmt: skip
    return {n: settings.get("scope", n) for n in names}


def _dns(backend: Any, hosts: list[str], window: tuple[datetime, datetime]) -> pa.Table:
    d = backend.table("dns")
    d = d.filter(d.src_ip.isin(hosts) & (d.ts >= window[0]) & (d.ts < window[1]))
    return backend.to_pyarrow(d.select("ts", "src_ip", "query"))


def _timeline(
    incident: Incident, out: Egress, hops: list[Any], found: list[Read], detected: datetime | None
) -> list[Event]:
    told = [(h.first, "transfer", said("event.transfer", src=h.src, bytes=h.bytes, dst=h.dst,
                                       port=h.port)) for h in hops if h.followed]  # fmt: skip
    told += [(r.first, "read", said("event.read", account=str(r.account), object=r.object,
                                    client=str(r.client), rows=r.rows))
             for r in found if r.bulk]  # fmt: skip
    if out.first and out.last:
        told.append((out.first, "egress_start", said("event.egress_start", bytes=out.bytes)))
        told.append((out.last, "egress_end", said("event.egress_end")))
    if detected:
        told.append((detected, "detected", said("event.detected", incident=incident.id)))
    events = [Event(ts, what, text.text(), text) for ts, what, text in told]
    return sorted(events, key=lambda e: e.ts)


def _actions(store: Store, incident: Incident) -> tuple[dict[str, Any], ...]:
    targets = [*incident.hosts, *incident.destinations]
    rows = store.con.execute(
        "SELECT seq, id, ts, actor, kind, target, reason, step, result FROM actions "
        "WHERE list_contains(?, target) OR kind = 'site' OR contains(reason, ?) ORDER BY seq",
        [targets, incident.id],
    ).fetchall()
    keys = ("seq", "id", "ts", "actor", "kind", "target", "reason", "step", "result")
    return tuple(
        {k: (v.astimezone(UTC).isoformat() if isinstance(v, datetime) else v)
         for k, v in zip(keys, r, strict=True)}
        for r in rows
    )  # fmt: skip


def _unknowns(inventory: Inventory, out: Egress, reached: list[Reach]) -> list[Said]:
    notes = [said("unknown.encrypted"), said("unknown.compression"), said("unknown.channels")]
    notes += [said("unknown.flows_only", store=r.name) for r in reached
              if r.status == Status.POSSIBLE]  # fmt: skip
    notes += bounds.unreached_hosts(inventory, [h.ip for h in out.hosts])
    if not out.bytes:
        notes.append(said("unknown.no_egress"))
    return notes


def _routine(found: list[Read]) -> list[Said]:
    routine = [r for r in found if not r.bulk]
    if not routine:
        return []
    rows = sum(r.rows_total for r in routine)
    return [said("note.routine", reads=sum(r.events for r in routine), rows=rows)]


def _busy(hops: list[Any]) -> list[Said]:
    busy = sorted({h.src for h in hops if not h.followed})
    if not busy:
        return []
    listed = ", ".join(busy[:5]) + (", ..." if len(busy) > 5 else "")
    return [said("note.busy", count=len(busy), hosts=listed)]

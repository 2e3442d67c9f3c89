"""Findings → incidents: grouped by host chain, destination and time, scored, named, explained.

Two findings belong together when they are close in time (``incidents.link_gap_hours``) and
share their actor (same ``host``), follow a chain (one's host is among the other's ``hosts``:
a jump server that staged data on the file server that uploaded it) or share an outside
destination. A group becomes an incident when its score reaches ``incidents.min_score``:
the best finding's score, raised for every other detector that corroborates it. Findings of
expected transfers count at their lowered score and are listed as such; none is dropped.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hemostat.config import Settings
from hemostat.detect.runner import load
from hemostat.schema import Finding, Incident, Kind
from hemostat.store import Store

#: kinds whose ``bytes_out`` left the site (staging and access move data inside)
LEAVING = (Kind.EXFILTRATION, Kind.C2, Kind.DNS_TUNNEL, Kind.THREAT_INTEL)
#: score added per other detector that corroborates the best finding (its own score ≥ 30)
CORROBORATION = 8.0
CORROBORATING_SCORE = 30.0


def group(findings: list[Finding], settings: Settings) -> list[list[Finding]]:
    """Connected groups of related findings, each sorted by start."""
    parent = list(range(len(findings)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    gap = timedelta(hours=settings.link_gap_hours)
    for a, b in _candidates(findings):
        if _linked(findings[a], findings[b], gap):
            parent[root(b)] = root(a)
    groups: dict[int, list[Finding]] = defaultdict(list)
    for i, finding in enumerate(findings):
        groups[root(i)].append(finding)
    return [sorted(g, key=lambda f: (f.ts, f.id)) for g in groups.values()]


def _candidates(findings: list[Finding]) -> set[tuple[int, int]]:
    """Pairs that share an actor, a destination, or where one reaches the other's actor."""
    actors: dict[str, list[int]] = defaultdict(list)
    destinations: dict[str, list[int]] = defaultdict(list)
    for i, f in enumerate(findings):
        actors[f.host].append(i)
        if f.destination:
            destinations[f.destination].append(i)
    pairs: set[tuple[int, int]] = set()
    for members in [*actors.values(), *destinations.values()]:
        pairs.update((a, b) for a in members for b in members if a < b)
    for i, f in enumerate(findings):
        for reached in f.hosts:
            pairs.update((i, j) for j in actors.get(reached, ()) if j != i)
    return pairs


def _linked(a: Finding, b: Finding, gap: timedelta) -> bool:
    """Close in time and related: same actor or destination (either order in time), or a
    chain: one reached the other's actor, which acted afterwards (data moves forward)."""
    if a.host == b.host or (a.destination and a.destination == b.destination):
        return max(a.ts, b.ts) - min(a.end_ts, b.end_ts) <= gap
    first, then = (a, b) if b.host in a.hosts else (b, a)
    return then.ts >= first.ts and then.ts - first.end_ts <= gap


def score(members: Iterable[Finding]) -> float:
    """Best finding's score, plus ``CORROBORATION`` for every other detector that found
    something (≥ 30) about the same host or a chain leading to it (max 100). Findings of
    expected transfers corroborate nothing, and hosts that merely share a popular destination do not
    corroborate each other: they are listed together, they do not add up."""
    members = list(members)
    best = max(f.score for f in members)
    per_host: dict[str, dict[str, float]] = defaultdict(dict)
    for f in members:
        if f.expected:
            continue
        for host in {f.host, *f.hosts}:  # a chain's findings name the hosts they lead to
            seen = per_host[host]
            seen[f.detector] = max(seen.get(f.detector, 0.0), f.score)
    for scores in per_host.values():
        ranked = sorted(scores.values(), reverse=True)
        others = sum(1 for s in ranked[1:] if s >= CORROBORATING_SCORE)
        best = max(best, ranked[0] + CORROBORATION * others)
    return round(min(100.0, best), 1)


def kind(members: Iterable[Finding]) -> Kind:
    """The most serious kind among the findings that score near the best one."""
    members = list(members)
    top = max(f.score for f in members)
    strong = {f.kind for f in members if f.score >= 0.8 * top}
    return next(k for k in Kind if k in strong)


def bytes_out(members: Iterable[Finding]) -> int:
    """What left: per host, the larger of its per-destination findings summed (each at its
    largest) and its largest host-level finding; staging and access moves do not count."""
    per_dest: dict[tuple[str, str], int] = {}
    host_level: dict[str, int] = defaultdict(int)
    for f in members:
        if f.kind not in LEAVING:
            continue
        if f.destination:
            key = (f.host, f.destination)
            per_dest[key] = max(per_dest.get(key, 0), f.bytes_out)
        else:
            host_level[f.host] = max(host_level[f.host], f.bytes_out)
    hosts = {h for h, _ in per_dest} | set(host_level)
    return sum(
        max(sum(b for (h, _), b in per_dest.items() if h == host), host_level[host])
        for host in hosts
    )


def build(members: list[Finding], ident: str) -> Incident:
    named = kind(members)
    top = max((f for f in members if f.kind == named), key=lambda f: (f.score, f.bytes_out))
    detectors = tuple(dict.fromkeys(f.detector for f in sorted(members, key=lambda f: -f.score)))
    others = [d for d in detectors if d != top.detector]
    hosts = dict.fromkeys(f.host for f in members if f.kind in LEAVING)
    hosts.update(dict.fromkeys(h for f in members for h in (f.host, *f.hosts)))
    summary = top.summary + (f" Corroborated by {', '.join(others)}." if others else "")
    return Incident(
        id=ident,
        kind=named,
        score=score(members),
        hosts=tuple(hosts),
        destinations=tuple(  # where data went first, then supplier sources, internal hops
            dict.fromkeys(
                f.destination
                for f in sorted(members, key=lambda f: (f.kind not in LEAVING, -f.bytes_out))
                if f.destination
            )
        ),
        start=min(f.ts for f in members),
        end=max(f.end_ts for f in members),
        bytes_out=bytes_out(members),
        detectors=detectors,
        attack=tuple(sorted({a for f in members for a in f.attack})),
        summary=summary,
        findings=tuple(f.id for f in members),
        expected=tuple(sorted({f.expected for f in members if f.expected})),
    )


def incidents(
    findings: list[Finding], settings: Settings, known: dict[str, str] | None = None
) -> list[Incident]:
    """Incidents from findings; ``known`` (finding id → incident id) keeps ids stable."""
    known = known or {}
    groups = [g for g in group(findings, settings) if score(g) >= settings.min_score]
    votes = [Counter(known[f.id] for f in g if f.id in known) for g in groups]
    # an old id goes to the group holding most of its findings (a split keeps it once)
    order = sorted(range(len(groups)), key=lambda i: -max(votes[i].values(), default=0))
    used: set[str] = set()
    out: list[Incident] = []
    for i in order:
        free = [(n, ident) for ident, n in votes[i].items() if ident not in used]
        ident = (
            min(free, key=lambda item: (-item[0], item[1]))[1]
            if free
            else "INC-"
            + hashlib.sha1(groups[i][0].id.encode(), usedforsecurity=False).hexdigest()[:8]
        )
        used.add(ident)
        out.append(build(groups[i], ident))
    return sorted(out, key=lambda i: (i.start, i.id))


# ---- persistence -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Listed:
    incident: Incident
    status: str
    updated_at: datetime


def rebuild(store: Store, settings: Settings) -> list[Incident]:
    """Regroup every stored finding; incidents keep their id, status and creation time."""
    findings = load(store)
    con = store.con
    known = dict(
        con.execute("SELECT id, incident_id FROM findings WHERE incident_id IS NOT NULL").fetchall()
    )
    old = {
        r[0]: r[1:] for r in con.execute("SELECT id, status, created_at FROM incidents").fetchall()
    }
    result = incidents(findings, settings, known)
    now = datetime.now(UTC)
    with store.transaction():
        con.execute("DELETE FROM incidents")
        con.execute("UPDATE findings SET incident_id = NULL")
        for inc in result:
            status, created = old.get(inc.id, ("open", now))
            con.execute(
                "INSERT INTO incidents (id, kind, severity, score, hosts, destinations, start, "
                '"end", bytes_out, detectors, attack, status, updated_at, summary, findings, '
                "expected, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [inc.id, inc.kind, inc.severity, inc.score, list(inc.hosts),
                 list(inc.destinations), inc.start, inc.end, inc.bytes_out, list(inc.detectors),
                 list(inc.attack), status, now, inc.summary, list(inc.findings),
                 list(inc.expected), created],
            )  # fmt: skip
            con.execute(
                "UPDATE findings SET incident_id = ? WHERE list_contains(?, id)",
                [inc.id, list(inc.findings)],
            )
    return result


def listing(store: Store) -> list[Listed]:
    """Stored incidents, most severe first."""
    rows = store.con.execute(
        'SELECT id, kind, score, hosts, destinations, start, "end", bytes_out, detectors, attack, '
        "summary, findings, expected, status, updated_at FROM incidents ORDER BY score DESC, start"
    ).fetchall()
    return [
        Listed(
            Incident(
                id=r[0], kind=Kind(r[1]), score=r[2], hosts=tuple(r[3]), destinations=tuple(r[4]),
                start=r[5].astimezone(UTC), end=r[6].astimezone(UTC), bytes_out=int(r[7]),
                detectors=tuple(r[8]), attack=tuple(r[9]), summary=r[10], findings=tuple(r[11]),
                expected=tuple(r[12] or ()),
            ),
            r[13],
            r[14].astimezone(UTC),
        )
        for r in rows
    ]  # fmt: skip


def as_json(listed: Listed) -> dict[str, object]:
    """The DESIGN §4 ``incidents --json`` object (plus summary, status, findings, expected)."""
    inc = listed.incident
    return {
        "id": inc.id,
        "kind": str(inc.kind),
        "severity": str(inc.severity),
        "score": inc.score,
        "hosts": list(inc.hosts),
        "destinations": list(inc.destinations),
        "start": _iso(inc.start),
        "end": _iso(inc.end),
        "bytes_out": inc.bytes_out,
        "detectors": list(inc.detectors),
        "attack": list(inc.attack),
        "summary": inc.summary,
        "expected": list(inc.expected),
        "findings": list(inc.findings),
        "status": listed.status,
    }


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")

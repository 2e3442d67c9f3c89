"""What a scoping answer is made of: the egress, the lineage hops that fed it, the reads the
access log proves, and per data store and category the records and people as low/high
bounds with the reasoning behind each. ``Scope.as_json`` is the DESIGN §4 contract.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from hemostat.schema import Category, Incident
from hemostat.scope.words import texts

if TYPE_CHECKING:
    from hemostat.detect.words import Words
    from hemostat.scope.words import Said


class Status(enum.StrEnum):
    """How a data store or category is reached."""

    PROVEN = "proven"  # the access log shows reads by the hosts or accounts behind the egress
    POSSIBLE = "possible"  # data moved from the store's host towards the egress; no read logged
    NONE = "none"  # no evidence at all


@dataclass(frozen=True, slots=True)
class Bounds:
    low: int
    high: int

    def __post_init__(self) -> None:
        if not 0 <= self.low <= self.high:
            raise ValueError(f"bounds must satisfy 0 <= low <= high, got {self.low}, {self.high}")

    def as_json(self) -> dict[str, int]:
        return {"low": self.low, "high": self.high}


ZERO = Bounds(0, 0)


@dataclass(frozen=True, slots=True)
class Destination:
    address: str
    bytes: int
    flows: int
    first: datetime
    last: datetime
    hosts: tuple[str, ...]  # internal hosts that sent to it


@dataclass(frozen=True, slots=True)
class EgressHost:
    ip: str
    name: str | None
    bytes: int
    flows: int


@dataclass(frozen=True, slots=True)
class Egress:
    """Bytes that left: sent by the incident's hosts to its external destinations."""

    bytes: int
    flows: int
    destinations: tuple[Destination, ...]
    hosts: tuple[EgressHost, ...]
    open_bytes: int  # part of ``bytes`` from connections still open at the window's end
    first: datetime | None
    last: datetime | None
    timeline: tuple[tuple[datetime, int], ...]  # (minute, bytes) for charts


@dataclass(frozen=True, slots=True)
class Hop:
    """Data that moved inside the network towards the egress: ``src`` fed ``dst``."""

    src: str
    dst: str
    src_name: str | None
    dst_name: str | None
    port: int  # the server port (the data store's port when src is a data store)
    service: str | None
    bytes: int
    flows: int
    first: datetime
    last: datetime
    depth: int  # 1 = fed an egress host directly
    datastore: str | None  # the data store on ``src`` when the port is one of its ports
    followed: bool = True  # most of what ``src`` gave went here (else a busy server: listed only)


@dataclass(frozen=True, slots=True)
class Read:
    """Reads of one object by one account from one client, from the access log."""

    datastore: str
    object: str
    account: str | None
    client: str | None
    actions: tuple[str, ...]
    events: int
    rows: int  # largest single read's rows (or estimated from bytes, see ``estimated``)
    rows_total: int  # all reads' rows together
    bytes: int  # largest single read's bytes
    first: datetime
    last: datetime
    estimated: bool  # rows estimated from bytes (file reads carry no row count)
    bulk: bool  # large for this object, or by an account the incident names


@dataclass(frozen=True, slots=True)
class Reach:
    """One data store reached by the incident, with bounds and why."""

    name: str
    category: Category
    host: str | None
    status: Status
    records: Bounds
    subjects: Bounds
    bytes_read: int
    store_records: int | None
    store_subjects: int | None
    evidence: tuple[str, ...]  # reasoning sentences, in order
    reads: tuple[Read, ...] = ()
    hops: tuple[Hop, ...] = ()
    said: tuple[Said, ...] = ()  # ``evidence`` as sentences to word in a language

    def reasoning(self, words: Words | None = None) -> list[str]:
        """``evidence`` in ``words`` (a report's or the dashboard's Lang)."""
        return texts(self.said, self.evidence, words)


@dataclass(frozen=True, slots=True)
class CategoryScope:
    category: Category
    status: Status
    records: Bounds
    subjects: Bounds
    datastores: tuple[str, ...]
    statement: str  # one plain sentence, also when nothing was reached
    said: Said | None = None  # ``statement`` as a sentence to word in a language

    def stated(self, words: Words | None = None) -> str:
        """``statement`` in ``words``."""
        return texts((self.said,) if self.said else (), (self.statement,), words)[0]


@dataclass(frozen=True, slots=True)
class Event:
    """One moment of the incident's timeline (for the report and the notification)."""

    ts: datetime
    what: str  # egress_start | egress_end | read | transfer | detected | action | scoped
    text: str
    said: Said | None = None  # ``text`` as a sentence to word in a language

    def told(self, words: Words | None = None) -> str:
        """``text`` in ``words``."""
        return texts((self.said,) if self.said else (), (self.text,), words)[0]


@dataclass(frozen=True)
class Scope:
    incident: Incident
    site: str
    timezone: str
    window: tuple[datetime, datetime]
    egress: Egress
    lineage: tuple[Hop, ...]
    datastores: tuple[Reach, ...]
    categories: dict[Category, CategoryScope]
    timeline: tuple[Event, ...]
    actions: tuple[dict[str, Any], ...]  # containment actions from the audit log
    unknowns: tuple[str, ...]  # what the evidence cannot tell
    settings: dict[str, Any]  # the scoping settings used
    generated_at: datetime
    detected_at: datetime | None = None
    notes: tuple[str, ...] = field(default=())
    unknowns_said: tuple[Said, ...] = ()  # ``unknowns`` as sentences to word in a language
    notes_said: tuple[Said, ...] = ()

    def unknowns_in(self, words: Words | None = None) -> list[str]:
        """``unknowns`` in ``words``."""
        return texts(self.unknowns_said, self.unknowns, words)

    def notes_in(self, words: Words | None = None) -> list[str]:
        """``notes`` in ``words``."""
        return texts(self.notes_said, self.notes, words)

    def as_json(self) -> dict[str, Any]:
        """The DESIGN §4 ``scope --json`` object (keys are a contract: extend, never rename)."""
        i, e = self.incident, self.egress
        return {
            "incident": i.id,
            "site": self.site,
            "kind": str(i.kind),
            "severity": str(i.severity),
            "score": i.score,
            "summary": i.summary,
            "attack": list(i.attack),
            "window": {"start": _iso(self.window[0]), "end": _iso(self.window[1])},
            "egress": {
                "bytes": e.bytes,
                "flows": e.flows,
                "open_bytes": e.open_bytes,
                "first": _iso(e.first),
                "last": _iso(e.last),
                "destinations": [_fields(d) for d in e.destinations],
                "hosts": [_fields(h) for h in e.hosts],
                "timeline": [{"ts": _iso(t), "bytes": b} for t, b in e.timeline],
            },
            "lineage": [_fields(h) for h in self.lineage],
            "datastores": [_reach(r) for r in self.datastores],
            "categories": {
                str(c): {
                    "status": str(s.status),
                    "records": s.records.as_json(),
                    "subjects": s.subjects.as_json(),
                    "datastores": list(s.datastores),
                    "statement": s.statement,
                }
                for c, s in self.categories.items()
            },
            "timeline": [{"ts": _iso(v.ts), "what": v.what, "text": v.text} for v in self.timeline],
            "actions": list(self.actions),
            "unknowns": list(self.unknowns),
            "settings": self.settings,
            "detected_at": _iso(self.detected_at),
            "generated_at": _iso(self.generated_at),
        }


def _iso(ts: datetime | None) -> str | None:
    if ts is None:
        return None
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _fields(item: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(item):
        value = getattr(item, f.name)
        out[f.name] = (
            _iso(value) if isinstance(value, datetime)
            else list(value) if isinstance(value, tuple)
            else str(value) if isinstance(value, enum.Enum)
            else value
        )  # fmt: skip
    return out


def _reach(r: Reach) -> dict[str, Any]:
    return {
        "name": r.name,
        "category": str(r.category),
        "status": str(r.status),
        "host": r.host,
        "records": r.records.as_json(),
        "subjects": r.subjects.as_json(),
        "bytes_read": r.bytes_read,
        "store_records": r.store_records,
        "store_subjects": r.store_subjects,
        "evidence": list(r.evidence),
        "reads": [_fields(x) for x in r.reads],
        "hops": [_fields(h) for h in r.hops],
    }

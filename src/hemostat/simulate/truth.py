"""Ground truth: every episode (malicious or benign look-alike) with its hosts, destinations,
window and bytes, computed from the very rows written for it. See docs/simulate.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hemostat.simulate.datastores import Leak
from hemostat.simulate.flows import Flows
from hemostat.simulate.writer import iso

FORMAT = "hemostat-simulate-truth/1"


@dataclass(frozen=True, slots=True)
class Episode:
    id: str  # unique in the file, e.g. "provider_bulk/exfiltration"
    scenario: str | None  # the scenario that produced it; None for everyday look-alikes
    kind: str  # exfiltration | c2 | dns_tunnel | staging | third_party_access | backup | ...
    malicious: bool
    hosts: tuple[str, ...]  # originators (IPs or CIDR ranges)
    destinations: tuple[str, ...]  # responders (IPs, CIDR ranges or, for DNS, domains)
    start: int  # µs, first row's start
    end: int  # µs, last row's end
    bytes_out: int  # sum of orig_bytes of the episode's conn rows
    bytes_in: int
    rows: int  # conn rows
    ports: tuple[int, ...] = ()
    leaks: tuple[Leak, ...] = ()
    attack: tuple[str, ...] = ()
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def truth(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "scenario": self.scenario,
            "kind": self.kind,
            "malicious": self.malicious,
            "hosts": list(self.hosts),
            "destinations": list(self.destinations),
            "start": iso(self.start),
            "end": iso(self.end),
            "bytes_out": self.bytes_out,
            "bytes_in": self.bytes_in,
            "rows": self.rows,
            "ports": list(self.ports),
            "datastores": [leak.truth() for leak in self.leaks],
            "attack": list(self.attack),
            "note": self.note,
            **self.extra,
        }


def measure(
    batch: Flows,
    ips: list[str],
    *,
    id: str,
    scenario: str | None,
    kind: str,
    malicious: bool,
    destinations: tuple[str, ...] | None = None,
    **rest: Any,
) -> Episode:
    """The episode made of exactly the conn rows of ``batch``."""
    end = batch.ts + batch.dur
    return Episode(
        id=id,
        scenario=scenario,
        kind=kind,
        malicious=malicious,
        hosts=tuple(sorted({ips[i] for i in np.unique(batch.src)})),
        destinations=destinations or tuple(sorted({ips[i] for i in np.unique(batch.dst)})),
        start=int(batch.ts.min()),
        end=int(end.max()),
        bytes_out=int(batch.ob.sum()),
        bytes_in=int(batch.rb.sum()),
        rows=len(batch),
        ports=tuple(int(p) for p in np.unique(batch.dport)),
        **rest,
    )


def document(meta: dict[str, Any], episodes: list[Episode]) -> dict[str, Any]:
    ordered = sorted(episodes, key=lambda e: (e.start, e.id))
    return {
        "format": FORMAT,
        **meta,
        "episodes": [e.truth() for e in ordered if e.malicious],
        "benign": [e.truth() for e in ordered if not e.malicious],
    }

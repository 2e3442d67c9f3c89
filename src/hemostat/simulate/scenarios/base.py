"""The base of every scenario: a class with its CLI name, the kind of its main episode and
its ATT&CK techniques as class variables, tunables as dataclass fields, and one ``plan``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from hemostat.simulate.flows import Flows
from hemostat.simulate.plan import Context, Plan
from hemostat.simulate.truth import Episode, measure


class Scenario:
    """Base of the scenarios: ``id`` is the CLI name, ``kind`` the main episode's kind."""

    id: ClassVar[str]
    kind: ClassVar[str]
    malicious: ClassVar[bool] = True
    attack: ClassVar[tuple[str, ...]] = ()

    def plan(self, ctx: Context) -> Plan:
        raise NotImplementedError

    def episode(self, ctx: Context, batch: Flows, kind: str | None = None, **rest: Any) -> Episode:
        kind = kind or self.kind
        name = self.id if kind == self.kind else f"{self.id}/{kind}"
        rest.setdefault("attack", self.attack)
        return measure(
            batch,
            ctx.addresses.ips,
            id=name,
            scenario=self.id,
            kind=kind,
            malicious=self.malicious,
            **rest,
        )

"""The facts of the Art. 33 notification, decided from a scope: which notification it is, the
dates and the 72 h deadline, which categories are reached, whether the risk to people is
presumed high (Art. 34), the containment actions taken and the measures to propose.

The text itself lives in the translation tables; this module only decides.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from hemostat.errors import ConfigError
from hemostat.schema import Category, CommandStatus, Kind
from hemostat.scope.model import CategoryScope, Scope, Status

DEADLINE = timedelta(hours=72)

#: health data, a special category (GDPR Art. 9): a leak is presumptively high risk
HEALTH = frozenset({Category.PATIENT, Category.RESEARCH})
#: categories whose leak is presumed high risk: health data, and staff records (national
#: insurance number, bank details, payroll)
HIGH_RISK = HEALTH | {Category.STAFF}
#: ATT&CK techniques that say a supplier's or a valid account's access was used
_SUPPLIER_TECHNIQUES = ("T1133", "T1199", "T1078")


class NotificationType(enum.StrEnum):
    INITIAL = "initial"  # within 72 h, facts still partial: to be completed
    COMPLEMENTARY = "complementary"  # follows an initial notification, with proven numbers


@dataclass(frozen=True, slots=True)
class Contact:
    """The organisation and its data-protection officer; what is missing is left to fill."""

    organisation: str | None = None  # defaults to the scope's site
    name: str | None = None
    role: str | None = None  # e.g. "Délégué à la protection des données"
    email: str | None = None
    phone: str | None = None
    address: str | None = None
    siren: str | None = None


@dataclass(frozen=True)
class Notice:
    """What the notification states, decided from the scope."""

    type: NotificationType
    chosen: bool  # given by the caller rather than decided from the evidence
    start: datetime | None  # first data movement seen (lineage hop or egress)
    end: datetime | None  # last byte seen leaving
    discovered: datetime | None
    deadline: datetime | None
    overdue: bool  # the report is written after the 72 h deadline
    reached: tuple[CategoryScope, ...]  # status proven or possible, proven first
    unreached: tuple[CategoryScope, ...]
    high_risk: bool
    health: bool
    containment: dict[str, Any] | None  # first applied action that succeeded
    supplier: bool  # a supplier's remote access or a valid account was used
    accounts: tuple[str, ...]  # accounts the access log shows reading the data


def notice(
    scope: Scope, kind: NotificationType | str | None = None, now: datetime | None = None
) -> Notice:
    """Decide the notification's facts; ``kind`` forces initial or complementary."""
    reached = tuple(
        sorted(
            (c for c in scope.categories.values() if c.status is not Status.NONE),
            key=lambda c: (c.status is not Status.PROVEN, -c.subjects.high),
        )
    )
    discovered = scope.detected_at
    deadline = discovered + DEADLINE if discovered else None
    reached_cats = {c.category for c in reached}
    return Notice(
        type=_type(reached, kind),
        chosen=kind is not None,
        start=_start(scope),
        end=scope.egress.last,
        discovered=discovered,
        deadline=deadline,
        overdue=deadline is not None and (now or datetime.now(UTC)) > deadline,
        reached=reached,
        unreached=tuple(c for c in scope.categories.values() if c.status is Status.NONE),
        high_risk=bool(reached_cats & HIGH_RISK),
        health=bool(reached_cats & HEALTH),
        containment=containment(scope.actions),
        supplier=_supplier(scope),
        accounts=tuple(sorted({r.account for d in scope.datastores for r in d.reads if r.account})),
    )


def _type(
    reached: tuple[CategoryScope, ...], kind: NotificationType | str | None
) -> NotificationType:
    """Complementary when every reached category is proven by the access log (the numbers
    are established); initial otherwise, including when nothing is reached yet."""
    if kind is not None:
        try:
            return NotificationType(kind)
        except ValueError:
            choices = " or ".join(t.value for t in NotificationType)
            raise ConfigError(f"unknown notification type {kind!r}; use {choices}") from None
    if reached and all(c.status is Status.PROVEN for c in reached):
        return NotificationType.COMPLEMENTARY
    return NotificationType.INITIAL


def _start(scope: Scope) -> datetime | None:
    """The breach starts with the first data movement seen: a lineage hop or the egress."""
    moments = [h.first for h in scope.lineage]
    if scope.egress.first is not None:
        moments.append(scope.egress.first)
    return min(moments, default=None)


def _supplier(scope: Scope) -> bool:
    incident = scope.incident
    return (
        incident.kind is Kind.THIRD_PARTY_ACCESS
        or "provider_access" in incident.detectors
        or any(a.split(".")[0] in _SUPPLIER_TECHNIQUES for a in incident.attack)
    )


# ---- containment actions ------------------------------------------------------------------


def action_time(action: dict[str, Any]) -> datetime | None:
    """An action's ``ts``: a datetime from the store, or ISO 8601 text from JSON."""
    value = action.get("ts")
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def containment(actions: tuple[dict[str, Any], ...]) -> dict[str, Any] | None:
    """The containment moment: the first action applied with success (step apply, result
    ``done: ...`` as the audit log writes it, or ``ok``)."""
    applied = [a for a in actions if str(a.get("step")) == "apply" and _succeeded(a)
               and action_time(a)]  # fmt: skip
    return min(
        applied, key=lambda a: action_time(a) or datetime.max.replace(tzinfo=UTC), default=None
    )


def _succeeded(action: dict[str, Any]) -> bool:
    result = str(action.get("result"))
    return result == "ok" or result.split(":", 1)[0].strip() == str(CommandStatus.DONE)


def sorted_actions(actions: tuple[dict[str, Any], ...]) -> list[dict[str, Any]]:
    """Actions in time order (those without a readable time last, in their given order)."""
    far = datetime.max.replace(tzinfo=UTC)
    return sorted(actions, key=lambda a: action_time(a) or far)

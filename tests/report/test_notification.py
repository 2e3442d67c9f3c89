"""The notification's facts: type, dates, deadline, risk, containment moment."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from hemostat.errors import ConfigError
from hemostat.report.notification import NotificationType, containment, notice
from hemostat.schema import Category, Kind
from hemostat.scope.model import Scope, Status
from tests.report.conftest import CONTAINED, PULL, at


def _possible(scope: Scope) -> Scope:
    """The same scope where the patient category is only possible (no read logged)."""
    cats = dict(scope.categories)
    cats[Category.PATIENT] = dataclasses.replace(cats[Category.PATIENT], status=Status.POSSIBLE)
    return dataclasses.replace(scope, categories=cats)


def test_proven_numbers_make_a_complementary_notification(supplier: Scope) -> None:
    n = notice(supplier, now=at(3, 0))
    assert n.type is NotificationType.COMPLEMENTARY and not n.chosen
    assert [c.category for c in n.reached] == [Category.PATIENT]
    assert {c.category for c in n.unreached} == set(Category) - {Category.PATIENT}


def test_possible_evidence_or_nothing_makes_an_initial_one(supplier: Scope, nothing: Scope) -> None:
    assert notice(_possible(supplier)).type is NotificationType.INITIAL
    assert notice(nothing).type is NotificationType.INITIAL


def test_the_caller_may_choose_the_type(supplier: Scope) -> None:
    n = notice(supplier, "initial")
    assert n.type is NotificationType.INITIAL and n.chosen
    with pytest.raises(ConfigError, match="unknown notification type 'final'; use initial or"):
        notice(supplier, "final")


def test_dates_start_at_the_first_data_movement_and_the_deadline_is_72_h(supplier: Scope) -> None:
    n = notice(supplier, now=at(3, 0))
    assert n.start == PULL.first  # the dump, before the egress
    assert n.end == supplier.egress.last
    assert n.deadline == at(1, 16, 30) + timedelta(hours=72)
    assert not n.overdue
    assert notice(supplier, now=at(1, 16, 30) + timedelta(hours=73)).overdue


def test_health_data_is_high_risk_and_nothing_reached_is_not(
    supplier: Scope, nothing: Scope
) -> None:
    n = notice(supplier)
    assert n.high_risk and n.health and n.supplier and n.accounts == ("vx-support",)
    none = notice(nothing)
    assert not none.high_risk and not none.reached and not none.supplier


def test_finance_alone_is_left_to_the_dpo(supplier: Scope) -> None:
    cats = dict(supplier.categories)
    cats[Category.PATIENT] = dataclasses.replace(cats[Category.PATIENT], status=Status.NONE)
    cats[Category.FINANCE] = dataclasses.replace(
        cats[Category.PATIENT], category=Category.FINANCE, status=Status.POSSIBLE
    )
    incident = dataclasses.replace(
        supplier.incident, kind=Kind.EXFILTRATION, attack=("T1048",), detectors=("egress_volume",)
    )
    n = notice(dataclasses.replace(supplier, categories=cats, incident=incident))
    assert not n.high_risk and [c.category for c in n.reached] == [Category.FINANCE]
    assert not n.supplier


def test_containment_is_the_first_successful_apply(contained: Scope) -> None:
    first = containment(contained.actions)
    assert first is not None and first["id"] == "A-2" and first["ts"] == CONTAINED
    failed = tuple({**a, "result": "failed"} if a["id"] == "A-2" else a for a in contained.actions)
    assert containment(failed) is None  # a plan or a self-test is not a containment
    assert containment(()) is None


def test_containment_reads_the_results_the_audit_log_writes(contained: Scope) -> None:
    """Applies are audited as ``done: ...`` / ``rolled_back: ...`` (contain/apply.py)."""
    audited = tuple({**a, "result": "done: nft table inet hemostat in force"}
                    if a["id"] == "A-2" else a for a in contained.actions)  # fmt: skip
    first = containment(audited)
    assert first is not None and first["id"] == "A-2"
    rolled = tuple({**a, "result": "rolled_back: self-test failed"} if a["id"] == "A-2" else a
                   for a in contained.actions)  # fmt: skip
    assert containment(rolled) is None

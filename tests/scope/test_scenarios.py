"""Scoping against the simulator's truth, on seeds no threshold was tuned on (DESIGN §1)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hemostat import config, evaluate, inventory
from hemostat.detect.runner import examine, pending
from hemostat.ingest import ingest
from hemostat.schema import Category
from hemostat.scope import scope
from hemostat.simulate import generate
from hemostat.store import Store

LEAKS = ["provider_bulk", "partial_dump", "slow_drip", "mimic_backup", "c2_beacon", "dns_tunnel"]


@pytest.fixture(scope="module")
def scored(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[evaluate.ScopeScore], Path]:
    work = tmp_path_factory.mktemp("scope")
    sim = work / "sim"
    generate(sim, hosts=300, days=1, seed=33, scenarios=LEAKS)
    site = inventory.load(sim / "inventory.yaml")
    with Store(work / "home") as store:
        ingest(store, [sim])
        window = pending(store, None, None)
        assert window is not None
        settings = config.Settings()
        examine(store, site, settings, window)
        truth = json.loads((sim / "truth.json").read_text())
        return evaluate.score_scopes(store, site, settings, truth), work


@pytest.mark.slow
def test_every_leaked_store_lies_within_its_bounds(
    scored: tuple[list[evaluate.ScopeScore], Path],
) -> None:
    scores, _ = scored
    leaked = [s for s in scores if s.true_records]
    assert {s.datastore for s in leaked} >= {"dpi", "rh", "edsr"}
    for s in leaked:
        assert s.status == "proven", s
        assert s.within, s
        assert s.ratio <= 3, s  # access logs exist for every simulated store


@pytest.mark.slow
def test_stores_that_did_not_leak_have_a_zero_low(
    scored: tuple[list[evaluate.ScopeScore], Path],
) -> None:
    scores, _ = scored
    for s in (s for s in scores if not s.true_records):
        assert s.records[0] == 0 and s.subjects[0] == 0, s
        assert s.status != "proven", s


@pytest.mark.slow
def test_a_partial_dump_is_not_scoped_as_the_whole_store(
    scored: tuple[list[evaluate.ScopeScore], Path],
) -> None:
    scores, work = scored
    truth = json.loads((work / "sim" / "truth.json").read_text())
    part = next(e for e in truth["episodes"] if e["scenario"] == "partial_dump")
    whole = inventory.load(work / "sim" / "inventory.yaml").datastores[0].records
    dpi = [
        s
        for s in scores
        if s.datastore == "dpi" and s.true_records == part["datastores"][0]["records"]
    ]
    assert dpi, "the partial dump's incident was scoped"
    assert whole is not None and dpi[0].records[1] < whole / 4


@pytest.mark.slow
def test_categories_not_reached_say_so(scored: tuple[list[evaluate.ScopeScore], Path]) -> None:
    _, work = scored
    site = inventory.load(work / "sim" / "inventory.yaml")
    truth = json.loads((work / "sim" / "truth.json").read_text())
    beacon = next(e for e in truth["episodes"] if e["scenario"] == "c2_beacon")
    with Store(work / "home") as store:
        from hemostat.incidents import listing

        found = [x.incident for x in listing(store) if beacon["hosts"][0] in x.incident.hosts]
        assert found
        result = scope(store, site, found[0].id, config.Settings()).as_json()
    untouched = {c for c in Category if not any(
        d["category"] == c for e in truth["episodes"] if e["hosts"][0] in found[0].hosts
        for d in e["datastores"])}  # fmt: skip
    assert untouched
    for c in untouched:
        entry = result["categories"][str(c)]
        assert entry["status"] == "none"
        assert entry["records"] == {"low": 0, "high": 0}
        assert entry["statement"].startswith(f"No evidence that {c} data left")

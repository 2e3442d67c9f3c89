"""End to end on a simulation the detectors were not tuned on, and on real labelled Zeek logs."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from hemostat import evaluate, evaluate_labels
from hemostat.simulate import generate

STRATOSPHERE = Path(__file__).parents[2] / "shared" / "data" / "stratosphere-zeek-labeled"


@pytest.mark.slow
def test_a_simulated_day_scores_every_attack_and_no_false_incident(tmp_path: Path) -> None:
    sim = tmp_path / "sim"
    generate(sim, hosts=300, days=1, seed=5,
             scenarios=["c2_beacon", "dns_tunnel", "partial_dump", "provider_normal"])  # fmt: skip
    result = evaluate.run(sim, tmp_path / "home", step=timedelta(hours=6))
    assert result.scenarios == {"c2_beacon": True, "dns_tunnel": True, "partial_dump": True}
    assert result.false_incidents == []
    assert not any(e.detected for e in result.lookalikes)
    delays = {e.id: e.delay for e in result.episodes}
    assert all(d is not None and d <= timedelta(hours=24) for d in delays.values())
    assert result.as_json()["false_incidents_per_day_per_1000_hosts"] == 0


@pytest.mark.slow
def test_the_njrat_c2_retries_are_flagged_and_nothing_else(tmp_path: Path) -> None:
    # NjRAT's C2 retries (label Malicious/CC) in Stratosphere's labelled capture 001
    score = evaluate_labels.run(
        [STRATOSPHERE / "001-zeek-scenario-malicious" / "labeled-conn.log"],
        tmp_path,
    )
    by_label = {x.label: x for x in score.labels}
    assert by_label["Malicious/CC"].recall > 0.9
    assert score.precision == 1.0 and by_label["Background"].flagged == 0

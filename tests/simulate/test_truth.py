"""Every scenario's bytes in the written logs add up to what truth.json says."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hemostat.simulate import SCENARIOS, Summary, generate

from .checks import disagreements, logged
from .conftest import read_back, truth

MALICIOUS = [name for name, cls in SCENARIOS.items() if cls.malicious]


@pytest.mark.parametrize("scenario", MALICIOUS)
def test_each_scenario_bytes_in_logs_equal_truth(
    scenario: str, sim: tuple[Path, Summary], logs: duckdb.DuckDBPyConnection
) -> None:
    episodes = [e for e in truth(sim[0])["episodes"] if e["scenario"] == scenario]
    assert episodes
    for episode in episodes:
        assert episode["bytes_out"] > 0
        assert logged(logs, episode) == (episode["bytes_out"], episode["rows"])


def test_truth_has_every_field(sim: tuple[Path, Summary]) -> None:
    document = truth(sim[0])
    for episode in document["episodes"]:
        assert {
            "scenario",
            "kind",
            "hosts",
            "destinations",
            "start",
            "end",
            "bytes_out",
            "datastores",
        } <= set(episode)
        assert episode["start"].endswith("Z") and episode["start"] <= episode["end"]
        for store in episode["datastores"]:
            assert 0 < store["subjects"] <= store["records"]
    kinds = {e["kind"] for e in document["episodes"]}
    assert kinds == {"exfiltration", "staging", "third_party_access", "dns_tunnel", "c2"}


def test_partial_dump_leaks_only_part_of_the_store(sim: tuple[Path, Summary]) -> None:
    document = truth(sim[0])
    (leak,) = next(e for e in document["episodes"] if e["scenario"] == "partial_dump")["datastores"]
    (full,) = next(e for e in document["episodes"] if e["id"] == "provider_bulk")["datastores"]
    assert leak["name"] == full["name"] == "dpi"
    assert leak["records"] < full["records"] / 2 and leak["subjects"] < full["subjects"]


def test_summary_counts_match_the_files(
    sim: tuple[Path, Summary], logs: duckdb.DuckDBPyConnection
) -> None:
    summary = sim[1]
    counts = [
        logs.execute(f"SELECT count(*) FROM {t}").fetchone() for t in ("conn", "dns", "access")
    ]
    assert [c[0] if c else 0 for c in counts] == [summary.flows, summary.dns, summary.access]
    assert all(p.exists() for p in summary.files)


@pytest.mark.slow
@settings(
    max_examples=3, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seed=st.integers(0, 2**31),
    hosts=st.integers(50, 100),
    scenarios=st.lists(st.sampled_from(sorted(SCENARIOS)), min_size=1, max_size=4),
)
def test_truth_and_logs_always_agree(
    tmp_path_factory: pytest.TempPathFactory, seed: int, hosts: int, scenarios: list[str]
) -> None:
    out = tmp_path_factory.mktemp("prop")
    generate(out, hosts=hosts, scenarios=scenarios, seed=seed)
    con = read_back(out)
    document = truth(out)
    assert {e["scenario"] for e in document["episodes"]} == {
        s for s in scenarios if SCENARIOS[s].malicious
    }
    assert disagreements(con, document) == []
    con.close()

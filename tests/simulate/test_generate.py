"""generate(): arguments, determinism, the scenario registry and its documentation."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hemostat.errors import ConfigError
from hemostat.simulate import SCENARIOS, generate

DOCS = Path(__file__).resolve().parents[2] / "docs" / "simulate.md"


def _digest(out: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(out.iterdir()):
        h.update(path.name.encode() + path.read_bytes())
    return h.hexdigest()


def test_same_seed_same_files_whatever_the_workers(tmp_path: Path) -> None:
    runs = [(tmp_path / name, seed, w) for name, seed, w in (("a", 5, 1), ("b", 5, 2), ("c", 6, 1))]
    for out, seed, workers in runs:
        generate(out, hosts=40, scenarios=["c2_beacon", "dns_tunnel"], seed=seed, workers=workers)
    a, b, c = (_digest(out) for out, _, _ in runs)
    assert a == b != c


def test_rerun_replaces_the_previous_output_and_reports_progress(tmp_path: Path) -> None:
    generate(tmp_path, hosts=40, seed=1, start=datetime(2023, 1, 2, tzinfo=UTC))
    seen: list[tuple[int, int]] = []
    summary = generate(tmp_path, hosts=40, seed=1, progress=lambda *p: seen.append(p))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in summary.files)
    assert len(summary.files) == 2 * 24 + 3
    assert summary.files[0].name == "access.jsonl"
    assert summary.files[1].name == "conn.2023-06-11-22-00-00.log"
    assert seen == [(h, 24) for h in range(1, 25)]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"scenarios": ["nope"]}, "unknown scenario 'nope'"),
        ({"hosts": 10}, "at least 40"),
        ({"days": 0}, "at least 1"),
    ],
)
def test_bad_arguments_are_config_errors(
    tmp_path: Path, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        generate(tmp_path, **kwargs)  # type: ignore[arg-type]


def test_every_scenario_is_documented() -> None:
    text = DOCS.read_text(encoding="utf-8")
    for name, cls in SCENARIOS.items():
        assert f"`{name}`" in text, f"{name} is missing from docs/simulate.md"
        assert cls.__module__.endswith(name)

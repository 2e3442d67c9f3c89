"""Settings: file, environment, validation; every detector and every threshold documented."""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import hemostat.detect
from hemostat import config
from hemostat.detect import DETECTORS
from hemostat.errors import ConfigError

DOCS = Path(__file__).parents[1] / "docs"


def test_defaults_without_a_file(tmp_path: Path) -> None:
    settings = config.load(tmp_path, environ={})
    assert settings.min_score == 50.0 and settings.history_days == 28
    assert settings.enabled() == list(DETECTORS)


def test_file_and_environment_tune_a_detector(tmp_path: Path) -> None:
    name, cls = next(iter(DETECTORS.items()))
    field = next(f for f in dataclasses.fields(cls) if isinstance(f.default, int | float))
    (tmp_path / config.FILE_NAME).write_text(
        f"[detect]\ndisabled = ['{name}']\n[detect.{name}]\n{field.name} = 7\n"
        "[incidents]\nmin_score = 60\n"
    )
    settings = config.load(tmp_path, environ={"HEMOSTAT_INCIDENTS__MIN_SCORE": "70"})
    assert getattr(settings.detector(cls), field.name) == 7
    assert name not in settings.enabled() and settings.min_score == 70.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[detect\n", "not valid TOML"),
        ("[nope]\n", "unknown section [nope]"),
        ("[incidents]\nmin_scor = 1\n", "unknown setting incidents.min_scor"),
        ("[incidents]\nmin_score = 'high'\n", "incidents.min_score must be like 50.0"),
        ("[detect]\ndisabled = ['nope']\n", "unknown detector(s) nope"),
        ("[detect.egress_volume]\nnope = 1\n", "detect.egress_volume.nope: unknown threshold"),
    ],
)
def test_bad_settings_name_the_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / config.FILE_NAME).write_text(text)
    with pytest.raises(ConfigError, match=r"hemostat\.toml: .*" + re.escape(message)):
        config.load(tmp_path, environ={})


def test_every_detector_module_is_registered_documented_and_tunable() -> None:
    modules = {
        m.name for m in pkgutil.iter_modules(hemostat.detect.__path__)
        if m.name not in {"context", "runner", "words"}
    }  # fmt: skip
    assert modules == set(DETECTORS)
    for name, cls in DETECTORS.items():
        module = importlib.import_module(f"hemostat.detect.{name}")
        assert cls.id == name and module.__doc__ and "SKELETON" not in module.__doc__
        assert cls.attack, f"{name} has no ATT&CK technique"
        for field in dataclasses.fields(cls):
            assert field.metadata.get("help"), f"{name}.{field.name} has no help text"
        page = DOCS / "detectors" / f"{name}.md"
        assert page.exists(), f"{page} is missing"
        assert all(f.name in page.read_text() for f in dataclasses.fields(cls))

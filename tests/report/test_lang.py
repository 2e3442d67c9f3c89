"""The report's languages: same keys and fields in every table, French and English formats."""

from __future__ import annotations

import string
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hemostat.errors import ConfigError
from hemostat.report.lang import NBSP, Code, load, table
from hemostat.scope.model import Bounds


def _texts(node: Any, prefix: str = "") -> dict[str, str]:
    """Every text of a table by dotted key (list items numbered)."""
    if isinstance(node, dict):
        return {
            k: v for key, sub in node.items() for k, v in _texts(sub, f"{prefix}{key}.").items()
        }
    if isinstance(node, list):
        return {k: v for i, sub in enumerate(node) for k, v in _texts(sub, f"{prefix}{i}.").items()}
    assert isinstance(node, str), f"{prefix} is {node!r}, not a text"  # YAML yes/no traps
    return {prefix.rstrip("."): node}


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_every_language_has_the_same_texts_with_the_same_fields() -> None:
    fr, en = _texts(table(Code.FR)), _texts(table(Code.EN))
    assert fr.keys() == en.keys()
    assert {k: _fields(v) for k, v in fr.items()} == {k: _fields(v) for k, v in en.items()}


def test_french_texts_are_french_and_english_texts_english() -> None:
    fr, en = _texts(table(Code.FR)), _texts(table(Code.EN))
    assert (
        fr["no_evidence.staff"]
        == "Aucun élément n'indique que des données du personnel soient sorties."
    )
    assert en["no_evidence.staff"] == "No evidence that staff data left."
    long_same = [k for k in fr if fr[k] == en[k] and len(fr[k].split()) > 2]
    assert long_same == []  # no sentence left untranslated


@pytest.mark.parametrize(
    ("code", "value", "want"),
    [
        ("fr", 1_234_567, f"1{NBSP}234{NBSP}567"),
        ("en", 1_234_567, "1,234,567"),
        ("fr", 999, "999"),
        ("fr", 94.5, "94,5"),
        ("en", 94.5, "94.5"),
    ],
)
def test_numbers(code: str, value: float, want: str) -> None:
    assert load(code, "UTC").num(value) == want


@pytest.mark.parametrize(
    ("code", "value", "want"),
    [
        ("fr", 590_000_000, "590 Mo"),
        ("en", 590_000_000, "590 MB"),
        ("fr", 1_900_000_000, "1,9 Go"),
        ("en", 1_900_000_000, "1.9 GB"),
        ("fr", 512, "512 o"),
        ("en", 12_500_000_000_000, "12 TB"),
    ],
)
def test_sizes(code: str, value: int, want: str) -> None:
    assert load(code, "UTC").size(value) == want.replace(" ", NBSP)


def test_bounds_name_both_ends_or_one_number() -> None:
    fr, en = load("fr", "UTC"), load("en", "UTC")
    assert fr.bounds(Bounds(770_000, 2_200_000)) == f"770{NBSP}000 à 2{NBSP}200{NBSP}000"
    assert en.bounds(Bounds(770_000, 2_200_000)) == "770,000 to 2,200,000"
    assert en.bounds(Bounds(5, 5)) == "5"


def test_times_are_local_with_the_zone_named() -> None:
    ts = datetime(2023, 6, 14, 1, 10, 30, tzinfo=UTC)  # 03:10 in Paris (summer time)
    assert load("fr", "Europe/Paris").when(ts) == "14/06/2023 03:10 (Europe/Paris)"
    assert load("en", "Europe/Paris").when(ts, seconds=True) == "2023-06-14 03:10:30 (Europe/Paris)"
    assert load("en", "America/New_York").stamp(ts) == "2023-06-13 21:10:30"
    assert load("fr", "Europe/Paris").when(None) == "[à compléter]"


def test_durations_round_to_the_minute() -> None:
    fr = load("fr", "UTC")
    assert fr.duration(timedelta(minutes=19, seconds=58)) == f"20{NBSP}min"
    assert fr.duration(timedelta(hours=1, minutes=5)) == f"1{NBSP}h 05{NBSP}min"
    assert fr.duration(timedelta(days=2, hours=3)) == f"2{NBSP}j 3{NBSP}h"
    assert load("en", "UTC").duration(timedelta(days=2, hours=3)) == f"2{NBSP}d 3{NBSP}h"
    assert fr.duration(timedelta(seconds=42)) == f"42{NBSP}s"


def test_attack_techniques_in_words_fall_back_to_the_parent() -> None:
    en = load("en", "UTC")
    assert en.attack("T1567.002") == "exfiltration to cloud storage"
    assert en.attack("T1567.001") == en.attack("T1567")  # no words of its own: the parent's
    assert en.attack("T9999") == "ATT&CK technique T9999"


def test_unknown_language_and_zone_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="unknown report language 'de'; use fr or en"):
        load("de", "UTC")
    with pytest.raises(ConfigError, match="unknown time zone 'Europe/Parys'"):
        load("fr", "Europe/Parys")

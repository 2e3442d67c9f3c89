"""Findings in the report's language (``hemostat.report.findings``): a stored finding worded
again from its evidence, the stored English kept whenever the stored row cannot say it again
(an old finding, an unknown detector), and the French report quoting the French sentence."""

from __future__ import annotations

import dataclasses
import html
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from hemostat.detect.egress_volume import EgressVolume
from hemostat.detect.runner import CORE
from hemostat.report import findings, render
from hemostat.report.lang import NBSP, load
from hemostat.schema import Finding, Kind
from hemostat.scope.model import Scope
from tests.report.conftest import CLOUD, EGRESS_BYTES, FS

END = datetime(2023, 6, 14, 2, 0, tzinfo=UTC)  # 04:00 in Paris
ROW: dict[str, Any] = {
    "host": FS, "destination": CLOUD, "ts": END - timedelta(minutes=50), "end_ts": END,
    "bytes_out": EGRESS_BYTES, "window_hours": 1, "window_end": END, "ratio": 42.4,
    "expected_bytes": 14_000_000, "baseline": "peers", "own_median": None, "own_mad": None,
    "how_median": None, "hod_median": None, "peer_group": "fileserver", "peer_hosts": 2,
    "peer_by_hour": False, "peer_median": 766.0, "peer_mad": 766.0, "peer_quantile": None,
    "top_destinations": [{"destination": CLOUD, "bytes": EGRESS_BYTES}],
}  # fmt: skip
STORED = (
    f"{FS} sent 590 MB to the Internet in 1 h up to 2023-06-14 02:00 UTC, 42x the expected "
    "14 MB (no own history; fileserver group (2 hosts): median 766 B, MAD 766 B); top "
    f"destinations {CLOUD} (590 MB). Expected transfer 'cloud-sync'."
)
FRENCH = (
    f"{FS} a envoyé 590 Mo vers Internet en 1 h jusqu'au 14/06/2023 04:00 (Europe/Paris), "
    "42 fois le volume attendu de 14 Mo (pas d'historique propre à cette machine ; groupe "
    "fileserver (2 machines) : médiane 766 o, écart absolu médian 766 o) ; principales "
    f"destinations : {CLOUD} (590 Mo). Transfert attendu : « cloud-sync »."
)


def stored(**evidence: Any) -> Finding:
    """The finding as the store gives it back: evidence from JSON (times as text)."""
    kept = {k: v for k, v in ROW.items() if k not in CORE} | evidence
    kept["window_end"] = "2023-06-14T02:00:00Z"
    return Finding(
        id="F-1", detector=EgressVolume.id, kind=Kind.EXFILTRATION, ts=ROW["ts"],
        end_ts=END, host=FS, destination=CLOUD, score=40.0, bytes_out=EGRESS_BYTES,
        attack=EgressVolume.attack, summary=STORED, expected="cloud-sync", evidence=kept,
    )  # fmt: skip


def test_the_stored_sentence_is_what_the_detector_said() -> None:
    assert EgressVolume().explain(ROW) + " Expected transfer 'cloud-sync'." == STORED


def test_a_stored_finding_is_worded_again_in_french_and_in_english() -> None:
    fr, en = load("fr", "Europe/Paris"), load("en", "UTC")
    french = findings.sentence(stored(), fr)
    assert french.replace(NBSP, " ") == FRENCH
    assert f"590{NBSP}Mo vers Internet" in french  # a size never broken across lines
    english = findings.sentence(stored(), en).replace(NBSP, " ")
    assert english == STORED.replace(" UTC", " (UTC)")  # an English report's formats


@pytest.mark.parametrize(
    "changed",
    [
        {"ratio": None},  # a field the sentence needs, empty
        {"baseline": "own history"},  # a field that says something else than the summary did
    ],
)
def test_evidence_that_does_not_say_the_summary_keeps_the_stored_english(
    changed: dict[str, Any],
) -> None:
    assert findings.sentence(stored(**changed), load("fr", "Europe/Paris")) == STORED


def test_an_old_finding_without_a_field_keeps_the_stored_english() -> None:
    old = stored()
    del old.evidence["top_destinations"], old.evidence["ratio"]
    assert findings.sentence(old, load("fr", "Europe/Paris")) == STORED
    unknown = dataclasses.replace(stored(), detector="retired_detector")
    assert findings.sentence(unknown, load("fr", "Europe/Paris")) == STORED


def test_the_incident_summary_is_its_top_finding_and_who_corroborates_it(
    supplier: Scope,
) -> None:
    incident = dataclasses.replace(
        supplier.incident,
        summary=STORED + " Corroborated by staging, provider_access.",
        detectors=("egress_volume", "staging", "provider_access"),
    )
    fr = load("fr", "Europe/Paris")
    said = findings.summary(incident, [stored()], fr).replace(NBSP, " ")
    assert said == FRENCH + " Confirmé par d'autres détecteurs : staging, provider_access."
    assert findings.summary(incident, [], fr) == incident.summary  # no findings given
    old = stored(ratio=None)
    assert findings.summary(incident, [old], fr) == incident.summary


def _text(path: Path) -> str:
    text = re.sub(r"<svg.*?</svg>", "", path.read_text("utf-8"), flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", "", text)).replace(NBSP, " ")


@pytest.mark.parametrize("suffix", [".html", ".md"])
def test_the_french_report_quotes_the_french_summary(
    tmp_path: Path, supplier: Scope, suffix: str
) -> None:
    incident = dataclasses.replace(supplier.incident, summary=STORED, detectors=("egress_volume",))
    scope = dataclasses.replace(supplier, incident=incident)
    text = _text(render(scope, tmp_path / f"fr{suffix}", "fr", found=[stored()]))
    assert f"« {FRENCH} »" in text
    assert "Résumé de la détection (texte produit par l'outil de détection)" in text
    assert "sent 590 MB to the Internet" not in text
    assert "(texte produit par l'outil de détection, en anglais)" not in text
    english = _text(render(scope, tmp_path / f"en{suffix}", "en", found=[stored()]))
    assert "sent 590 MB to the Internet in 1 h up to 14/06" not in english  # dates: en format
    assert "sent 590 MB to the Internet in 1 h up to 2023-06-14 04:00 (Europe/Paris)" in english


@pytest.mark.parametrize("suffix", [".html", ".md"])
def test_a_summary_it_cannot_word_is_quoted_in_english_and_said_to_be(
    tmp_path: Path, supplier: Scope, suffix: str
) -> None:
    text = _text(render(supplier, tmp_path / f"fr{suffix}", "fr", found=[stored()]))
    assert supplier.incident.summary in text
    assert "Résumé de la détection (texte produit par l'outil de détection, en anglais)" in text

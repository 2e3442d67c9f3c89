"""Findings in words, on real findings: a small simulated hospital (every scenario, the
threat-intelligence detector fed with the episodes' outside addresses and domains) is detected
once; each stored finding is then worded again from what the store keeps, as the report and
the dashboard do (``hemostat.report.findings``): in English it is the stored summary (no
drift between the locale file and what was stored), in French it is French."""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass

import pytest

from hemostat import config, inventory
from hemostat.detect import DETECTORS
from hemostat.detect.runner import examine, load, pending
from hemostat.detect.words import PLAIN
from hemostat.incidents import Listed, listing
from hemostat.ingest import ingest
from hemostat.report import findings
from hemostat.report.lang import load as lang
from hemostat.schema import Finding
from hemostat.simulate import SCENARIOS, generate
from hemostat.store import Store
from tests.detect.test_explain_words import english_words, in_lang_formats

pytestmark = pytest.mark.slow  # simulated and detected once per module (~20 s)


@dataclass(frozen=True)
class Detected:
    found: list[Finding]
    incidents: list[Listed]
    settings: config.Settings


@pytest.fixture(scope="module")
def detected(tmp_path_factory: pytest.TempPathFactory) -> Detected:
    work = tmp_path_factory.mktemp("words")
    sim = work / "sim"
    generate(sim, hosts=100, days=1, scenarios=list(SCENARIOS), seed=7)
    truth = json.loads((sim / "truth.json").read_text(encoding="utf-8"))
    site = inventory.load(sim / "inventory.yaml")
    outside = sorted({d for e in truth["episodes"] for d in e["destinations"] if _outside(site, d)})
    (work / "intel.txt").write_text("\n".join(outside) + "\n", encoding="utf-8")
    settings = config.Settings(
        values={"detect": {"threat_intel": {"indicators": str(work / "intel.txt")}}}
    )
    with Store(work / "home") as store:
        ingest(store, [sim])
        window = pending(store, None, None)
        assert window is not None
        examine(store, site, settings, window)
        return Detected(load(store), listing(store), settings)


def _outside(site: inventory.Inventory, destination: str) -> bool:
    try:
        return not site.is_internal(destination)
    except ValueError:
        return True  # a domain


def test_every_detector_found_something(detected: Detected) -> None:
    assert {f.detector for f in detected.found} == set(DETECTORS)
    assert any(f.expected for f in detected.found)  # the expected-transfer words too


def test_in_english_each_finding_is_its_stored_summary(detected: Detected) -> None:
    en = lang("en", "UTC")
    for f in detected.found:
        assert findings.sentence(f, PLAIN, detected.settings) == f.summary
        assert findings.sentence(f, en, detected.settings) == in_lang_formats(f.summary, en)


def test_in_french_each_finding_is_french_with_its_figures(detected: Detected) -> None:
    fr = lang("fr", "Europe/Paris")
    for f in detected.found:
        said = findings.sentence(f, fr, detected.settings)
        assert said != f.summary, f.summary  # re-worded, not the stored English
        data = {**f.evidence, "host": f.host, "destination": f.destination, "x": f.expected}
        assert english_words(said, data) == [], said
        assert f.host in said
        if f" {PLAIN.size(f.bytes_out)} " in f.summary:
            assert fr.size(f.bytes_out) in said, said
        if f.expected:
            assert said.endswith(f" Transfert attendu : « {f.expected} ».")


def test_in_french_each_incident_summary_is_french(detected: Detected) -> None:
    fr = lang("fr", "Europe/Paris")
    corroborated = 0
    for listed in detected.incidents:
        incident = listed.incident
        said = findings.summary(incident, detected.found, fr, detected.settings)
        assert said != incident.summary and "Corroborated" not in said
        if " Corroborated by " in incident.summary:
            corroborated += 1
            others = incident.summary.rsplit(" Corroborated by ", 1)[1].rstrip(".")
            assert said.endswith(f" Confirmé par d'autres détecteurs : {others}.")
    assert corroborated, "no corroborated incident: the check above proves little"


def test_a_finding_merged_by_a_later_pass_keeps_its_stored_words(detected: Detected) -> None:
    """A later pass keeps the larger figures but the newer summary: the row no longer says
    the stored summary, so the stored English is what every language shows."""
    f = next(f for f in detected.found if f.detector == "egress_volume")
    merged = dataclasses.replace(f, bytes_out=f.bytes_out * 2)
    fr = lang("fr", "Europe/Paris")
    assert findings.sentence(merged, fr, detected.settings) == f.summary
    assert re.search(r"\bsent\b", findings.sentence(merged, fr, detected.settings))


def test_the_stored_row_is_enough_to_word_it_again(detected: Detected) -> None:
    """Times come back from the evidence's JSON as times: the same words as at detection."""
    f = next(f for f in detected.found if f.detector == "rare_destination")
    assert isinstance(f.evidence["first_seen"], str)  # stored as text
    fr = lang("fr", "Europe/Paris")
    assert "vue pour la première fois le " in findings.sentence(f, fr, detected.settings)

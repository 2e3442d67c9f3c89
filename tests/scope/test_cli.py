"""`hemostat scope` on the command line: the JSON contract, the summary, bad ids, and the
report in French (findings and reasoning worded in French)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from hemostat import demo
from hemostat.report.lang import NBSP


def hemostat(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hemostat.cli", "--home", str(home), *args],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("demo")
    result = demo.run(work / "home", work / "out")
    assert result.scope is not None
    return work / "home"


@pytest.mark.slow
def test_scope_json_keeps_the_contract(home: Path) -> None:
    listed = json.loads(hemostat(home, "incidents", "--json").stdout)
    top = max(listed, key=lambda i: i["score"])
    done = hemostat(home, "scope", top["id"], "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["incident"] == top["id"]
    assert set(out["window"]) == {"start", "end"}
    assert {"bytes", "destinations", "hosts"} <= set(out["egress"])
    assert out["egress"]["bytes"] > 100_000_000
    dpi = next(d for d in out["datastores"] if d["name"] == "dpi")
    assert {"name", "category", "records", "subjects", "evidence"} <= set(dpi)
    assert 0 < dpi["records"]["low"] <= dpi["records"]["high"]
    assert set(out["categories"]) == {"patient", "staff", "finance", "research", "other"}
    assert out["categories"]["research"]["records"] == {"low": 0, "high": 0}
    assert "No evidence" in out["categories"]["research"]["statement"]


@pytest.mark.slow
def test_an_unknown_incident_is_a_clear_error(home: Path) -> None:
    done = hemostat(home, "scope", "INC-nope")
    assert done.returncode == 1
    assert done.stderr.startswith("error: no incident 'INC-nope'")
    assert "Traceback" not in done.stderr


@pytest.mark.slow
def test_a_french_report_words_the_findings_in_french(home: Path, tmp_path: Path) -> None:
    """`scope --report --lang fr` re-words each finding's stored English sentence in French
    (the report then does not label the detection summary "en anglais"); `--lang en` quotes
    the stored one."""
    listed = json.loads(hemostat(home, "incidents", "--json").stdout)
    top = max(listed, key=lambda i: i["score"])
    french, english = tmp_path / "r-fr.md", tmp_path / "r-en.md"
    for path, lang in ((french, "fr"), (english, "en")):
        done = hemostat(home, "scope", top["id"], "--report", str(path), "--lang", lang)
        assert done.returncode == 0, done.stderr
    fr, en = french.read_text(), english.read_text()
    assert "a envoyé" in fr
    assert "Résumé de la détection (texte produit par l'outil de détection)" in fr
    assert "l'outil de détection, en anglais" not in fr
    assert " sent " not in fr
    assert " sent " in en


#: words of the English reasoning a French report must not show
ENGLISH = ("No evidence", "rows", "read", "compressed", "unknown", "left")


def top(home: Path) -> str:
    listed = json.loads(hemostat(home, "incidents", "--json").stdout)
    return str(max(listed, key=lambda i: i["score"])["id"])


def part(text: str, start: str, end: str) -> str:
    found = re.search(rf"^#+ {re.escape(start)}$(.*?)^#+ {re.escape(end)}$", text, re.S | re.M)
    assert found, (start, end)
    return found.group(1)


@pytest.mark.slow
def test_a_french_report_gives_the_reasoning_in_french(home: Path, tmp_path: Path) -> None:
    ident = top(home)
    answer = json.loads(hemostat(home, "scope", ident, "--json").stdout)
    path = tmp_path / "r.md"
    done = hemostat(home, "scope", ident, "--report", str(path), "--lang", "fr")
    assert done.returncode == 0, done.stderr
    text = path.read_text(encoding="utf-8")
    people = part(
        text, "5. Catégories de données et de personnes concernées", "7. Conséquences probables"
    )
    unknowns = part(text, "11. Ce qui reste inconnu", "12. Autres déclarations à effectuer")
    reasoning = part(text, "Raisonnement par base de données", "Lectures journalisées")
    timeline = part(text, "Chronologie", "Actions de confinement (journal d'audit)")
    for piece in (people, unknowns, reasoning, timeline):
        for word in ENGLISH:
            assert not re.search(rf"\b{word}\b", piece), (word, piece)
    assert "en anglais" not in text

    def fr(n: int) -> str:
        return f"{n:,}".replace(",", NBSP)

    dpi = next(d for d in answer["datastores"] if d["name"] == "dpi")
    records, subjects = dpi["records"], dpi["subjects"]
    assert f"Borne basse de {fr(records['low'])} enregistrements : les lignes lues" in reasoning
    assert f"Borne haute de {fr(records['high'])} enregistrements" in reasoning
    assert f"Personnes : {fr(subjects['low'])} à {fr(subjects['high'])}, d'après" in reasoning
    assert "Le contenu de la sortie chiffrée n'est pas visible" in unknowns
    assert "Le taux de compression des données est inconnu" in unknowns
    egress = answer["egress"]["bytes"]
    assert f"début de la sortie ({fr(egress)} octets en tout)" in timeline
    reads = [t for t in answer["timeline"] if t["what"] == "read"]
    assert reads and len(re.findall(r" a lu .* lignes\)", timeline)) == len(reads)

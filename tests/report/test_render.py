"""HTML and Markdown reports: the notification's sections in the CNIL form's order, the
fixture's numbers written the way each language writes them, the "no evidence" sentences."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest

from hemostat.errors import ConfigError
from hemostat.report import Contact, render
from hemostat.report.document import SECTIONS
from hemostat.report.lang import NBSP, Code, table
from hemostat.scope.model import Scope

NUMBERS = {
    "fr": ["350 000 à 850 000", "770 000 à 2 200 000", "590 Mo", "1,9 Go", "2 200 000 / 850 000"],
    "en": ["350,000 to 850,000", "770,000 to 2,200,000", "590 MB", "1.9 GB", "2,200,000 / 850,000"],
}


def _text(path: Path) -> str:
    """The file's text as a reader sees it: no tags, entities decoded, no-break spaces as
    spaces (inline SVG charts removed: their labels are checked in test_charts)."""
    text = path.read_text("utf-8")
    if path.suffix == ".html":
        text = re.sub(r"<svg.*?</svg>", "", text, flags=re.S)
        text = re.sub(r"<[^>]+>", "", text)
    return html.unescape(text).replace(NBSP, " ")


def _in_order(text: str, needles: list[str]) -> list[int]:
    where = [text.find(n) for n in needles]
    missing = [n for n, at in zip(needles, where, strict=True) if at < 0]
    assert not missing, f"missing: {missing}"
    return where


def _headings(code: str) -> list[str]:
    words = table(Code(code))
    return [f"{i}. {words['n'][key]}" for i, key in enumerate(SECTIONS, 1)]


@pytest.mark.parametrize("lang", ["fr", "en"])
@pytest.mark.parametrize("suffix", [".html", ".md"])
def test_sections_in_the_form_order_and_numbers_per_language(
    tmp_path: Path, supplier: Scope, lang: str, suffix: str
) -> None:
    text = _text(render(supplier, tmp_path / f"report{suffix}", lang))
    words = table(Code(lang))
    where = _in_order(text, _headings(lang))
    assert where == sorted(where)
    parts = _in_order(text, [words["parts"][p] for p in ("notification", "crisis", "evidence")])
    assert parts == sorted(parts) and parts[0] < where[0] and where[-1] < parts[1]
    _in_order(text, NUMBERS[lang])
    other = "en" if lang == "fr" else "fr"
    assert NUMBERS[other][0] not in text and NUMBERS[other][1] not in text


@pytest.mark.parametrize("suffix", [".html", ".md"])
def test_unreached_categories_say_there_is_no_evidence(
    tmp_path: Path, supplier: Scope, suffix: str
) -> None:
    fr = _text(render(supplier, tmp_path / f"fr{suffix}"))
    en = _text(render(supplier, tmp_path / f"en{suffix}", "en"))
    assert "Aucun élément n'indique que des données du personnel soient sorties." in fr
    assert "No evidence that staff data left." in en
    assert "No evidence that patient data left." not in en  # patients are reached
    for sentence in ("finance", "research", "other personal"):
        assert f"No evidence that {sentence} data left." in en


@pytest.mark.parametrize("suffix", [".html", ".md"])
def test_nothing_reached_says_so_for_every_category(
    tmp_path: Path, nothing: Scope, suffix: str
) -> None:
    en = _text(render(nothing, tmp_path / f"n{suffix}", "en"))
    for category in ("patient", "staff", "finance", "research"):
        assert f"No evidence that {category} data left." in en
    assert "No database of the inventory is reached" in en
    assert "Communication to the people: not established at this stage" in en
    assert "Draft letter" not in en  # no letter without a high risk
    assert "Initial notification" in en


def test_measures_taken_list_the_actions_or_say_there_is_none(
    tmp_path: Path, supplier: Scope, contained: Scope
) -> None:
    bare = _text(render(supplier, tmp_path / "bare.html", "en"))
    assert "No containment action recorded by hemostat." in bare
    done = _text(render(contained, tmp_path / "done.html", "en"))
    assert "No containment action recorded by hemostat." not in done
    assert re.search(r"2023-06-14 03:30 \(Europe/Paris\): isolation of host 10\.1\.8\.10, step "
                     r"\"apply\", result \"ok\" \(soc-analyst\)", done)  # fmt: skip
    assert "Containment: 2023-06-14 03:30 (Europe/Paris)." in done  # the crisis page


def test_dates_deadline_and_the_art34_letter(tmp_path: Path, supplier: Scope) -> None:
    dpo = Contact(name="Dr Claire Martin", email="dpo@chu-example.fr", phone="+33 1 23 45 67 89")
    fr = _text(render(supplier, tmp_path / "fr.html", dpo=dpo))
    assert "17/06/2023 03:16 (Europe/Paris)" in fr  # 72 h after detection, local time
    assert "14/06/2023 02:15 (Europe/Paris)" in fr  # start: the dump, 00:15 UTC
    assert "Communication aux personnes : nécessaire" in fr
    assert "Madame, Monsieur," in fr
    assert "Dr Claire Martin, dpo@chu-example.fr, +33 1 23 45 67 89" in fr
    assert "[à compléter]" in fr  # SIREN and address are left to fill
    assert "T1133 — accès par un service distant exposé (VPN, bureau à distance)" in fr
    assert "signalement.social-sante.gouv.fr" in fr and "CERT Santé" in fr and "ANSSI" in fr


def test_the_type_follows_the_evidence_or_the_caller(tmp_path: Path, supplier: Scope) -> None:
    auto = render(supplier, tmp_path / "auto.html", "en").read_text()
    assert re.search(r'<li class="on">Complementary notification</li>', auto)
    forced = render(supplier, tmp_path / "forced.html", "en", notification="initial").read_text()
    assert re.search(r'<li class="on">Initial notification</li>', forced)
    assert "Type chosen by the report's user." in html.unescape(forced)


def test_markdown_writes_the_charts_beside_it_and_links_them(
    tmp_path: Path, supplier: Scope
) -> None:
    md = render(supplier, tmp_path / "out" / "INC-3f2a9c1e.md")
    text = md.read_text()
    for chart in ("timeline", "lineage"):
        svg = md.with_name(f"INC-3f2a9c1e.{chart}.svg")
        assert svg.read_text().startswith("<svg")
        assert f"](INC-3f2a9c1e.{chart}.svg)" in text
    assert "<svg" not in text


def test_html_is_one_self_contained_file(tmp_path: Path, supplier: Scope) -> None:
    page = render(supplier, tmp_path / "r.html").read_text()
    assert page.count("<svg") == 2  # both charts inline
    assert not re.search(r"(src|href)=\"?(https?:)?//", page)  # nothing remote
    assert "@import" not in page and re.findall(r"url\((.)", page) == ["#"] * page.count("url(")
    assert list(tmp_path.iterdir()) == [tmp_path / "r.html"]


def test_an_unknown_suffix_names_the_choices(tmp_path: Path, supplier: Scope) -> None:
    with pytest.raises(
        ConfigError, match=r"unknown suffix '\.docx'; use one of \.html, \.pdf, \.md"
    ):
        render(supplier, tmp_path / "notification.docx")
    assert not (tmp_path / "notification.docx").exists()


def test_an_unknown_language_is_refused(tmp_path: Path, supplier: Scope) -> None:
    with pytest.raises(ConfigError, match="use fr or en"):
        render(supplier, tmp_path / "r.html", "de")

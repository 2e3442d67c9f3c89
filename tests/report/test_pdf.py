"""The PDF: it renders (pdftoppm to PNG), its pages are not blank, its text holds the
notification's sections, and the crisis part fits on one page."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from hemostat.report import document, render
from hemostat.report.document import SECTIONS
from hemostat.report.lang import Code, table
from hemostat.scope.model import Scope
from tests.report.conftest import supplier_scope


@pytest.fixture(scope="module", params=["fr", "en"])
def pdf(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pdf") / f"notification-{request.param}.pdf"
    return render(supplier_scope(), path, request.param)


def _pages(pdf: Path) -> list[str]:
    """The text of each page (pdftotext separates pages with a form feed)."""
    done = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True,
                          text=True, check=True)  # fmt: skip
    return [" ".join(page.replace("\u00a0", " ").split()) for page in done.stdout.split("\f")]


def _lang(pdf: Path) -> Code:
    return Code(pdf.stem.rsplit("-", 1)[1])


def test_pages_render_and_are_not_blank(pdf: Path, tmp_path: Path) -> None:
    subprocess.run(["pdftoppm", "-png", "-r", "50", str(pdf), str(tmp_path / "page")], check=True)
    pngs = sorted(tmp_path.glob("page-*.png"))
    assert len(pngs) >= 2
    for png in pngs:
        gray = Image.open(png).convert("L")
        width, height = gray.size
        assert 400 <= width <= 420 and 570 <= height <= 590  # A4 at 50 dpi: 413 x 585
        inked = sum(count for value, count in enumerate(gray.histogram()) if value < 128)
        assert inked > 500, f"{png.name} is blank"


def test_the_text_holds_every_section_in_order(pdf: Path) -> None:
    text = " ".join(_pages(pdf))
    words = table(_lang(pdf))
    where = [text.find(f"{i}. {words['n'][key]}") for i, key in enumerate(SECTIONS, 1)]
    assert -1 not in where and where == sorted(where)
    for part in ("notification", "crisis", "evidence"):
        assert words["parts"][part].split(":")[0] in text


def test_each_part_starts_a_page_and_the_crisis_part_is_one_page(pdf: Path) -> None:
    pages = _pages(pdf)
    words = table(_lang(pdf))["parts"]
    starts = {part: next(i for i, p in enumerate(pages) if words[part][:40] in p)
              for part in ("notification", "crisis", "evidence")}  # fmt: skip
    assert starts["notification"] == 0
    assert starts["evidence"] == starts["crisis"] + 1
    header = "CHU Example · incident INC-3f2a9c1e"
    assert all(header in p for p in pages if p)  # running header on every page
    numbered = [p for p in pages if p]
    assert re.search(rf"\b{len(numbered)}\s*/\s*{len(numbered)}$", numbered[-1])  # page numbers


def test_remote_resources_are_refused(
    tmp_path: Path, supplier: Scope, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Were a template ever to name a remote stylesheet, rendering stops instead of fetching."""
    from weasyprint.urls import FatalURLFetchingError

    remote = '<link rel="stylesheet" href="http://192.0.2.1/style.css"><p>x</p>'
    monkeypatch.setattr(document, "html", lambda ctx, charts: remote)
    with pytest.raises(FatalURLFetchingError):
        render(supplier, tmp_path / "r.pdf")


def test_a_contained_incident_still_renders(tmp_path: Path, contained: Scope) -> None:
    out = render(contained, tmp_path / "c.pdf", "en")
    text = " ".join(_pages(out))
    assert "Containment: 2023-06-14 03:30 (Europe/Paris)." in text

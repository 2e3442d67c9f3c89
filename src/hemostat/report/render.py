"""Write the report of a scope to a file; the format follows the file's suffix: ``.html`` (one
self-contained page, charts inline), ``.pdf`` (WeasyPrint, from the same HTML, A4, page numbers)
or ``.md`` (Markdown, charts as ``.svg`` files beside it).

Nothing is ever fetched from the network: the CSS is inline, the charts are inline SVG, fonts
are the system's, and the PDF renderer may read only ``data:`` and ``file:`` URLs.
"""

from __future__ import annotations

import enum
import warnings
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from hemostat.config import Settings
from hemostat.errors import ConfigError
from hemostat.report import document, findings
from hemostat.report.bundle import Bundle
from hemostat.report.lang import load
from hemostat.report.notification import Contact, NotificationType, notice
from hemostat.schema import Finding
from hemostat.scope.model import Scope


class Format(enum.StrEnum):
    HTML = ".html"
    PDF = ".pdf"
    MD = ".md"


def render(
    scope: Scope,
    path: Path,
    lang: str = "fr",
    *,
    bundle: Bundle | None = None,
    dpo: Contact | None = None,
    notification: NotificationType | str | None = None,
    found: Sequence[Finding] = (),
    settings: Settings | None = None,
) -> Path:
    """Write the report of ``scope`` to ``path`` (format from the suffix); returns ``path``.

    ``notification`` forces an initial or complementary notification; by default it is
    complementary when every category reached is proven by the access log, else initial.
    ``found``: the incident's stored findings, to word its detection summary in ``lang``
    (with ``settings``' detector thresholds); without them it is quoted in English.
    """
    path = Path(path)
    fmt = _format(path)
    words = load(lang, scope.timezone)
    now = datetime.now(UTC)
    facts = notice(scope, notification, now)
    summary = findings.summary(scope.incident, found, words, settings)
    ctx = document.context(scope, words, facts, dpo, bundle, now, summary=summary)
    charts = document.charts_svg(scope, words, facts)
    _WRITERS[fmt](path, ctx, charts)
    return path


def _format(path: Path) -> Format:
    try:
        return Format(path.suffix.lower())
    except ValueError:
        choices = ", ".join(f.value for f in Format)
        raise ConfigError(
            f"report file {path}: unknown suffix {path.suffix!r}; use one of {choices}"
        ) from None


def _write_html(path: Path, ctx: dict[str, object], charts: document.Charts) -> None:
    _write(path, document.html(ctx, charts).encode())


def _write_pdf(path: Path, ctx: dict[str, object], charts: document.Charts) -> None:
    HTML, URLFetcher = _weasyprint()
    base = resources.files("hemostat.report").joinpath("templates")
    fetcher = URLFetcher(allowed_protocols=("data", "file"), fail_on_errors=True)
    url = Path(str(base)).as_uri() + "/"
    page = HTML(string=document.html(ctx, charts), base_url=url, url_fetcher=fetcher)
    _write(path, page.write_pdf())


def _weasyprint() -> tuple[Any, Any]:
    """WeasyPrint, imported on first use (it takes a second, and only PDF needs it). Without
    the HarfBuzz subsetting library (Debian libharfbuzz-subset0) it warns that future versions
    will need it, and subsets fonts with fontTools instead: that warning is not ours to raise."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="HarfBuzz-Subset", category=DeprecationWarning)
        from weasyprint import HTML  # type: ignore[import-untyped]
        from weasyprint.urls import URLFetcher  # type: ignore[import-untyped]
    return HTML, URLFetcher


def _write_md(path: Path, ctx: dict[str, object], charts: document.Charts) -> None:
    names = document.Charts(f"{path.stem}.timeline.svg", f"{path.stem}.lineage.svg")
    _write(path.with_name(names.timeline), charts.timeline.encode())
    _write(path.with_name(names.lineage), charts.lineage.encode())
    _write(path, document.markdown(ctx, names).encode())


def _write(path: Path, data: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    except OSError as exc:
        raise ConfigError(f"cannot write the report {path}: {exc.strerror}") from exc


_WRITERS: dict[Format, Callable[[Path, dict[str, object], document.Charts], None]] = {
    Format.HTML: _write_html,
    Format.PDF: _write_pdf,
    Format.MD: _write_md,
}

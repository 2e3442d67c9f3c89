"""The report as text: the Jinja environment over the package's templates, and the context the
HTML and Markdown templates share (the scope, the notice, the sentences, the charts).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from hemostat.report import wording
from hemostat.report.bundle import Bundle
from hemostat.report.charts import timeline_svg
from hemostat.report.lang import Code, Lang
from hemostat.report.lineage import layout
from hemostat.report.notification import Contact, Notice, action_time, sorted_actions
from hemostat.scope.model import Destination, Scope

TOP_DESTINATIONS = 5

#: the notification's sections, in the order of the CNIL's online form
SECTIONS = (
    "s_type", "s_org", "s_nature", "s_dates", "s_people", "s_records", "s_consequences",
    "s_taken", "s_planned", "s_art34", "s_unknown", "s_other",
)  # fmt: skip


@dataclass(frozen=True)
class Charts:
    """The two charts: inline SVG for HTML, or the file names Markdown links to."""

    timeline: str
    lineage: str


@cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("hemostat.report", "templates"),
        autoescape=select_autoescape(["html.j2", "svg.j2"], default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["md"] = _md_cell
    return env


def charts_svg(scope: Scope, lang: Lang, notice: Notice) -> Charts:
    """Both charts as SVG text."""
    contained = action_time(notice.containment) if notice.containment else None
    timeline = timeline_svg(scope.egress.timeline, lang, notice.discovered, contained)
    lineage = environment().get_template("lineage.svg.j2").render(d=layout(scope, lang), L=lang)
    return Charts(timeline, lineage)


def html(context: dict[str, Any], charts: Charts) -> str:
    inline = Charts(Markup(charts.timeline), Markup(charts.lineage))  # noqa: S704 (our SVG)
    return environment().get_template("report.html.j2").render(context, charts=inline)


def markdown(context: dict[str, Any], charts: Charts) -> str:
    """``charts`` holds the names of the SVG files written next to the Markdown file."""
    return environment().get_template("report.md.j2").render(context, charts=charts)


def context(
    scope: Scope,
    lang: Lang,
    notice: Notice,
    contact: Contact | None,
    bundle: Bundle | None,
    now: datetime,
    *,
    summary: str | None = None,
) -> dict[str, Any]:
    """Everything the templates read; sentences are composed here, once for both formats.
    ``summary``: the detection summary in ``lang`` (default: the stored English one)."""
    contact = contact or Contact()
    if contact.organisation is None:
        contact = replace(contact, organisation=scope.site)
    top, rest = _destinations(scope.egress.destinations)
    summary = scope.incident.summary if summary is None else summary
    english = lang.code is not Code.EN and summary == scope.incident.summary
    return {
        "L": lang,
        "s": scope,
        "n": notice,
        "now": now,
        "bundle": bundle,
        "sections": {key: (i, lang.t(f"n.{key}")) for i, key in enumerate(SECTIONS, 1)},
        "contact_rows": wording.contact_rows(scope, contact, lang),
        "circumstances": wording.circumstances(scope, notice, lang),
        "sources": wording.sources(scope, lang),
        "categories": [*notice.reached, *notice.unreached],
        "reached_sentences": [wording.reached(c, lang) for c in notice.reached],
        "consequences": wording.consequences(notice, scope, lang),
        "taken": wording.taken(scope, lang),
        "planned": wording.planned(scope, notice, lang),
        "art34": wording.art34(notice, lang),
        "letter": wording.letter(scope, notice, contact, lang),
        "declarations": wording.declarations(notice, lang),
        "actions": sorted_actions(scope.actions),
        "action_time": action_time,
        "setting": wording.setting,
        "top": top,
        "rest": rest,
        "contained_at": action_time(notice.containment) if notice.containment else None,
        "summary": summary,
        "summary_label": lang.t("nature.summary_english" if english else "nature.summary"),
    }


def _destinations(dests: tuple[Destination, ...]) -> tuple[list[Destination], list[Destination]]:
    ranked = sorted(dests, key=lambda d: (-d.bytes, d.address))
    return ranked[:TOP_DESTINATIONS], ranked[TOP_DESTINATIONS:]


def _md_cell(value: object) -> str:
    """Text safe in a Markdown table cell or list item: one line, pipes escaped; no-break
    spaces (French figures and units) stay."""
    text = re.sub(r"[ \t\n\r\f\v]+", " ", str(value)).strip()
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;")

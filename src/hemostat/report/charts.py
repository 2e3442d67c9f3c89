"""The egress timeline chart: bytes that left per minute, with the detection and containment
moments marked. SVG drawn by matplotlib without pyplot (no global backend, no display),
deterministic: a fixed hash salt, no date metadata, text kept as text.

Each bar carries the id ``bucket-N`` and the markers ``detection`` and ``containment``, so
the SVG can be checked (and styled) element by element.
"""

from __future__ import annotations

import io
from datetime import datetime, timedelta
from typing import Any

import matplotlib
import matplotlib.dates
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from hemostat.report.lang import Lang

#: matplotlib.dates has no type annotations: used through an untyped name
mdates: Any = matplotlib.dates
MINUTE = timedelta(minutes=1)
_INK, _BAR, _ALERT = "#222222", "#4a5f7a", "#b00020"
_RC: dict[Any, Any] = {
    "svg.hashsalt": "hemostat",
    "svg.fonttype": "none",  # text stays text: searchable, and the page's font renders it
    "font.family": "DejaVu Sans",
    "font.size": 7.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.edgecolor": _INK,
    "xtick.color": _INK,
    "ytick.color": _INK,
}


def timeline_svg(
    points: tuple[tuple[datetime, int], ...],
    lang: Lang,
    detected: datetime | None = None,
    contained: datetime | None = None,
) -> str:
    """The chart as an ``<svg>`` element (no XML prologue), ready to inline in HTML."""
    bars = [(t, b) for t, b in points if b > 0]
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(7.0, 2.2))
        ax = fig.add_subplot()
        if bars:
            _draw(ax, bars, lang, detected, contained)
        else:
            ax.set_axis_off()
            ax.text(0.5, 0.5, lang.t("chart.empty"), ha="center", va="center",
                    transform=ax.transAxes)  # fmt: skip
        fig.subplots_adjust(left=0.1, right=0.98, top=0.86, bottom=0.16)
        out = io.StringIO()
        fig.savefig(out, format="svg", metadata={"Date": None})
    text = out.getvalue()
    return text[text.index("<svg") :]


def _draw(
    ax: Axes,
    bars: list[tuple[datetime, int]],
    lang: Lang,
    detected: datetime | None,
    contained: datetime | None,
) -> None:
    lo, hi = bars[0][0], bars[-1][0] + MINUTE
    pad = max((hi - lo) / 2, 10 * MINUTE)  # a moment further away is drawn at the edge
    shown = [m for m in (detected, contained) if m is not None and lo - pad <= m <= hi + pad]
    left, right = min([lo, *shown]) - MINUTE, max([hi, *shown]) + MINUTE
    rects = ax.bar(
        [mdates.date2num(t) for t, _ in bars],
        [b for _, b in bars],
        width=1 / 1440,
        align="edge",
        color=_BAR,
        edgecolor="white",
        linewidth=0.4,
    )
    for i, rect in enumerate(rects):
        rect.set_gid(f"bucket-{i}")
    ax.set_xlim(mdates.date2num(left), mdates.date2num(right))
    ax.xaxis.set_major_locator(mdates.AutoDateLocator(tz=lang.zone, maxticks=9))
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M", tz=lang.zone))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: lang.size(v)))
    ax.set_ylabel(lang.t("chart.per_minute"))
    ax.set_xlabel(lang.t("chart.local_time", zone=lang.zone_name))
    ax.margins(y=0.18)
    for gid, moment, style in (("detection", detected, "--"), ("containment", contained, "-")):
        if moment is not None:
            _mark(ax, gid, moment, style, lang, (left, right))


def _mark(
    ax: Axes,
    gid: str,
    moment: datetime,
    style: str,
    lang: Lang,
    limits: tuple[datetime, datetime],
) -> None:
    """A vertical line at ``moment`` (at the nearest edge, with an arrow, when off the chart),
    labelled on the side where there is room."""
    at = min(max(moment, limits[0]), limits[1])
    color = _ALERT if gid == "containment" else _INK
    ax.axvline(mdates.date2num(at), color=color, linestyle=style, linewidth=1.3, gid=gid)
    label = lang.t(f"chart.{gid}", time=lang.clock(moment))
    if moment > at:
        label = f"{lang.t(f'chart.{gid}', time=lang.stamp(moment, seconds=False))} \u2192"
    elif moment < at:
        label = f"\u2190 {lang.t(f'chart.{gid}', time=lang.stamp(moment, seconds=False))}"
    right_side = (at - limits[0]) / (limits[1] - limits[0]) < 0.7
    ax.annotate(
        label,
        xy=(mdates.date2num(at), 1.0),
        xycoords=("data", "axes fraction"),
        xytext=(3 if right_side else -3, 2 if gid == "containment" else 11),
        textcoords="offset points",
        ha="left" if right_side else "right",
        color=color,
        gid=f"{gid}-label",
    )

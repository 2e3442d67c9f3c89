"""The report's language: one translation table per language (``locales/<code>.yaml``) and the
way numbers, sizes, dates and durations are written in it, in the site's time zone.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from hemostat.errors import ConfigError
from hemostat.scope.model import Bounds

NBSP = "\u00a0"  # French digit groups and units: a space that never breaks a line


class Code(enum.StrEnum):
    FR = "fr"
    EN = "en"


#: how each language writes dates; ``{zone}`` is added by ``Lang.when``
_DATE = {Code.FR: "%d/%m/%Y", Code.EN: "%Y-%m-%d"}
_UNITS = {Code.FR: ("o", "ko", "Mo", "Go", "To"), Code.EN: ("B", "kB", "MB", "GB", "TB")}


@cache
def table(code: Code) -> dict[str, Any]:
    """The translation table of one language (package data, read once)."""
    text = resources.files("hemostat.report").joinpath(f"locales/{code}.yaml").read_text("utf-8")
    loaded = yaml.safe_load(text)
    if not isinstance(loaded, dict):
        raise ConfigError(f"locales/{code}.yaml: not a mapping; reinstall hemostat")
    return loaded


@dataclass(frozen=True)
class Lang:
    """Words and formats of one language, with the time zone every time is shown in."""

    code: Code
    zone: ZoneInfo
    words: dict[str, Any]

    @property
    def zone_name(self) -> str:
        return self.zone.key

    def t(self, key: str, **values: Any) -> str:
        """The text at dotted ``key`` (``n.s_type``), with ``{name}`` fields filled in."""
        node: Any = self.words
        for part in key.split("."):
            node = node[part]
        if not isinstance(node, str):
            raise KeyError(f"{key} is not a text in locales/{self.code}.yaml")
        return node.format(**values) if values else node

    def items(self, key: str) -> list[str]:
        """A list of texts (``measures.always``)."""
        node: Any = self.words
        for part in key.split("."):
            node = node[part]
        return [str(x) for x in node]

    def attack(self, technique: str) -> str:
        """An ATT&CK technique in words; a sub-technique falls back to its parent's words."""
        names: dict[str, str] = self.words["attack"]
        if technique in names:
            return names[technique]
        parent = technique.split(".")[0]
        return names.get(parent, names["unknown"]).format(id=technique)

    def word(self, group: str, value: object) -> str:
        """``value`` translated through table ``group``; unknown values are shown as they are."""
        names: dict[str, str] = self.words[group]
        return names.get(str(value), str(value))

    # ---- numbers ------------------------------------------------------------------------

    def num(self, value: float | None) -> str:
        if value is None:
            return "?"
        text = f"{value:,.0f}" if isinstance(value, int) or value == int(value) else f"{value:,.1f}"
        if self.code is Code.FR:
            text = text.replace(",", NBSP).replace(".", ",")
        return text

    def bounds(self, b: Bounds) -> str:
        if b.low == b.high:
            return self.num(b.low)
        return self.t("range", low=self.num(b.low), high=self.num(b.high))

    def size(self, value: float | None) -> str:
        """Bytes in decimal units: ``590 Mo`` / ``590 MB``, ``1,9 Go`` / ``1.9 GB``."""
        if value is None:
            return "?"
        n, step, units = float(value), 0, _UNITS[self.code]
        while abs(n) >= 1000 and step < len(units) - 1:
            n, step = n / 1000, step + 1
        unit = units[step]
        text = f"{n:.0f}" if step == 0 or abs(n) >= 10 else f"{n:.1f}"
        if self.code is Code.FR:
            text = text.replace(".", ",")
        return f"{text}{NBSP}{unit}"

    # ---- times --------------------------------------------------------------------------

    def local(self, ts: datetime) -> datetime:
        return ts.astimezone(self.zone)

    def when(self, ts: datetime | None, seconds: bool = False) -> str:
        """A full local date and time with the zone named: ``14/06/2023 03:10 (Europe/Paris)``."""
        if ts is None:
            return self.t("doc.fill")
        return f"{self.stamp(ts, seconds)} ({self.zone_name})"

    def stamp(self, ts: datetime, seconds: bool = True) -> str:
        """Local date and time for a table whose caption names the zone."""
        clock = "%H:%M:%S" if seconds else "%H:%M"
        return self.local(ts).strftime(f"{_DATE[self.code]} {clock}")

    def clock(self, ts: datetime) -> str:
        return self.local(ts).strftime("%H:%M")

    def duration(self, span: timedelta) -> str:
        """``20 min``, ``1 h 05 min``, ``2 j 3 h`` / ``2 d 3 h``; under a minute in seconds."""
        total = round(span.total_seconds())
        if total < 60:
            return f"{total}{NBSP}s"
        total = (total + 30) // 60 * 60  # to the nearest minute
        days, rest = divmod(total, 86_400)
        hours, minutes = rest // 3600, rest % 3600 // 60
        if days:
            return f"{days}{NBSP}{self.t('unit.day')} {hours}{NBSP}h"
        if hours:
            return f"{hours}{NBSP}h {minutes:02d}{NBSP}min"
        return f"{minutes}{NBSP}min"


def load(code: str, timezone: str) -> Lang:
    """The language ``code`` (fr or en) showing times in ``timezone`` (an IANA name)."""
    try:
        lang = Code(code)
    except ValueError:
        choices = " or ".join(c.value for c in Code)
        raise ConfigError(f"unknown report language {code!r}; use {choices}") from None
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"unknown time zone {timezone!r} in the scope (inventory 'timezone'); "
            "use an IANA name such as Europe/Paris"
        ) from None
    return Lang(lang, zone, table(lang))


#: time zones of French sites: their reports default to French
FRENCH_ZONES = ("Europe/Paris", "America/Cayenne", "America/Guadeloupe", "America/Martinique",
                "Indian/Reunion", "Indian/Mayotte", "Pacific/Noumea", "Pacific/Tahiti")  # fmt: skip


def language(timezone: str) -> str:
    """The report language of a site: French for a French site, English elsewhere."""
    return "fr" if timezone in FRENCH_ZONES else "en"

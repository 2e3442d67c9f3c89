"""Settings: ``hemostat.toml`` in the home directory, then ``HEMOSTAT_*`` environment variables.

Every setting is declared as data with its default and help (``SETTINGS`` below and the
fields of each detector), so ``hemostat config`` and docs/detection.md list them all.

```toml
[detect]
history_days = 28              # baseline look-back
disabled = ["threat_intel"]    # detectors not to run

[detect.egress_volume]         # any detector's thresholds, by field name
min_bytes = 100_000_000

[incidents]
min_score = 50
```

Environment: ``HEMOSTAT_DETECT__HISTORY_DAYS=14``, ``HEMOSTAT_DETECT__EGRESS_VOLUME__MIN_BYTES=…``
(sections and keys joined by double underscores) override the file.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from hemostat.errors import ConfigError

FILE_NAME = "hemostat.toml"

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Setting:
    section: str
    name: str
    default: Any
    help: str


#: every non-detector setting, with its default and meaning
SETTINGS = (
    Setting("detect", "history_days", 28, "Days of history baselines are computed from."),
    Setting("detect", "disabled", [], "Detector ids not to run."),
    Setting("detect", "memory_limit", "3GB",
            "DuckDB's memory limit while detecting (it spills to disk beyond it)."),
    Setting("incidents", "min_score", 50.0,
            "A group of findings becomes an incident when its score reaches this (0-100)."),
    Setting("incidents", "link_gap_hours", 12.0,
            "Findings further apart in time than this are not grouped into one incident."),
    Setting("incidents", "expected_factor", 0.5,
            "Score multiplier for findings matching an inventory expected transfer."),
    Setting("scope", "lead_hours", 6.0,
            "How long before the incident data may have been gathered: lineage and reads are "
            "looked for that far back."),
    Setting("scope", "tail_hours", 1.0,
            "Slices of egress connections still open at the window's end are followed this long."),
    Setting("scope", "max_hops", 4, "Lineage is followed back at most this many hops."),
    Setting("scope", "hop_share", 0.2,
            "An internal transfer is lineage when it carried at least this share of what the "
            "next hop sent on."),
    Setting("scope", "min_hop_bytes", 1_000_000, "Smaller internal transfers are not lineage."),
    Setting("scope", "focus_share", 0.2,
            "A host is followed further back only when at least this share of all it gave "
            "inside the network in the period went to the next hop (a server that feeds "
            "everyone is listed, not followed)."),
    Setting("scope", "max_compression", 4.0,
            "Largest ratio of raw data to bytes that left believed possible (an archive of a "
            "dump is smaller than the dump)."),
    Setting("scope", "bulk_share", 0.005,
            "A read is evidence when it took at least this share of its table (or data store), "
            "or was made by an account the incident's findings name."),
)  # fmt: skip


@dataclass(frozen=True)
class Settings:
    path: Path | None = None
    values: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def get(self, section: str, name: str) -> Any:
        setting = next(s for s in SETTINGS if (s.section, s.name) == (section, name))
        return self.values.get(section, {}).get(name, setting.default)

    @property
    def min_score(self) -> float:
        return float(self.get("incidents", "min_score"))

    @property
    def link_gap_hours(self) -> float:
        return float(self.get("incidents", "link_gap_hours"))

    @property
    def expected_factor(self) -> float:
        return float(self.get("incidents", "expected_factor"))

    @property
    def memory_limit(self) -> str:
        value = str(self.get("detect", "memory_limit"))
        if not re.fullmatch(r"\d+(\.\d+)?\s*[KMGT]i?B", value):
            raise ConfigError(f"{self.path or 'settings'}: detect.memory_limit: use e.g. '3GB'")
        return value

    @property
    def history_days(self) -> int:
        return int(self.get("detect", "history_days"))

    def enabled(self) -> list[str]:
        from hemostat.detect import DETECTORS

        disabled = set(self.get("detect", "disabled"))
        return [name for name in DETECTORS if name not in disabled]

    def detector(self, cls: type[T]) -> T:
        """An instance of the detector ``cls`` with this configuration's thresholds."""
        overrides = dict(self.values.get("detect", {}).get(cls.id, {}))  # type: ignore[attr-defined]
        defaults = {f.name: f.default for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        for name, value in overrides.items():
            if isinstance(defaults.get(name), tuple) and isinstance(value, list):
                overrides[name] = tuple(value)
        return cls(**overrides)


def load(home: Path | None, environ: Mapping[str, str] | None = None) -> Settings:
    """Read ``home/hemostat.toml`` (if any) and ``HEMOSTAT_*`` overrides; validate every key."""
    path = None if home is None else Path(home) / FILE_NAME
    values: dict[str, Any] = {}
    if path is not None and path.exists():
        try:
            values = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    for key, text in (os.environ if environ is None else environ).items():
        if key.startswith("HEMOSTAT_") and "__" in key:
            parts = key.removeprefix("HEMOSTAT_").lower().split("__")
            node = values
            for part in parts[:-1]:
                node = node.setdefault(part, {})
            node[parts[-1]] = _from_env(text)
    return Settings(path, _validate(values, str(path or "settings")))


def _from_env(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _validate(values: dict[str, Any], where: str) -> dict[str, Any]:
    from hemostat.detect import DETECTORS

    known = {(s.section, s.name): s for s in SETTINGS}
    for section, table in values.items():
        if section not in {s.section for s in SETTINGS}:
            raise ConfigError(f"{where}: unknown section [{section}]")
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: [{section}] must be a table")
        for name, value in table.items():
            if section == "detect" and name in DETECTORS:
                _check_detector(DETECTORS[name], value, where)
            elif (section, name) not in known:
                raise ConfigError(f"{where}: unknown setting {section}.{name}")
            elif not _same_type(value, known[section, name].default):
                raise ConfigError(
                    f"{where}: {section}.{name} must be like {known[section, name].default!r}"
                )
    disabled = values.get("detect", {}).get("disabled", [])
    unknown = [d for d in disabled if d not in DETECTORS]
    if unknown:
        raise ConfigError(f"{where}: detect.disabled: unknown detector(s) {', '.join(unknown)}")
    return values


def _check_detector(cls: type, value: Any, where: str) -> None:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: [detect.{cls.id}] must be a table")  # type: ignore[attr-defined]
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for name, given in value.items():
        if name not in fields:
            raise ConfigError(
                f"{where}: detect.{cls.id}.{name}: unknown threshold; "  # type: ignore[attr-defined]
                f"known: {', '.join(fields)}"
            )
        default = fields[name].default
        if default is not dataclasses.MISSING and not _same_type(given, default):
            raise ConfigError(
                f"{where}: detect.{cls.id}.{name} must be like {default!r}"  # type: ignore[attr-defined]
            )


def _same_type(value: Any, default: Any) -> bool:
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, int | float) and not isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, list | tuple):
        return isinstance(value, list)
    return default is None or isinstance(value, type(default))

"""Findings in the reader's language: a stored finding's sentence said again in a report's
(or the dashboard's) language, from the detector its ``detector`` column names, its stored
evidence and its own columns.

The stored ``summary`` stays the English one (a contract of the CLI, the JSON output and the
alerts). A finding is re-worded only when its stored row says, in English, exactly its stored
summary: an old finding whose evidence lacks a field, a detector no longer registered, figures
merged since by a later pass or a wording changed since all keep the stored English sentence,
and a report never fails on one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from hemostat.config import Settings
from hemostat.detect import DETECTORS, Detector
from hemostat.detect.words import Words, say
from hemostat.schema import Finding, Incident

#: how the runner stores a time in the evidence (``detect.runner._plain``)
_STORED_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z")


def sentence(finding: Finding, words: Words, settings: Settings | None = None) -> str:
    """The finding's sentence in ``words``, or its stored summary when it cannot be said
    again exactly. ``settings``: the site's detector thresholds (some sentences name one)."""
    return _worded(finding, words, settings) or finding.summary


def summary(
    incident: Incident,
    findings: Iterable[Finding],
    words: Words,
    settings: Settings | None = None,
) -> str:
    """The incident's summary in ``words``: its top finding's sentence and the detectors that
    corroborate it (as ``incidents.build`` writes it), else the stored English summary."""
    stored = incident.summary
    top = max(
        (f for f in findings if f.summary and stored.startswith(f.summary)),
        key=lambda f: len(f.summary),
        default=None,
    )
    if top is None:
        return stored
    others = [d for d in incident.detectors if d != top.detector]
    worded = _worded(top, words, settings)
    if worded is None or stored != top.summary + _corroborated(others, None):
        return stored
    return worded + _corroborated(others, words)


def _worded(finding: Finding, words: Words, settings: Settings | None) -> str | None:
    cls = DETECTORS.get(finding.detector)
    if cls is None:
        return None
    row = _row(finding)
    try:
        detector = settings.detector(cls) if settings else cls()
        if _say(detector, finding, row, None) != finding.summary:
            return None
        return _say(detector, finding, row, words)
    except Exception:  # evidence of another shape (an old finding): the stored sentence stands
        return None


def _say(detector: Detector, finding: Finding, row: dict[str, Any], words: Words | None) -> str:
    """What the runner stores as the summary, in ``words`` (English as stored when None)."""
    expected = say(words, "expected", name=finding.expected) if finding.expected else ""
    return detector.explain(row, words) + expected


def _corroborated(detectors: list[str], words: Words | None) -> str:
    return say(words, "corroborated", detectors=", ".join(detectors)) if detectors else ""


def _row(finding: Finding) -> dict[str, Any]:
    """The detector's row again: the stored evidence (its times as times) and the columns the
    runner keeps apart from it."""
    row = {k: _revive(v) for k, v in finding.evidence.items()}
    row.update(
        host=finding.host,
        ts=finding.ts,
        end_ts=finding.end_ts,
        bytes_out=finding.bytes_out,
        destination=finding.destination,
    )
    return row


def _revive(value: Any) -> Any:
    if isinstance(value, str) and _STORED_TIME.fullmatch(value):
        return datetime.fromisoformat(value)
    return value

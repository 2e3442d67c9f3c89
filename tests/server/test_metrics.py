"""The Prometheus text: every family of contract §6, well formed, with the right values."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime, timedelta

from hemostat.server.metrics import Metrics, Seen

_LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"'
_SAMPLE = re.compile(
    rf"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(\{{(?P<labels>{_LABEL}(?:,{_LABEL})*)\}})?"
    r" (?P<value>-?[0-9.e+-]+|NaN|[+-]Inf)$"
)


def parse(text: str) -> dict[str, list[tuple[str, float]]]:
    """Families -> samples; fails on any line that is not valid exposition format."""
    assert text.endswith("\n")
    families: dict[str, list[tuple[str, float]]] = {}
    typed: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind in ("counter", "gauge") and name not in typed
            typed[name] = kind
            families[name] = []
            continue
        match = _SAMPLE.match(line)
        assert match, f"not a sample line: {line!r}"
        assert match["name"] in typed, f"sample before its TYPE: {line!r}"
        families[match["name"]].append((match["labels"] or "", float(match["value"])))
    return families


def test_the_exposition_parses_and_holds_every_family() -> None:
    now = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    metrics = Metrics()
    metrics.seen("a1", Seen('db "01"', "10.0.0.5", now - timedelta(seconds=30), 4.5, 2048))
    metrics.seen("a2", Seen("old", None, now - timedelta(hours=1), 0.0, 0))
    metrics.stored(Counter({"flows": 5000, "dns": 10}))
    metrics.batch("accepted")
    metrics.batch("accepted")
    metrics.batch("refused")
    metrics.detected(1.25)
    metrics.alerted("syslog", ok=True)
    families = parse(metrics.render(journal_batches=3, writer_lag=0.5, now=now))
    for name in ("hemostat_agents_seen", "hemostat_agent_last_seen_seconds",
                 "hemostat_agent_lag_seconds", "hemostat_ingest_rows_total",
                 "hemostat_ingest_batches_total", "hemostat_journal_batches",
                 "hemostat_agent_spool_bytes", "hemostat_detect_pass_seconds",
                 "hemostat_alerts_total"):  # fmt: skip
        assert name in families
    assert families["hemostat_agents_seen"] == [("", 1.0)]  # a2 is older than 5 minutes
    assert ('agent="a1",name="db \\"01\\""', 30.0) in families["hemostat_agent_last_seen_seconds"]
    assert ('table="flows"', 5000.0) in families["hemostat_ingest_rows_total"]
    assert dict(families["hemostat_ingest_batches_total"]) == {
        'result="accepted"': 2.0,
        'result="refused"': 1.0,
    }
    assert families["hemostat_journal_batches"] == [("", 3.0)]
    assert families["hemostat_detect_pass_seconds"] == [("", 1.25)]
    assert families["hemostat_alerts_total"] == [('sink="syslog"', 1.0)]

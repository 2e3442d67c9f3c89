"""What the collector counts, and its Prometheus text exposition (contract §6).

Counters and per-agent gauges are updated by the request handlers, the writer and the live
detection thread (under one lock); ``render`` writes them out with the journal and writer
gauges it is given.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime

#: an agent that sent nothing for this long no longer counts in ``hemostat_agents_seen``
SEEN_SECONDS = 300.0


@dataclass(frozen=True, slots=True)
class Seen:
    """The latest batch of one agent."""

    name: str
    ip: str | None
    at: datetime  # when it arrived
    lag: float  # seconds between the oldest data it could carry and its arrival
    spool_bytes: int


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.rows: Counter[str] = Counter()  # rows stored per table
        self.batches: Counter[str] = Counter()  # ingest requests per result
        self.alerts: Counter[str] = Counter()  # alerts delivered per sink
        self.alert_failures: Counter[str] = Counter()
        self.agents: dict[str, Seen] = {}
        self.detect_pass_seconds = 0.0
        self.detect_passes = 0

    def batch(self, result: str) -> None:
        with self._lock:
            self.batches[result] += 1

    def stored(self, rows: Counter[str]) -> None:
        with self._lock:
            self.rows.update(rows)

    def seen(self, agent: str, seen: Seen) -> None:
        with self._lock:
            self.agents[agent] = seen

    def detected(self, seconds: float) -> None:
        with self._lock:
            self.detect_pass_seconds = seconds
            self.detect_passes += 1

    def alerted(self, sink: str, ok: bool) -> None:
        with self._lock:
            (self.alerts if ok else self.alert_failures)[sink] += 1

    def render(self, journal_batches: int, writer_lag: float, now: datetime | None = None) -> str:
        now = now or datetime.now(UTC)
        with self._lock:
            agents = sorted(self.agents.items())
            rows, batches = sorted(self.rows.items()), sorted(self.batches.items())
            alerts, failures = sorted(self.alerts.items()), sorted(self.alert_failures.items())
            detect = self.detect_pass_seconds
        recent = sum((now - s.at).total_seconds() <= SEEN_SECONDS for _, s in agents)
        per_agent = [({"agent": a, "name": s.name}, s) for a, s in agents]
        out = _Text()
        out.gauge(
            "hemostat_agents_seen",
            "Agents that sent a batch in the last 5 minutes.",
            [({}, recent)],
        )
        out.gauge(
            "hemostat_agent_last_seen_seconds",
            "Seconds since the agent's last batch.",
            [(k, (now - s.at).total_seconds()) for k, s in per_agent],
        )
        out.gauge(
            "hemostat_agent_lag_seconds",
            "Age of the oldest data in the agent's last batch or spool when it arrived.",
            [(k, s.lag) for k, s in per_agent],
        )
        out.gauge(
            "hemostat_agent_spool_bytes",
            "Bytes waiting in the agent's spool.",
            [(k, s.spool_bytes) for k, s in per_agent],
        )
        out.counter(
            "hemostat_ingest_rows_total",
            "Rows stored, per table.",
            [({"table": t}, n) for t, n in rows],
        )
        out.counter(
            "hemostat_ingest_batches_total",
            "Ingest requests per result: accepted, duplicate, refused (4xx), "
            "throttled (429), unavailable (503); then stored or failed (set aside).",
            [({"result": r}, n) for r, n in batches],
        )
        out.gauge(
            "hemostat_journal_batches",
            "Acknowledged batches not yet in the store.",
            [({}, journal_batches)],
        )
        out.gauge(
            "hemostat_writer_lag_seconds",
            "Age of the oldest acknowledged batch not yet in the store.",
            [({}, writer_lag)],
        )
        out.gauge(
            "hemostat_detect_pass_seconds",
            "Duration of the last live detection pass.",
            [({}, detect)],
        )
        out.counter(
            "hemostat_alerts_total",
            "Alerts delivered, per sink.",
            [({"sink": s}, n) for s, n in alerts],
        )
        out.counter(
            "hemostat_alert_failures_total",
            "Alerts a sink did not take, per sink.",
            [({"sink": s}, n) for s, n in failures],
        )
        return out.text()


class _Text:
    """Prometheus text format 0.0.4: HELP and TYPE lines, then one line per sample."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def gauge(self, name: str, help_: str, samples: list[tuple[dict[str, str], float]]) -> None:
        self._family(name, "gauge", help_, samples)

    def counter(self, name: str, help_: str, samples: list[tuple[dict[str, str], float]]) -> None:
        self._family(name, "counter", help_, samples)

    def _family(
        self, name: str, kind: str, help_: str, samples: list[tuple[dict[str, str], float]]
    ) -> None:
        self.lines += [f"# HELP {name} {help_}", f"# TYPE {name} {kind}"]
        for labels, value in samples:
            inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
            self.lines.append(f"{name}{{{inner}}} {_number(value)}" if inner else
                              f"{name} {_number(value)}")  # fmt: skip

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if isinstance(value, int) or float(value).is_integer():
        return str(int(value))
    return f"{value:.6g}"

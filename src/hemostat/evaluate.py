"""Scores detection against a simulation's ground truth (``truth.json``, docs/simulate.md).

The pipeline is the product's own: simulate (or take a directory), ingest into a fresh store,
detect in steps of data time (as the live loop would, so "how soon" has a meaning), group
incidents; only then is the truth read, to match incidents to episodes:

* an incident **covers** an episode when their times overlap and the incident names one of
  the episode's hosts (or a host inside one of its ranges) or one of its destinations
  (address, range, or a domain the incident's destination ends with);
* a malicious episode is **detected** when an incident covers it; its **delay** is the end of
  the first detection step after which a covering finding existed, minus the episode start;
* an incident that covers no malicious episode is a **false incident**; a benign look-alike
  covered by a false incident is **raised**.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hemostat import config, inventory
from hemostat.detect import Window
from hemostat.detect.runner import examine, load
from hemostat.errors import ConfigError
from hemostat.incidents import listing
from hemostat.ingest import ingest
from hemostat.schema import Finding, Incident
from hemostat.store import Store


@dataclass(frozen=True, slots=True)
class EpisodeScore:
    id: str
    scenario: str | None
    kind: str
    malicious: bool
    detected: bool
    delay: timedelta | None = None  # data time from episode start to first covering finding
    incidents: tuple[str, ...] = ()
    score: float | None = None


@dataclass(frozen=True)
class Evaluation:
    directory: Path
    hosts: int
    days: float
    episodes: list[EpisodeScore]
    lookalikes: list[EpisodeScore]
    false_incidents: list[Incident]
    incidents: int
    detect_seconds: float
    steps: int

    @property
    def false_per_day_per_1000(self) -> float:
        return len(self.false_incidents) / max(self.days, 1e-9) / max(self.hosts / 1000, 1e-9)

    @property
    def scenarios(self) -> dict[str, bool]:
        """Per scenario: detected when its main episode (``id == scenario``) is."""
        out: dict[str, bool] = {}
        for e in self.episodes:
            if e.scenario and e.id == e.scenario:
                out[e.scenario] = e.detected
        return out

    def as_json(self) -> dict[str, Any]:
        def one(e: EpisodeScore) -> dict[str, Any]:
            return {
                "id": e.id, "scenario": e.scenario, "kind": e.kind, "detected": e.detected,
                "delay_s": None if e.delay is None else e.delay.total_seconds(),
                "incidents": list(e.incidents), "score": e.score,
            }  # fmt: skip

        return {
            "directory": str(self.directory), "hosts": self.hosts, "days": self.days,
            "scenarios": self.scenarios, "episodes": [one(e) for e in self.episodes],
            "lookalikes": [one(e) | {"raised": e.detected} for e in self.lookalikes],
            "false_incidents": [i.id for i in self.false_incidents],
            "false_incidents_per_day_per_1000_hosts": round(self.false_per_day_per_1000, 3),
            "incidents": self.incidents, "detect_seconds": round(self.detect_seconds, 1),
            "steps": self.steps,
        }  # fmt: skip


@dataclass(frozen=True)
class _Episode:
    raw: dict[str, Any]
    start: datetime
    end: datetime
    hosts: list[Any] = field(default_factory=list)  # networks
    destinations: list[Any] = field(default_factory=list)  # networks and domain names


def run(
    directory: Path,
    home: Path,
    step: timedelta | None = timedelta(hours=4),
    settings: config.Settings | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> Evaluation:
    """Ingest ``directory`` (a simulation with truth.json) into a fresh store under ``home``,
    detect step by step, and score the incidents against the truth."""
    truth_path = directory / "truth.json"
    if not truth_path.exists():
        raise ConfigError(f"{directory}: no truth.json (not a hemostat simulation?)")
    inv = inventory.load(directory / "inventory.yaml")
    settings = settings or config.Settings()
    with Store(home) as store:
        files = sorted(p for p in directory.iterdir() if p.suffix in (".log", ".jsonl", ".gz"))
        done_files = iter(range(1, len(files) + 1))
        ingest(
            store,
            files,
            on_file=lambda _: progress and progress("ingest", next(done_files), len(files)),
        )
        truth = json.loads(truth_path.read_text(encoding="utf-8"))
        start, end = _when(truth["start"]), _when(truth["end"])
        windows = _steps(start, end, step)
        first_seen: dict[str, datetime] = {}
        seconds = 0.0
        for i, window in enumerate(windows):
            done = examine(store, inv, settings, window)
            seconds += done.seconds
            for finding in done.run.findings:
                first_seen.setdefault(finding.id, window.end)
            if progress:
                progress("detect", i + 1, len(windows))
        findings = load(store)
        incidents = [listed.incident for listed in listing(store)]
    return _score(truth, directory, findings, incidents, first_seen, seconds, len(windows))


def _steps(start: datetime, end: datetime, step: timedelta | None) -> list[Window]:
    if step is None or step <= timedelta(0):
        return [Window(start, end)]
    out, t = [], start
    while t < end:
        out.append(Window(t, min(t + step, end)))
        t += step
    return out


def _score(
    truth: dict[str, Any],
    directory: Path,
    findings: list[Finding],
    incidents: list[Incident],
    first_seen: dict[str, datetime],
    seconds: float,
    steps: int,
) -> Evaluation:
    by_id = {f.id: f for f in findings}
    malicious = [_episode(e) for e in truth["episodes"]]
    benign = [_episode(e) for e in truth["benign"]]
    covering = {i.id: [e.raw["id"] for e in malicious if _covers(i, e)] for i in incidents}
    false = [i for i in incidents if not covering[i.id]]
    scored = [_judge(e, incidents, by_id, first_seen) for e in malicious]
    raised = [_judge(e, false, by_id, first_seen) for e in benign]
    days = (_when(truth["end"]) - _when(truth["start"])) / timedelta(days=1)
    return Evaluation(
        directory, int(truth["hosts"]), days, scored, raised, false, len(incidents), seconds, steps
    )


def _judge(
    episode: _Episode,
    incidents: Sequence[Incident],
    findings: dict[str, Finding],
    first_seen: dict[str, datetime],
) -> EpisodeScore:
    hits = [i for i in incidents if _covers(i, episode)]
    delay = None
    seen = [
        first_seen[f]
        for i in hits
        for f in i.findings
        if f in first_seen and f in findings and _finding_covers(findings[f], episode)
    ]
    if seen:
        delay = max(min(seen) - episode.start, timedelta(0))
    raw = episode.raw
    return EpisodeScore(
        raw["id"], raw.get("scenario"), raw["kind"], bool(raw["malicious"]), bool(hits),
        delay, tuple(i.id for i in hits), max((i.score for i in hits), default=None),
    )  # fmt: skip


def _episode(raw: dict[str, Any]) -> _Episode:
    def parse(value: str) -> Any:
        try:
            return ipaddress.ip_network(value, strict=False)
        except ValueError:
            return value.lower().rstrip(".")

    return _Episode(
        raw, _when(raw["start"]), _when(raw["end"]),
        [parse(v) for v in raw["hosts"]],
        # a DNS tunnel's name server is where the resolvers carry its queries
        [parse(v) for v in [*raw["destinations"], *filter(None, [raw.get("nameserver")])]],
    )  # fmt: skip


def _covers(incident: Incident, episode: _Episode) -> bool:
    return _overlaps(incident.start, incident.end, [*incident.hosts, *incident.destinations],
                     episode)  # fmt: skip


def _finding_covers(finding: Finding, episode: _Episode) -> bool:
    values = [finding.host, *finding.hosts, *([finding.destination] if finding.destination else [])]
    return _overlaps(finding.ts, finding.end_ts, values, episode)


def _overlaps(start: datetime, end: datetime, values: Sequence[str], episode: _Episode) -> bool:
    """Overlaps the episode in time and names one of its hosts or destinations."""
    return start <= episode.end and end >= episode.start and _names_match(values, episode)


def _names_match(values: Sequence[str], episode: _Episode) -> bool:
    """A host or a destination of the episode is named; when the episode's side that matched
    is a range (everyday totals like all workstations → the cloud), the other side must
    match too."""
    host_hit, dest_hit = _hit(values, episode.hosts), _hit(values, episode.destinations)
    return (
        (host_hit and dest_hit)
        or (host_hit and _specific(episode.hosts))
        or (dest_hit and _specific(episode.destinations))
    )


def _hit(values: Sequence[str], targets: list[Any]) -> bool:
    for value in values:
        try:
            address = ipaddress.ip_address(value)
        except ValueError:
            name = value.lower().rstrip(".")
            if any(isinstance(t, str) and (name == t or name.endswith("." + t)) for t in targets):
                return True
            continue
        if any(not isinstance(t, str) and address in t for t in targets):
            return True
    return False


def _specific(targets: list[Any]) -> bool:
    return all(isinstance(t, str) or t.num_addresses == 1 for t in targets)


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


# ---- scoping against the truth ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScopeScore:
    """One data store of one incident: the truth against the bounds scoping gave."""

    incident: str
    datastore: str
    category: str
    status: str  # proven | possible | none (not reached by scoping)
    true_records: int
    true_subjects: int
    records: tuple[int, int]
    subjects: tuple[int, int]

    @property
    def within(self) -> bool:
        lo_r, hi_r = self.records
        lo_s, hi_s = self.subjects
        return lo_r <= self.true_records <= hi_r and lo_s <= self.true_subjects <= hi_s

    @property
    def ratio(self) -> float:
        """high / low of the records (inf when the low is 0 and the high is not)."""
        lo, hi = self.records
        return hi / lo if lo else (1.0 if hi == 0 else float("inf"))


def score_scopes(
    store: Store, site: inventory.Inventory, settings: config.Settings, truth: dict[str, Any]
) -> list[ScopeScore]:
    """Scope every stored incident and compare, per data store, with what the truth says the
    malicious episodes it covers took (a store left by several episodes: records add up, the
    people are the largest episode's)."""
    from hemostat.scope import scope

    malicious = [_episode(e) for e in truth["episodes"]]
    out = []
    for listed in listing(store):
        inc = listed.incident
        true: dict[str, tuple[int, int, str]] = {}
        for e in (e for e in malicious if _covers(inc, e)):
            for d in e.raw.get("datastores", []):
                r, s, _ = true.get(d["name"], (0, 0, d["category"]))
                true[d["name"]] = (r + d["records"], max(s, d["subjects"]), d["category"])
        result = scope(store, site, inc.id, settings)
        reached = {r.name: r for r in result.datastores}
        for name in sorted(set(true) | set(reached)):
            r = reached.get(name)
            records, subjects, category = true.get(name, (0, 0, str(r.category) if r else ""))
            out.append(ScopeScore(
                inc.id, name, category, str(r.status) if r else "none", records, subjects,
                (r.records.low, r.records.high) if r else (0, 0),
                (r.subjects.low, r.subjects.high) if r else (0, 0),
            ))  # fmt: skip
    return out

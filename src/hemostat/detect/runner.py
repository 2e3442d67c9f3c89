"""Runs detectors over a window: timing, errors, expected-transfer discounts, finding ids.

``detect`` works on any Ibis backend (DuckDB by default, Spark for the scale-out) and
returns findings; ``save`` writes them to the store, merging a finding found again (same id)
with what was stored, so the command can run every minute over new data.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import ibis
import ibis.expr.types as ir

from hemostat.config import Settings
from hemostat.detect import DETECTORS, Context, Detector, Window
from hemostat.errors import HemostatError
from hemostat.inventory import ExpectedTransfer, Inventory
from hemostat.schema import Finding, Incident, Kind, Table
from hemostat.store import Store

#: columns of a detector's output the runner interprets; the rest is evidence
CORE = ("host", "ts", "end_ts", "score", "bytes_out", "destination", "hosts", "kind", "key")
MAX_IDS = 50


@dataclass(frozen=True, slots=True)
class DetectorRun:
    detector: str
    seconds: float
    findings: int
    error: str | None = None


@dataclass(frozen=True)
class Run:
    window: Window
    findings: list[Finding]
    detectors: list[DetectorRun] = field(default_factory=list)

    @property
    def errors(self) -> list[DetectorRun]:
        return [d for d in self.detectors if d.error]


def tables(backend: Any) -> tuple[ir.Table, ir.Table, ir.Table]:
    return backend.table("flows"), backend.table("dns"), backend.table("access")


def detect(
    backend: Any,
    inventory: Inventory,
    window: Window,
    settings: Settings,
    detectors: Sequence[Detector] | None = None,
    progress: Callable[[str], None] | None = None,
) -> Run:
    """Every enabled detector (or just ``detectors``) over ``window``; one failing detector
    is reported in the run and does not stop the others."""
    flows, dns, access = tables(backend)
    ctx = Context(flows, dns, access, window, inventory, materialise=True)
    findings: list[Finding] = []
    runs: list[DetectorRun] = []
    if detectors is None:
        detectors = [settings.detector(DETECTORS[name]) for name in settings.enabled()]
    for detector in detectors:
        name = detector.id
        started = time.perf_counter()
        try:
            rows = backend.to_pyarrow(detector.run(ctx)).to_pylist()
            found = [_finding(detector, row, inventory, settings) for row in rows]
            found = [f for f in found if f.end_ts >= window.start]
        except HemostatError as exc:
            runs.append(DetectorRun(name, time.perf_counter() - started, 0, str(exc)))
        except Exception as exc:  # a bug in one detector must not hide the others' findings
            message = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            runs.append(DetectorRun(name, time.perf_counter() - started, 0, message))
        else:
            findings += found
            runs.append(DetectorRun(name, time.perf_counter() - started, len(found)))
        finally:
            ctx.release()
        if progress:
            progress(name)
    return Run(window, findings, runs)


def _finding(
    detector: Detector, row: dict[str, Any], inventory: Inventory, settings: Settings
) -> Finding:
    host, destination = str(row["host"]), row.get("destination")
    ts, end_ts = _utc(row["ts"]), _utc(row["end_ts"])
    key = row.get("key") or ts.date().isoformat()
    ident = hashlib.sha1(
        f"{detector.id}|{host}|{destination}|{key}".encode(), usedforsecurity=False
    ).hexdigest()[:16]
    evidence = {k: _plain(v) for k, v in row.items() if k not in CORE}
    expected = _expected(inventory.expected_transfers, host, destination, row.get("dst_port"))
    score = float(row["score"])
    if expected:
        evidence["score_before_expected"] = round(score, 1)
        score *= settings.expected_factor
    # the host first, then the others sorted: a detector collects them as a set, in an order
    # each engine (and each Spark run) gives differently
    hosts = (host, *sorted({str(h) for h in row.get("hosts") or []} - {host}))
    return Finding(
        id=f"F-{ident}",
        detector=detector.id,
        kind=Kind(row.get("kind") or detector.kind),
        ts=ts,
        end_ts=end_ts,
        host=host,
        destination=None if destination is None else str(destination),
        score=round(min(max(score, 0.0), 100.0), 1),
        bytes_out=int(row["bytes_out"] or 0),
        attack=detector.attack,
        summary=detector.explain(row) + (f" Expected transfer '{expected}'." if expected else ""),
        hosts=hosts,
        expected=expected,
        evidence=evidence,
    )


def _expected(
    transfers: list[ExpectedTransfer], host: str, destination: Any, port: Any
) -> str | None:
    """Name of the inventory's expected transfer this finding's traffic matches, if any."""
    for transfer in transfers:
        if not _in(host, transfer.sources):
            continue
        if transfer.dst and (destination is None or not _in(str(destination), transfer.dst)):
            continue
        if transfer.ports and port is not None and int(port) not in transfer.ports:
            continue
        return transfer.name
    return None


def _in(ip: str, networks: list[str]) -> bool:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(n, strict=False) for n in networks)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _plain(value: Any) -> Any:
    """Evidence as JSON-ready values; long id lists cut to ``MAX_IDS`` with the full count."""
    if isinstance(value, datetime):
        return _utc(value).isoformat().replace("+00:00", "Z")
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, list):
        return [_plain(v) for v in value[:MAX_IDS]]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


# ---- persistence -------------------------------------------------------------------------


def save(store: Store, findings: list[Finding]) -> int:
    """Upsert findings: one found again keeps its id, the earliest start, the latest end and
    the larger figures. Returns how many are new."""
    if not findings:
        return 0
    con = store.con
    new = 0
    with store.transaction():
        for f in findings:
            old = con.execute(
                "SELECT ts, end_ts, score, bytes_out, incident_id FROM findings WHERE id = ?",
                [f.id],
            ).fetchall()
            ts, end_ts, score, bytes_out, incident = f.ts, f.end_ts, f.score, f.bytes_out, None
            if old:
                o_ts, o_end, o_score, o_bytes, incident = old[0]
                ts, end_ts = min(ts, o_ts), max(end_ts, o_end)
                score, bytes_out = max(score, o_score), max(bytes_out, o_bytes)
                con.execute("DELETE FROM findings WHERE id = ?", [f.id])
            else:
                new += 1
            con.execute(
                "INSERT INTO findings (id, detector, kind, ts, end_ts, host, destination, score, "
                "severity, bytes_out, attack, evidence, incident_id, summary, hosts, expected, "
                "detected_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [f.id, f.detector, f.kind, ts, end_ts, f.host, f.destination, score,
                 f.severity, bytes_out, list(f.attack), json.dumps(f.evidence), incident,
                 f.summary, list(f.hosts), f.expected, datetime.now(UTC)],
            )  # fmt: skip
    return new


def load(store: Store, ids: Sequence[str] | None = None) -> list[Finding]:
    """The stored findings (those of ``ids``, or every one), oldest first."""
    where = "" if ids is None else "WHERE list_contains(?::VARCHAR[], id) "
    rows = store.con.execute(
        "SELECT id, detector, kind, ts, end_ts, host, destination, score, bytes_out, attack, "
        f"summary, hosts, expected, evidence FROM findings {where}ORDER BY ts, id",
        [] if ids is None else [list(ids)],
    ).fetchall()
    return [
        Finding(
            id=r[0], detector=r[1], kind=Kind(r[2]), ts=_utc(r[3]), end_ts=_utc(r[4]),
            host=r[5], destination=r[6], score=float(r[7]), bytes_out=int(r[8] or 0),
            attack=tuple(r[9] or ()), summary=r[10] or "", hosts=tuple(r[11] or ()),
            expected=r[12], evidence=json.loads(r[13]) if r[13] else {},
        )
        for r in rows
    ]  # fmt: skip


# ---- one detection pass over the store ------------------------------------------------------


@dataclass(frozen=True)
class Pass:
    """What ``hemostat detect`` did: the run, how many findings were new, the incidents."""

    run: Run
    new: int
    incidents: list[Incident]
    seconds: float


def pending(
    store: Store, since: datetime | None, until: datetime | None, backend: Any = None
) -> Window | None:
    """The window a pass should examine: from where the last pass stopped (or the oldest
    row) to just after the newest row; ``None`` when there is nothing new. The rows are the
    store's, or those of ``backend`` (the lake, for the Spark engine)."""
    ranges = [_range(store, backend, t) for t in Table] if until is None or since is None else []
    if until is None:
        latest = max((end for _, end in ranges if end is not None), default=None)
        until = None if latest is None else latest + timedelta(microseconds=1)
    if since is None:
        row = store.con.execute("SELECT max(until) FROM detections").fetchall()
        since = row[0][0] if row and row[0][0] else None
    if since is None:
        since = min((start for start, _ in ranges if start is not None), default=None)
    if since is None or until is None or until <= since:
        return None
    return Window(_utc(since), _utc(until))


def _range(store: Store, backend: Any, table: Table) -> tuple[Any, Any]:
    if backend is None:
        return store.time_range(table)
    t = backend.table(str(table))
    row = backend.to_pyarrow(t.aggregate(lo=t.ts.min(), hi=t.ts.max())).to_pylist()[0]
    return row["lo"], row["hi"]


def examine(
    store: Store,
    inventory: Inventory,
    settings: Settings,
    window: Window,
    detectors: Sequence[Detector] | None = None,
    progress: Callable[[str], None] | None = None,
    backend: Any = None,
) -> Pass:
    """Run the detectors over ``window`` on the store (or on ``backend``'s telemetry: the
    lake, for the Spark engine), save findings, regroup incidents and record the pass (so
    the next one starts where this one stopped)."""
    from hemostat.incidents import rebuild
    from hemostat.scope import egress_rollup
    from hemostat.scope.pairs import roll

    started = time.perf_counter()
    window = Window(window.start, window.end, timedelta(days=settings.history_days))
    store.con.execute(f"SET memory_limit = '{settings.memory_limit}'")
    if backend is None:
        backend = ibis.duckdb.from_connection(store.con)
    run = detect(backend, inventory, window, settings, detectors, progress)
    new = save(store, run.findings)
    result = rebuild(store, settings)
    roll(store, inventory.internal, window.start, window.end, backend)
    egress_rollup.roll(store, inventory.internal, window.start, window.end, backend)
    seconds = time.perf_counter() - started
    store.con.execute(
        "INSERT INTO detections (started_at, since, until, seconds, findings, new_findings, "
        "incidents, errors) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [datetime.now(UTC), window.start, window.end, seconds, len(run.findings), new,
         len(result), [f"{e.detector}: {e.error}" for e in run.errors]],
    )  # fmt: skip
    return Pass(run, new, result, seconds)

"""The ``hemostat`` command: parse, call one library function, print. Errors become one
``error: …`` line and a non-zero exit status, never a traceback."""

from __future__ import annotations

import importlib
import json
import os
import re
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table as RichTable

from hemostat import inventory as inventory_mod
from hemostat.cli.base import State, app, console, err, inventory_app, store_app
from hemostat.cli.lake import EngineOption, LakeOption, MasterOption, SiteOption, backend, site_of
from hemostat.engine import Engine
from hemostat.errors import HemostatError
from hemostat.store import Store

# ---- demo and simulate --------------------------------------------------------------------


@app.command()
def demo(
    hosts: Annotated[int, typer.Option(min=50, help="Size of the demo site.")] = 300,
    out: Annotated[Path, typer.Option(help="Where the demo logs are written.")] = Path("demo-out"),
    serve: Annotated[bool, typer.Option(
        help="Then serve the dashboard on --bind (plain HTTP, loopback only) with a "
             "responder token printed for the login page; Ctrl-C stops it.")] = False,
    bind: Annotated[str, typer.Option(help="Loopback address and port for --serve.")] = (
        "127.0.0.1:8080"),
) -> None:
    """The main job on data it makes itself: write logs, ingest them, and (as they land)
    detect, scope and report. Says plainly which stages are not built yet."""
    from hemostat import demo as demo_mod

    with _progress(False) as progress:
        current: list[Any] = []

        def stage(text: str) -> None:
            if current:
                progress.update(current[-1], total=1, completed=1)
            current.append(progress.add_task(text, total=None))

        result = demo_mod.run(State.home, out, hosts=hosts, on_stage=stage)
        if current:
            progress.update(current[-1], total=1, completed=1)
    table = RichTable("table", "rows", title=f"{result.site}: store {State.home}")
    for name in ("flows", "dns", "access"):
        table.add_row(name, f"{getattr(result.counts, name):,}")
    console.print(table)
    console.print(f"logs in {result.out}; bad lines while ingesting: {result.bad_lines}")
    if result.detection:
        for failed in result.detection.run.errors:
            err.print(f"detector {failed.detector} failed: {failed.error}", markup=False)
        _print_incidents(result.incidents)
    if result.scope:
        from hemostat.cli.scope import _print

        _print(result.scope)
        for path in result.reports:
            console.print(f"report: [bold]{path}[/]")
        if result.bundle:
            console.print(f"evidence bundle: {result.bundle.path} "
                          f"(manifest SHA-256 {result.bundle.manifest_sha256})")  # fmt: skip
    if result.not_built:
        console.print("[yellow]not built yet[/] (no result is shown for these, none is faked):")
        for stage_name in result.not_built:
            console.print(f"  • {stage_name}")
    if serve:
        _serve_demo(State.home, bind)


def _serve_demo(home: Path, bind: str) -> None:
    """The collector and its dashboard on the demo's store, on loopback, with a token."""
    from hemostat.server.auth import Role, Tokens
    from hemostat.server.run import serve

    _, text = Tokens(home).create("demo-responder", Role.RESPONDER)

    def ready(where: str) -> None:
        console.print(f"dashboard: [bold]{where}/[/] — log in with this responder token "
                      f"(shown once): {text}", soft_wrap=True, markup=True)  # fmt: skip

    serve(home, bind, insecure_http=True, announce=ready)


@app.command()
def simulate(
    out: Annotated[
        Path, typer.Option(help="Directory for conn/dns logs, access.jsonl, inventory, truth.")
    ],
    hosts: Annotated[int, typer.Option(min=40, help="Number of hosts (300 to 8000).")] = 300,
    days: Annotated[int, typer.Option(min=1, help="Days of traffic.")] = 1,
    scenario: Annotated[
        list[str] | None, typer.Option(help="Attack scenario (repeatable); see docs/simulate.md.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same hospital.")] = 0,
) -> None:
    """Write a simulated hospital's traffic, with attack scenarios and their ground truth."""
    from hemostat.simulate import generate

    with _progress(False) as progress:
        task = progress.add_task("simulate", total=None)
        summary = generate(
            out, hosts=hosts, days=days, scenarios=tuple(scenario or ()), seed=seed,
            progress=lambda done, total: progress.update(task, completed=done, total=total),
        )  # fmt: skip
    console.print(
        f"wrote {out}: {summary.flows:,} flows, {summary.dns:,} dns, {summary.access:,} access "
        f"events; ground truth in {out / 'truth.json'}"
    )


# ---- ingest -------------------------------------------------------------------------------


_COUNTS = ("flows", "dns", "access")


def _print_reports(reports: list[Any], seconds: float) -> None:
    """Totals per format, then only the files that need a look (bad lines, refused, skipped);
    ``--json`` has every file."""
    table = RichTable(title=f"ingest: {len(reports)} file(s)", box=box.SIMPLE_HEAD,
                      pad_edge=False, collapse_padding=True)  # fmt: skip
    table.add_column("format (files)", no_wrap=True)
    for col in (*_COUNTS, "bad lines", "duplicate"):  # duplicate: files already ingested
        table.add_column(col, justify="right", no_wrap=True)
    totals: dict[str, list[int]] = {}
    for r in reports:
        if r.format is None or r.error:
            continue
        row = totals.setdefault(r.format, [0] * 6)
        counts = (1, *(r.rows.get(t, 0) for t in _COUNTS), r.bad_count, int(r.duplicate))
        row[:] = [a + b for a, b in zip(row, counts, strict=True)]
    for name, row in sorted(totals.items()):
        table.add_row(f"{name} ({row[0]})", *(f"{n:,}" for n in row[1:]))
    console.print(table)
    rows = sum(sum(r.rows.values()) for r in reports)
    console.print(f"{rows:,} rows in {seconds:.1f} s ({rows / max(seconds, 1e-9):,.0f} rows/s)")
    _print_attention(reports)


def _print_attention(reports: list[Any], bad_lines: int = 20) -> None:
    """One line per file refused, skipped or with bad lines; a few bad lines themselves."""
    notes = [(r, _note(r)) for r in reports]
    if any(note for _, note in notes):
        console.print("files to look at:")
    for r, note in notes:
        if note:
            console.print(f"  {r.path}: {note}", markup=False, highlight=False, soft_wrap=True)
        if r.error:
            print(f"error: {r.error}", file=sys.stderr)  # noqa: T201
    shown = [bad for r in reports for bad in r.bad[:5]][:bad_lines]
    for bad in shown:
        err.print(f"[yellow]skipped[/] {escape(str(bad))}", highlight=False, soft_wrap=True)
    if (total := sum(r.bad_count for r in reports)) > len(shown):
        err.print(f"[yellow]skipped[/] … and {total - len(shown):,} more bad line(s) (--json)")


def _note(r: Any) -> str:
    if r.error:
        return f"refused: {r.error.message}"
    parts = [f"{r.bad_count:,} bad line(s) skipped"] if r.bad_count else []
    return ", ".join(parts + [k if n == 1 else f"{n:,} {k}" for k, n in r.skipped.items()])


def _report_json(r: Any) -> dict[str, Any]:
    return {
        "path": str(r.path), "format": r.format, "rows": {str(k): v for k, v in r.rows.items()},
        "bad_lines": r.bad_count, "bad": [str(b) for b in r.bad], "skipped": r.skipped,
        "duplicate": r.duplicate, "error": None if r.error is None else str(r.error),
    }  # fmt: skip


@app.command()
def ingest(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Files or directories (rotated, gzip ok).")
    ] = None,
    fmt: Annotated[
        str | None, typer.Option("--format", help="Skip detection; see `hemostat formats`.")
    ] = None,
    strict: Annotated[bool, typer.Option(help="Refuse a whole file if any line is bad.")] = False,
    listen: Annotated[
        str | None, typer.Option(help="Receive NetFlow v5/v9/IPFIX, e.g. udp://127.0.0.1:2055.")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON report per file.")
    ] = False,
) -> None:
    """Append telemetry files to the store (Zeek, Suricata, nfdump, pcap, CICFlowMeter,
    auditd, access JSONL, NetFlow/IPFIX captures). A file already ingested is not counted
    twice; a refused file leaves nothing behind. Exit status 1 if any file was refused."""
    from hemostat.ingest import expand
    from hemostat.ingest import ingest as run

    if listen:
        _listen(listen)
        return
    if not paths:
        raise HemostatError("nothing to ingest: give files or directories, or --listen")
    files = list(expand(paths))
    with Store(State.home) as store, _progress(as_json) as progress:
        task = progress.add_task("ingest", total=len(files))

        def advance(report: Any) -> None:
            progress.update(task, advance=1, description=report.path.name[:40])

        start = time.perf_counter()
        reports = run(store, paths, fmt=fmt, strict=strict, on_file=advance)
    if as_json:
        console.print_json(json.dumps([_report_json(r) for r in reports]))
    else:
        _print_reports(reports, time.perf_counter() - start)
    if any(r.error for r in reports):
        raise typer.Exit(1)


def _listen(url: str) -> None:
    match = re.fullmatch(r"udp://([^:]+|\[[0-9a-fA-F:]+\]):(\d+)", url)
    if not match:
        raise HemostatError(f"--listen {url!r}: expected udp://ADDRESS:PORT")
    try:
        netflow_listen = importlib.import_module("hemostat.ingest.netflow_listen")
    except ImportError as exc:
        raise HemostatError("the NetFlow/IPFIX listener is not available in this build") from exc
    with Store(State.home) as store:
        err.print(f"listening for NetFlow/IPFIX on {url} (Ctrl-C to stop)")
        netflow_listen.listen(store, url)


def _progress(quiet: bool) -> Progress:
    columns = (TextColumn("{task.description:<40}"), BarColumn(), MofNCompleteColumn())
    return Progress(*columns, TimeElapsedColumn(), console=err, disable=quiet, transient=True)


@app.command()
def formats() -> None:
    """List the input formats hemostat reads, in the order detection tries them."""
    from hemostat.ingest import READERS

    table = RichTable("format", "tables", "what")
    for rid, cls in READERS.items():
        table.add_row(rid, ", ".join(str(t) for t in cls.tables), cls.description)
    console.print(table)


@app.command()
def status(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """What the store holds: rows per table, time range, files ingested."""
    with Store(State.home) as store:
        counts = store.counts()
        ranges = {t: store.time_range(t) for t in ("flows", "dns", "access")}  # type: ignore[arg-type]
    data = {
        "home": str(State.home), "files": counts.files,
        "tables": {t: {"rows": getattr(counts, t),
                       "first": None if r[0] is None else r[0].isoformat(),
                       "last": None if r[1] is None else r[1].isoformat()}
                   for t, r in ranges.items()},
    }  # fmt: skip
    if as_json:
        console.print_json(json.dumps(data))
        return
    table = RichTable("table", "rows", "first (UTC)", "last (UTC)", title=f"store {State.home}")
    for t, v in data["tables"].items():  # type: ignore[attr-defined]
        table.add_row(t, f"{v['rows']:,}", v["first"] or "-", v["last"] or "-")
    console.print(table)
    console.print(f"{counts.files} file(s) ingested")


# ---- detection ----------------------------------------------------------------------------


@app.command()
def detect(
    since: Annotated[
        str | None,
        typer.Option(
            help="Start (ISO 8601 UTC, or an age like 6h). Default: where "
            "the last run stopped, else the oldest data."
        ),
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="End (ISO 8601 or age). Default: newest data.")
    ] = None,
    detector: Annotated[
        list[str] | None, typer.Option(help="Run only this detector (repeatable).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run as JSON.")] = False,
    engine: EngineOption = Engine.DUCKDB,
    lake: LakeOption = None,
    site_name: SiteOption = None,
    master: MasterOption = "local[*]",
) -> None:
    """Run the detectors over new data (incremental: call it every minute), save findings and
    regroup incidents; with --engine spark, over the site's part of the Parquet lake. Exit
    status 1 if a detector failed (the others still ran)."""
    from hemostat import config
    from hemostat.detect import DETECTORS
    from hemostat.detect.runner import examine, pending

    settings = config.load(State.home)
    unknown = [d for d in detector or [] if d not in DETECTORS]
    if unknown:
        raise HemostatError(f"unknown detector {unknown[0]}; known: {', '.join(DETECTORS)}")
    chosen = [settings.detector(DETECTORS[d]) for d in detector] if detector else None
    with Store(State.home) as store, backend(store, engine, lake, site_name, master) as telemetry:
        window = pending(store, _when(since), _when(until), telemetry)
        if window is None:
            console.print("nothing new to examine")
            return
        names = [d.id for d in chosen] if chosen else settings.enabled()
        with _progress(as_json) as progress:
            task = progress.add_task("detect", total=len(names))
            done = examine(
                store, _inventory(), settings, window, chosen,
                lambda name: progress.update(task, advance=1, description=name), telemetry,
            )  # fmt: skip
    if as_json:
        console.print_json(json.dumps({
            "since": window.start.isoformat(), "until": window.end.isoformat(),
            "findings": len(done.run.findings), "new_findings": done.new,
            "incidents": len(done.incidents), "seconds": round(done.seconds, 2),
            "detectors": [{"id": d.detector, "findings": d.findings,
                           "seconds": round(d.seconds, 2), "error": d.error}
                          for d in done.run.detectors],
        }))  # fmt: skip
    else:
        table = RichTable(
            "detector",
            "findings",
            "seconds",
            "error",
            title=f"{window.start:%Y-%m-%d %H:%M} → {window.end:%Y-%m-%d %H:%M} UTC",
        )
        for d in done.run.detectors:
            table.add_row(d.detector, str(d.findings), f"{d.seconds:.1f}", d.error or "")
        console.print(table)
        console.print(f"{done.new} new finding(s); {len(done.incidents)} incident(s) open; "
                      f"{done.seconds:.1f} s")  # fmt: skip
    if done.run.errors:
        raise typer.Exit(1)


@app.command()
def incidents(
    as_json: Annotated[bool, typer.Option("--json", help="Print the DESIGN §4 JSON list.")] = False,
) -> None:
    """List incidents, most severe first (run `hemostat detect` to update them)."""
    from hemostat.incidents import as_json as incident_json
    from hemostat.incidents import listing

    with Store(State.home) as store:
        listed = listing(store)
    if as_json:
        console.print_json(json.dumps([incident_json(item) for item in listed]))
        return
    _print_incidents([item.incident for item in listed])


def _print_incidents(found: list[Any]) -> None:
    from hemostat.detect.context import size

    if not found:
        console.print("no incident")
        return
    table = RichTable("id", "severity", "kind", "hosts", "destinations", "start (UTC)",
                      "bytes out", title=f"{len(found)} incident(s)")  # fmt: skip
    table.columns[0].no_wrap = True
    ordered = sorted(found, key=lambda i: -i.score)
    for inc in ordered:
        more = f" +{len(inc.hosts) - 2}" if len(inc.hosts) > 2 else ""
        table.add_row(
            inc.id, f"{inc.severity} {inc.score:.0f}", str(inc.kind),
            ", ".join(inc.hosts[:2]) + more, ", ".join(inc.destinations[:2]),
            f"{inc.start:%Y-%m-%d %H:%M}", size(inc.bytes_out),
        )  # fmt: skip
    console.print(table)
    for inc in ordered:
        console.print(f"[bold]{inc.id}[/] ", end="")
        console.print(inc.summary, markup=False, highlight=False)


@app.command()
def evaluate(
    hosts: Annotated[int, typer.Option(min=40, help="Size of the simulated site.")] = 300,
    days: Annotated[int, typer.Option(min=1, help="Simulated days.")] = 1,
    scenario: Annotated[
        list[str] | None, typer.Option(help="Attack scenario (repeatable). Default: all.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Simulation seed.")] = 1,
    directory: Annotated[
        Path | None, typer.Option("--dir", help="Use this simulation directory instead.")
    ] = None,
    step: Annotated[str, typer.Option(help="Detection step in data time (0 = one pass).")] = "4h",
    labelled: Annotated[
        list[Path] | None,
        typer.Option(help="Score real labelled Zeek logs (label column) instead (repeatable)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Simulate (or take --dir), ingest into a fresh store, detect, and score against the
    truth: per scenario detected or not and how soon, look-alikes raised, false incidents.
    With --labelled: precision and recall per label of real labelled Zeek logs."""
    import shutil

    from hemostat import evaluate as evaluate_mod
    from hemostat.simulate import SCENARIOS, generate

    work = State.home / "evaluate"
    if labelled:
        _evaluate_labelled(labelled, work / "labelled", as_json)
        return
    if directory is None:
        directory = work / f"sim-{hosts}-{days}d-seed{seed}"
        with _progress(as_json) as progress:
            task = progress.add_task("simulate", total=None)
            generate(
                directory, hosts=hosts, days=days, seed=seed, scenarios=scenario or list(SCENARIOS),
                progress=lambda done, total: progress.update(task, completed=done, total=total),
            )  # fmt: skip
    shutil.rmtree(work / "home", ignore_errors=True)
    with _progress(as_json) as progress:
        tasks: dict[str, Any] = {}

        def advance(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = progress.add_task(stage, total=total)
            progress.update(tasks[stage], completed=done)

        every = _duration(step) if step != "0" else None
        result = evaluate_mod.run(directory, work / "home", every, progress=advance)
    if as_json:
        console.print_json(json.dumps(result.as_json()))
        return
    _print_evaluation(result)


def _evaluate_labelled(paths: list[Path], home: Path, as_json: bool) -> None:
    import shutil

    from hemostat import evaluate_labels

    shutil.rmtree(home, ignore_errors=True)
    result = evaluate_labels.run(paths, home)
    if as_json:
        console.print_json(json.dumps(result.as_json()))
        return
    table = RichTable("label", "rows", "flagged", "recall", title=", ".join(map(str, paths)))
    for label in result.labels:
        table.add_row(label.label, f"{label.rows:,}", f"{label.flagged:,}", f"{label.recall:.1%}")
    console.print(table)
    precision = "n/a" if result.precision is None else f"{result.precision:.1%}"
    console.print(f"malicious rows: precision {precision}, recall {result.malicious.recall:.1%}; "
                  f"{result.flagged:,} of {result.rows:,} rows flagged by "
                  f"{result.incidents} incident(s)")  # fmt: skip


def _print_evaluation(result: Any) -> None:
    title = f"{result.hosts} hosts, {result.days:g} day(s): {result.directory}"
    table = RichTable("episode", "kind", "detected", "after", "incident", "score", title=title)
    for e in result.episodes:
        table.add_row(e.id, e.kind, "[green]yes[/]" if e.detected else "[red]NO[/]",
                      _delay(e.delay), ", ".join(e.incidents[:2]),
                      "" if e.score is None else f"{e.score:.0f}")  # fmt: skip
    for e in result.lookalikes:
        if e.detected:
            table.add_row(e.id, f"{e.kind} (benign)", "[red]raised[/]", "",
                          ", ".join(e.incidents[:2]), f"{e.score:.0f}")  # fmt: skip
    console.print(table)
    quiet = sum(1 for e in result.lookalikes if not e.detected)
    console.print(
        f"look-alikes not raised: {quiet}/{len(result.lookalikes)}; false incidents: "
        f"{len(result.false_incidents)} ({result.false_per_day_per_1000:.2f} per day per 1,000 "
        f"hosts); {result.incidents} incident(s); detection {result.detect_seconds:.1f} s "
        f"in {result.steps} step(s)"
    )
    for inc in result.false_incidents[:10]:
        console.print(f"  false: {inc.id} {inc.kind} {inc.score:.0f} {inc.summary}", markup=False)


def _delay(delay: timedelta | None) -> str:
    if delay is None:
        return ""
    minutes = delay.total_seconds() / 60
    return f"{minutes:.0f} min" if minutes < 120 else f"{minutes / 60:.1f} h"


def _when(text: str | None) -> datetime | None:
    """ISO 8601 (naive means UTC) or an age before now such as ``6h`` / ``2d``."""
    if text is None:
        return None
    if re.fullmatch(r"\d+[smhd]", text):
        return datetime.now(UTC) - _duration(text)
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise HemostatError(
            f"bad time {text!r}: use ISO 8601 (2024-03-04T10:00Z) or an age (6h)"
        ) from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _inventory() -> inventory_mod.Inventory:
    path = State.home / "inventory.yaml"
    if path.exists():
        return inventory_mod.load(path)
    err.print("no inventory loaded (hemostat inventory load FILE): RFC 1918 ranges are "
              "internal, local time is UTC")  # fmt: skip
    return inventory_mod.Inventory(site="default")


# ---- inventory ----------------------------------------------------------------------------


@inventory_app.command("load")
def inventory_load(
    file: Annotated[Path, typer.Argument(help="Inventory YAML (DESIGN §5).")],
) -> None:
    """Validate an inventory file and make it the site's inventory (copied into the home)."""
    inv = inventory_mod.load(file)
    State.home.mkdir(parents=True, exist_ok=True)
    (State.home / "inventory.yaml").write_text(file.read_text(encoding="utf-8"), encoding="utf-8")
    table = RichTable("what", "count", title=f"inventory of {inv.site} ({inv.timezone})")
    for name in (
        "hosts",
        "datastores",
        "providers",
        "expected_transfers",
        "continuity",
        "management",
    ):
        table.add_row(name, str(len(getattr(inv, name))))
    console.print(table)
    for ds in inv.datastores:
        console.print(f"  data store [bold]{ds.name}[/] ({ds.category}): "
                  f"{ds.records or '?'} records, {ds.subjects or '?'} people")  # fmt: skip


# ---- store --------------------------------------------------------------------------------


def _duration(text: str) -> timedelta:
    match = re.fullmatch(r"(\d+)\s*([smhdw])", text.strip())
    if not match:
        raise HemostatError(f"bad duration {text!r}: use e.g. 90d, 12h, 30m")
    unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}[match[2]]
    return timedelta(**{unit: int(match[1])})


@store_app.command("export")
def store_export(
    lake: Annotated[Path, typer.Argument(help="Lake directory (hive-partitioned Parquet).")],
    site: Annotated[str | None, typer.Option(help="Site name for the site= partition.")] = None,
) -> None:
    """Write flows, dns and access to LAKE/<table>/site=…/date=YYYY-MM-DD/*.parquet."""
    site = site_of(site)
    with Store(State.home) as store:
        written = store.export(lake, site)
    for table, n in written.items():
        console.print(f"{table}: {n:,} rows → {lake / str(table)}")


@store_app.command("import")
def store_import(
    lake: Annotated[Path, typer.Argument(help="Lake written by `store export`.")],
) -> None:
    """Load a Parquet lake; each Parquet file is imported at most once."""
    if not lake.is_dir():
        raise HemostatError(f"{lake}: no such directory")
    with Store(State.home) as store:
        added = store.import_lake(lake)
    for table, n in added.items():
        console.print(f"{table}: {n:,} rows added")


@store_app.command("prune")
def store_prune(older_than: Annotated[str, typer.Option(help="Age, e.g. 90d.")] = "180d") -> None:
    """Delete telemetry older than the given age (retention)."""
    with Store(State.home) as store:
        deleted = store.prune(_duration(older_than))
    for table, n in deleted.items():
        console.print(f"{table}: {n:,} rows deleted")


# ---- entry point --------------------------------------------------------------------------


def main() -> None:
    try:
        app()
    except HemostatError as exc:
        print(f"error: {exc}", file=sys.stderr)  # noqa: T201  (one plain line, never wrapped)
        sys.exit(1)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except Exception as exc:  # a traceback shown to a user is a bug: say so, briefly
        if os.environ.get("HEMOSTAT_DEBUG"):
            raise
        err.print(f"error: internal error ({type(exc).__name__}: {exc}); "
                  "rerun with HEMOSTAT_DEBUG=1 and report it", markup=False)  # fmt: skip
        sys.exit(70)


# command modules register themselves on ``app`` when imported
from hemostat.cli import contain as _contain_commands  # noqa: E402, F401
from hemostat.cli import lake as _lake_commands  # noqa: E402, F401
from hemostat.cli import leak as _leak_commands  # noqa: E402, F401
from hemostat.cli import rollup as _rollup_commands  # noqa: E402, F401
from hemostat.cli import scope as _scope_commands  # noqa: E402, F401
from hemostat.cli import serve as _serve_commands  # noqa: E402, F401

if __name__ == "__main__":
    main()

"""The ``hemostat`` command: parse, call one library function, print. Errors become one
``error: …`` line and a non-zero exit status, never a traceback."""

from __future__ import annotations

import importlib
import json
import os
import re
import sys
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table as RichTable

from hemostat import __version__
from hemostat import inventory as inventory_mod
from hemostat.errors import HemostatError
from hemostat.store import Store, default_home

app = typer.Typer(
    name="hemostat",
    help="Detect, contain and scope data leaving a hospital network.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
inventory_app = typer.Typer(
    help="The site inventory: networks, data stores, suppliers, continuity."
)
store_app = typer.Typer(help="The store: Parquet lake export/import and retention.")
app.add_typer(inventory_app, name="inventory")
app.add_typer(store_app, name="store")

console = Console()
err = Console(stderr=True)


_DEFAULT_HOME = default_home()


class State:
    home: Path = _DEFAULT_HOME


def _version(value: bool) -> None:
    if value:
        console.print(f"hemostat {__version__}")
        raise typer.Exit


@app.callback()
def _main(
    home: Annotated[
        Path,
        typer.Option(
            help="Directory of the DuckDB file, inventory and lake.", envvar="HEMOSTAT_HOME"
        ),
    ] = _DEFAULT_HOME,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    State.home = home


# ---- demo and simulate --------------------------------------------------------------------


@app.command()
def demo(
    hosts: Annotated[int, typer.Option(min=50, help="Size of the demo site.")] = 300,
    out: Annotated[Path, typer.Option(help="Where the demo logs are written.")] = Path("demo-out"),
    serve: Annotated[bool, typer.Option(help="Then serve the dashboard (not built yet).")] = False,
) -> None:
    """The main job on data it makes itself: write logs, ingest them, and (as they land)
    detect, scope and report. Says plainly which stages are not built yet."""
    from hemostat import demo as demo_mod

    result = demo_mod.run(State.home, out, hosts=hosts, on_stage=lambda t: err.print(f"→ {t}"))
    table = RichTable("table", "rows", title=f"{result.site}: store {State.home}")
    for name in ("flows", "dns", "access"):
        table.add_row(name, f"{getattr(result.counts, name):,}")
    console.print(table)
    console.print(f"logs in {result.out}; bad lines while ingesting: {result.bad_lines}")
    console.print("[yellow]not built yet[/] (no result is shown for these, none is faked):")
    for stage_name in result.not_built:
        console.print(f"  • {stage_name}")
    if serve:
        raise HemostatError("the dashboard (--serve) is not built yet")


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


def _print_reports(reports: list[Any]) -> None:
    table = RichTable(title="ingest", show_lines=False)
    for col in ("file", "format", "flows", "dns", "access", "bad lines", "note"):
        table.add_column(
            col, justify="right" if col in ("flows", "dns", "access", "bad lines") else "left"
        )
    for r in reports:
        rows = {str(k): v for k, v in r.rows.items()}
        note = (
            f"[red]refused: {r.error.message}[/]" if r.error
            else "already ingested" if r.duplicate
            else ", ".join(f"{n} {k}" for k, n in r.skipped.items())
        )  # fmt: skip
        table.add_row(str(r.path), r.format or "-", str(rows.get("flows", 0)),
                      str(rows.get("dns", 0)), str(rows.get("access", 0)),
                      str(r.bad_count), note)  # fmt: skip
    console.print(table)
    for r in reports:
        if r.error:
            print(f"error: {r.error}", file=sys.stderr)  # noqa: T201
        for bad in r.bad[:5]:
            err.print(f"[yellow]skipped[/] {bad}")
        if r.bad_count > 5:
            err.print(f"[yellow]skipped[/] … and {r.bad_count - 5} more bad line(s) in {r.path}")


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

        reports = run(store, paths, fmt=fmt, strict=strict, on_file=advance)
    if as_json:
        console.print_json(json.dumps([_report_json(r) for r in reports]))
    else:
        _print_reports(reports)
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
    site = site or _site_name()
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


def _site_name() -> str:
    path = State.home / "inventory.yaml"
    return inventory_mod.load(path).site if path.exists() else "default"


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


if __name__ == "__main__":
    main()

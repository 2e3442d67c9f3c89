"""``hemostat scope INCIDENT_ID``: what left, how much, whose; the report and the evidence."""

from __future__ import annotations

import json
from contextlib import nullcontext
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table as RichTable

from hemostat.cli.base import State, app, console, err
from hemostat.cli.lake import EngineOption, LakeOption, MasterOption, SiteOption, backend
from hemostat.engine import Engine
from hemostat.errors import ConfigError


@app.command()
def scope(
    incident_id: Annotated[str, typer.Argument(help="Incident id, e.g. INC-1a2b3c4d.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the DESIGN §4 JSON.")] = False,
    report: Annotated[
        Path | None,
        typer.Option(help="Write the report: .html, .pdf or .md (evidence bundle beside it)."),
    ] = None,
    lang: Annotated[
        str | None, typer.Option(help="Report language: fr or en (default: fr for a French site).")
    ] = None,
    engine: EngineOption = Engine.DUCKDB,
    lake: LakeOption = None,
    site_name: SiteOption = None,
    master: MasterOption = "local[*]",
) -> None:
    """Scope an incident: the bytes that left, the hosts and data stores behind them, and per
    category the records and people concerned as low/high bounds with the evidence; with
    --engine spark, from the site's part of the Parquet lake."""
    from hemostat import config
    from hemostat.cli import _inventory
    from hemostat.report import language
    from hemostat.scope import scope as run_scope
    from hemostat.store import Store

    if lang is not None and lang not in ("fr", "en"):
        raise ConfigError(f"--lang {lang!r}: choose fr or en")
    if report and engine is not Engine.DUCKDB:
        raise ConfigError("--report needs --engine duckdb: the evidence bundle is cut from the "
                          "store's own flows and access events, which the lake's are not; "
                          "use --json on Spark")  # fmt: skip
    site = _inventory()
    settings = config.load(State.home)
    with Store(State.home) as store, backend(store, engine, lake, site_name, master) as telemetry:
        with console.status("scoping", spinner="dots") if not as_json else nullcontext():
            result = run_scope(store, site, incident_id, settings, backend=telemetry)
        written = (
            _report(store, result, report, lang or language(site.timezone), settings)
            if report
            else None
        )
    if as_json:
        out = result.as_json()
        if written:
            out["report"] = written
        console.print_json(json.dumps(out))
        return
    _print(result)
    if written:
        console.print(f"report: {written['path']}")
        console.print(
            f"evidence bundle: {written['bundle']} (manifest SHA-256 {written['sha256']})"
        )


def _report(store: Any, result: Any, path: Path, lang: str, settings: Any) -> dict[str, str]:
    from hemostat.detect.runner import load
    from hemostat.report import render, write_bundle

    bundle_path = path.with_name(f"{path.stem}-evidence.zip")
    bundle = write_bundle(store, result, bundle_path)
    found = load(store, result.incident.findings)  # their sentences in the report's language
    render(result, path, lang, bundle=bundle, found=found, settings=settings)
    return {"path": str(path), "bundle": str(bundle_path), "sha256": bundle.manifest_sha256}


def _print(result: Any) -> None:
    from hemostat.detect.context import size

    e = result.egress
    console.print(f"[bold]{result.incident.id}[/] {result.incident.kind}, "
                  f"{result.incident.severity} ({result.incident.score:.0f})")  # fmt: skip
    tops = ", ".join(f"{d.address} ({size(d.bytes)})" for d in e.destinations[:3])
    console.print(f"egress: {size(e.bytes)} in {e.flows:,} flow(s) from "
                  f"{', '.join(h.ip for h in e.hosts) or '-'} to {tops or '-'}")  # fmt: skip
    for hop in result.lineage:
        if hop.followed:
            store = f" [{hop.datastore}]" if hop.datastore else ""
            console.print(f"  lineage hop {hop.depth}: {hop.src}{store} -> {hop.dst} "
                          f"port {hop.port}: {size(hop.bytes)}")  # fmt: skip
    table = RichTable("category", "evidence", "records (low-high)", "people (low-high)",
                      "data stores", title="What left, whose")  # fmt: skip
    for category, c in result.categories.items():
        table.add_row(str(category), str(c.status), _span(c.records), _span(c.subjects),
                      ", ".join(c.datastores) or "-")  # fmt: skip
    console.print(table)
    for c in result.categories.values():
        console.print(f"- {c.statement}", markup=False, highlight=False)
    for r in result.datastores:
        console.print(f"[bold]{r.name}[/] ({r.category}, {r.status})")
        for line in r.evidence:
            console.print(f"  {line}", markup=False, highlight=False)
    if result.unknowns:
        err.print("still unknown:", style="bold")
        for line in result.unknowns:
            err.print(f"  - {line}", markup=False, highlight=False)


def _span(b: Any) -> str:
    return "0" if b.high == 0 else f"{b.low:,} - {b.high:,}"

"""``hemostat lake``: the Parquet lake of the scale-out engine, and the ``--engine`` options
``hemostat detect`` and ``hemostat scope`` take to run on Spark over it (DESIGN §8)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.table import Table as RichTable

from hemostat.cli.base import State, app, console
from hemostat.engine import Engine, telemetry
from hemostat.errors import HemostatError
from hemostat.store import Store

lake_app = typer.Typer(help="The Parquet lake (site=.../date=.../) the Spark engine reads.")
app.add_typer(lake_app, name="lake")

EngineOption = Annotated[
    Engine, typer.Option(help="duckdb: the store's data; spark: the lake (--lake).")
]
LakeOption = Annotated[
    str | None, typer.Option(help="Lake for --engine spark: a directory or s3://bucket/prefix.")
]
SiteOption = Annotated[
    str | None, typer.Option("--site", help="Site of the lake (default: the inventory's site).")
]
MasterOption = Annotated[
    str, typer.Option(help="Spark master: local[*], spark://host:7077, yarn, k8s://...")
]


def site_of(site: str | None) -> str:
    """``--site``, or the inventory's site name."""
    from hemostat import inventory

    if site:
        return site
    path = State.home / "inventory.yaml"
    return inventory.load(path).site if path.exists() else "default"


@lake_app.command("export")
def export(
    out: Annotated[
        str | None, typer.Option(help="A directory or s3://bucket/prefix (default HOME/lake).")
    ] = None,
    site: SiteOption = None,
    since: Annotated[
        str | None, typer.Option(help="Export only the UTC days from this day on (YYYY-MM-DD).")
    ] = None,
) -> None:
    """Write the store's flows, DNS and access events to the lake, one zstd Parquet set per
    table, site and day, sorted by time and host; a day exported again is replaced."""
    target = out or str(State.home / "lake")
    key = site_of(site)
    day = _day(since)
    with Store(State.home, read_only=True) as store:
        written = store.export(target, key, day)
    table = RichTable("table", "rows", title=f"site {key} -> {target}")
    for name, n in written.items():
        table.add_row(str(name), f"{n:,}")
    console.print(table)


@lake_app.command("sites")
def sites(
    lake: Annotated[str | None, typer.Argument(help="Lake (default HOME/lake).")] = None,
) -> None:
    """The sites a lake holds, with their first and last day."""
    from hemostat import lake as lakes

    found = lakes.sites(lakes.location(lake or State.home / "lake"))
    if not found:
        console.print("no site in this lake")
        return
    table = RichTable("site", "days", "first", "last")
    for name, days in found.items():
        table.add_row(name, str(len(days)), days[0], days[-1])
    console.print(table)


def _day(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise HemostatError(f"--since {text!r}: give a day as YYYY-MM-DD") from None


@contextmanager
def backend(
    store: Store, engine: Engine, lake: str | None, site: str | None, master: str
) -> Iterator[Any]:
    """What ``detect``/``scope`` read telemetry from: ``None`` (the store) for DuckDB, else
    Spark over ``site`` of ``lake`` (default HOME/lake; site: the inventory's)."""
    if engine is Engine.SPARK and lake is None:
        lake = str(State.home / "lake")
    where = site_of(site) if engine is Engine.SPARK else None
    with telemetry(engine, store, lake, where, master) as found:
        yield found

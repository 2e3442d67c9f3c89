"""``hemostat leak index`` and ``hemostat leak match``: a keyed-hash index of the site's
data-store exports, and the count of its records and people found in a published dump."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table as RichTable

from hemostat import leak
from hemostat.cli.base import State, app, console, err
from hemostat.leak import secret as secret_mod
from hemostat.schema import Category

leak_app = typer.Typer(
    help="Leak-dump matching: count the site's records and people in a published dump.",
    no_args_is_help=True,
)
app.add_typer(leak_app, name="leak")

ColumnOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--column",
        metavar="KIND=COLUMN",
        help="Say which column holds what (repeatable): KIND is nir, email, last_name, "
        "first_name, full_name, birth_date, staff_number or record_id.",
    ),
]
SecretOpt = Annotated[
    Path | None,
    typer.Option(help="Site secret keying the hashes (default: HOME/secrets/leak.key)."),
]


@leak_app.command("index")
def leak_index(
    datastore: Annotated[str, typer.Option(help="Data store name (as in the inventory).")],
    category: Annotated[Category, typer.Option(help="Category of the data store.")],
    source: Annotated[str, typer.Option(help="Export: FILE.csv|.json, or postgresql://...")],
    query: Annotated[str | None, typer.Option(help="SQL for a postgresql:// source.")] = None,
    column: ColumnOpt = None,
    secret_file: SecretOpt = None,
    out: Annotated[
        Path | None, typer.Option(help="Index directory (default: HOME/leak-index).")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the index summary as JSON.")
    ] = False,
) -> None:
    """Hash every identifier of a data-store export into the leak index.

    Replaces what the index held for that data store. Only keyed hashes are written; the
    secret stays in its own file, outside the index (created on first use)."""
    index_dir = out or State.home / "leak-index"
    secret_path = secret_file or State.home / "secrets" / "leak.key"
    overrides = [leak.parse_override(c) for c in column or ()]
    secret, created = leak.open_secret(secret_path, index_dir, create=True)
    with _rows_progress(as_json, f"index {datastore}") as on_rows:
        summary = leak.build_index(
            source,
            datastore=datastore,
            category=category,
            secret=secret,
            index_dir=index_dir,
            query=query,
            overrides=overrides,
            on_rows=on_rows,
        )
    if created:
        err.print(
            f"created the leak secret {secret_path} (mode 0600): copy it to another "
            "medium and keep it away from the index; without it the index is useless",
            markup=False,
        )
    _warn_loose(secret_path)
    if as_json:
        console.print_json(json.dumps(summary.as_json()))
        return
    console.print(
        f"indexed [bold]{escape(summary.datastore)}[/] ({summary.category}): "
        f"{summary.records:,} records, {summary.subjects:,} people, "
        f"{summary.without_identifier:,} without identifier; {summary.hashes:,} hashes "
        f"in {escape(str(summary.path))}"
    )
    table = RichTable("column", "read as", title="columns")
    for name, field in summary.columns.items():
        table.add_row(escape(name), field)
    console.print(table)


@leak_app.command("match")
def leak_match(
    dumps: Annotated[list[Path], typer.Argument(help="Dump files: CSV, JSON or JSON Lines.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the counts as JSON.")] = False,
    column: ColumnOpt = None,
    secret_file: SecretOpt = None,
    index: Annotated[
        Path | None, typer.Option(help="Index directory (default: HOME/leak-index).")
    ] = None,
) -> None:
    """Count the indexed records and people found in published dumps.

    Per data store and category; a row duplicated in a dump is counted once."""
    index_dir = index or State.home / "leak-index"
    secret_path = secret_file or State.home / "secrets" / "leak.key"
    overrides = [leak.parse_override(c) for c in column or ()]
    secret, _ = leak.open_secret(secret_path, index_dir, create=False)
    with _rows_progress(as_json, "match") as on_rows:
        result = leak.match(
            dumps, index_dir=index_dir, secret=secret, overrides=overrides, on_rows=on_rows
        )
    if as_json:
        console.print_json(json.dumps(result.as_json()))
        return
    _print_match(result)


def _print_match(result: leak.MatchResult) -> None:
    stores = RichTable(
        "data store",
        "category",
        "records found",
        "people found",
        "by",
        title="indexed records and people found in the dumps",
    )
    for s in result.stores:
        stores.add_row(
            escape(s.datastore),
            str(s.category),
            _ratio(s.matched_records, s.records),
            _ratio(s.matched_subjects, s.subjects),
            ", ".join(f"{k} {n:,}" for k, n in s.kinds.items()) or "-",
        )
    console.print(stores)
    dumps = RichTable("dump", "format", "rows", "no identifier", "match nothing", "matched")
    for d in result.dumps:
        dumps.add_row(
            escape(d.path),
            d.format,
            f"{d.rows:,}",
            f"{d.no_identifier:,}",
            f"{d.unmatched:,}",
            f"{d.matched:,}",
        )
    console.print(dumps)
    for c in result.categories:
        if not c.indexed:
            console.print(
                f"{c.category}: no data store of this category is indexed; "
                "the dumps say nothing about it"
            )
        elif c.matched_records == 0:
            console.print(f"{c.category}: no indexed record found in the dumps")


def _ratio(part: int, whole: int) -> str:
    return f"{part:,} / {whole:,} ({part / whole:.1%})" if whole else f"{part:,} / 0"


def _warn_loose(path: Path) -> None:
    if path.exists() and secret_mod.loose(path):
        err.print(f"warning: {path} is readable by other users; chmod 600 it", markup=False)


@contextmanager
def _rows_progress(quiet: bool, label: str) -> Iterator[Callable[[int], None]]:
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TextColumn("{task.completed:,} rows"),
    )
    with Progress(
        *columns,
        TimeElapsedColumn(),
        console=err,
        disable=quiet or not err.is_terminal,
        transient=True,
    ) as p:
        task = p.add_task(label, total=None)
        yield lambda rows: p.update(task, completed=rows)

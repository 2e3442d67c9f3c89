"""The ``hemostat`` application object, its global options and the shared consoles: every
command module under ``cli/`` registers on ``app``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from hemostat import __version__
from hemostat.store import default_home

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

"""``hemostat store rollup``: the rollups a detection pass writes (egress, ``pairs``), filled
over the stretches of stored flows no pass rolled up (``scope/backfill.py``)."""

from __future__ import annotations

from typing import Annotated

import typer

from hemostat.cli.base import State, console, store_app
from hemostat.errors import HemostatError, StoreError
from hemostat.scope.backfill import Filled


@store_app.command("rollup")
def store_rollup(
    since: Annotated[
        str | None,
        typer.Option(help="Only flows from (ISO 8601 UTC, or an age like 30d). Default: all."),
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Only flows before (ISO 8601 or age). Default: all.")
    ] = None,
) -> None:
    """Fill the egress and pairs rollups over the stored flows no detection pass rolled up
    (a store detected before they existed: the dashboard shows "no rollup" there). Running it
    again fills nothing. Internal networks are the inventory's, as detection takes them."""
    from hemostat.cli import _inventory, _progress, _when
    from hemostat.scope.backfill import fill
    from hemostat.store import DB_NAME, Store

    lo, hi = _when(since), _when(until)
    if lo is not None and hi is not None and lo >= hi:
        raise HemostatError(f"--since {since} is not before --until {until}: nothing to fill")
    if not (State.home / DB_NAME).exists():
        raise StoreError(f"no store at {State.home / DB_NAME}; ingest something first "
                         "(hemostat ingest), or give --home")  # fmt: skip
    internal = _inventory().internal
    with Store(State.home) as store, _progress(False) as progress:
        task = progress.add_task("rollup (hours)", total=None)

        def advance(hours: int, total: int) -> None:
            progress.update(task, completed=hours, total=total)

        done = fill(store, internal, lo, hi, advance)
    _print(done, since is not None or until is not None)


def _print(done: Filled, restricted: bool) -> None:
    if not done.periods:
        where = " in that period" if restricted else ""
        console.print(f"nothing to fill: every stored flow{where} is rolled up")
        return
    console.print("rolled up (flow starts, UTC):")
    for start, end in done.periods:
        console.print(f"  {start:%Y-%m-%d %H:%M:%S} -> {end:%Y-%m-%d %H:%M:%S}")
    console.print(f"filled {len(done.periods)} period(s), {done.hours} hour(s) of egress and "
                  f"pairs rollups in {done.seconds:.1f} s")  # fmt: skip

"""Engines: where the detectors' and scoping's Ibis expressions run (DESIGN §8).

``duckdb`` (default) reads the store's own tables; ``spark`` reads one site of the Parquet
lake (:mod:`hemostat.lake`) through PySpark, locally or on a cluster. The expressions are
the same; only the backend handed to ``detect.runner.examine`` and ``scope.scope``
changes. Findings, incidents and the ``pairs`` rollup are written to the site's store in
both cases.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from hemostat.errors import HemostatError
from hemostat.store import Store


class EngineError(HemostatError):
    """The engine cannot start (no Java, no PySpark) or cannot read the lake."""


class Engine(enum.StrEnum):
    DUCKDB = "duckdb"
    SPARK = "spark"


@contextmanager
def telemetry(
    engine: Engine, store: Store, lake: str | None = None, site: str | None = None,
    master: str = "local[*]",
) -> Iterator[Any]:  # fmt: skip
    """The Ibis backend the telemetry tables (``flows``, ``dns``, ``access``) are read from:
    ``None`` for the store itself (what ``examine`` and ``scope`` default to), or ``site``
    of ``lake`` on a Spark session that ends with the block (unless the process already had
    one running, e.g. a notebook's: that one is used and left running)."""
    if engine is Engine.DUCKDB:
        if lake is not None:
            raise EngineError("--lake is for --engine spark; DuckDB reads the store")
        yield None
        return
    if not lake or not site:
        raise EngineError("--engine spark needs --lake URL (and the site, from --site or the "
                          "inventory)")  # fmt: skip
    from hemostat.lake import location

    try:
        from hemostat.engine import spark
    except ImportError as exc:
        raise EngineError("PySpark is not installed: pip install 'hemostat[spark]'") from exc

    where = location(lake)
    spark.parts(where, site)  # a site the lake lacks is said before a JVM starts
    owned = not spark.running()
    session = spark.session(master)
    try:
        yield spark.connect(session, where, site)
    finally:
        if owned:
            session.stop()

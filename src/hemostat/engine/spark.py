"""PySpark: a quiet session, one site of the lake as the ``flows``/``dns``/``access`` views,
and an Ibis backend that runs an expression in stages.

Spark inlines every common table expression of a query, so a detector that uses one
intermediate table in four places makes the optimizer work on (and the cluster compute) four
copies of it, nested: planning alone took minutes. :class:`Backend` therefore runs the common
table expressions Ibis finds first, each as its own small query whose result is checkpointed
(and broadcast to joins when small), then the final query over them. Same SQL, same result;
only the order of work changes. Results come back as Arrow (no pandas), timestamps in UTC.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import sqlglot as sg
import sqlglot.expressions as sge

from hemostat.engine import EngineError
from hemostat.lake import Location, site_dir, sites
from hemostat.schema import Table, arrow_schema

#: an intermediate result with at most this many rows is broadcast to the joins using it
BROADCAST_ROWS = 200_000
#: settings every session gets: UTC, no UI, no progress bars, plain-text logs
CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.log.structuredLogging.enabled": "false",
    "spark.sql.constraintPropagation.enabled": "false",  # costly on long OR filters
    "spark.sql.execution.arrow.pyspark.enabled": "true",
}
LOCAL = {"spark.driver.host": "127.0.0.1", "spark.driver.bindAddress": "127.0.0.1"}
#: the driver's log4j: nothing below FATAL (failures reach Python as exceptions); the
#: gateway's own logger set too, or Spark takes PySpark for a shell and prints its log level
LOG4J = (
    "rootLogger.level = fatal\nrootLogger.appenderRef.stderr.ref = console\n"
    "appender.console.type = Console\nappender.console.name = console\n"
    "appender.console.target = SYSTEM_ERR\nappender.console.layout.type = PatternLayout\n"
    "appender.console.layout.pattern = spark %p %c{1}: %m%n\n"
    "logger.gateway.name = org.apache.spark.api.python.PythonGatewayServer\n"
    "logger.gateway.level = fatal\n"
)


@contextmanager
def quiet() -> Iterator[None]:
    """PySpark warns that it 'does not yet fully support pandas >= 3' on import and on every
    conversion; hemostat converts through Arrow only, so the warning says nothing here."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "PySpark does not yet fully support", FutureWarning)
        yield


def session(master: str = "local[*]", conf: Mapping[str, str] | None = None) -> Any:
    """A Spark session for ``master`` (``local[N]``, ``spark://host:7077``, ``yarn``...)."""
    if not (os.environ.get("JAVA_HOME") or shutil.which("java")):
        raise EngineError("Spark needs Java 17: apt-get install openjdk-17-jre-headless "
                          "(or set JAVA_HOME)")  # fmt: skip
    try:
        with quiet():
            from pyspark.sql import SparkSession
    except ImportError as exc:
        raise EngineError("PySpark is not installed: pip install 'hemostat[spark]'") from exc
    options = {**CONF, **(LOCAL if master.startswith("local") else {}), **(conf or {})}
    if master.startswith("local"):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # never look up the network
    log4j = Path(tempfile.gettempdir()) / "hemostat-spark-log4j2.properties"
    log4j.write_text(LOG4J, encoding="utf-8")
    java = options.get("spark.driver.extraJavaOptions", "")  # the caller's, kept
    options["spark.driver.extraJavaOptions"] = f"{java} -Dlog4j.configurationFile=file:{log4j}"
    builder = SparkSession.builder.master(master).appName("hemostat")
    for key, value in options.items():
        builder = builder.config(key, value)
    try:
        with quiet():
            spark = builder.getOrCreate()
    except Exception as exc:  # the JVM did not start: say why in one line
        raise EngineError(
            f"cannot start Spark ({master}): {str(exc).splitlines()[0]}; it "
            "needs Java 17 or later (openjdk-17-jre-headless)"
        ) from exc
    spark.sparkContext.setLogLevel("OFF")  # every failure reaches Python as an exception
    return spark


def running() -> bool:
    """Whether this process already has a Spark context (``session`` would return it)."""
    try:
        with quiet():
            from pyspark import SparkContext
    except ImportError:
        return False
    return SparkContext._active_spark_context is not None


def connect(spark: Any, lake: Location, site: str) -> Backend:
    """An Ibis backend whose ``flows``, ``dns`` and ``access`` are ``site`` of ``lake``, in a
    session of its own (its views do not meet another site's; the cluster is shared)."""
    found = parts(lake, site)
    spark = spark.newSession()
    for table, part in found.items():
        _view(spark, lake, table, part)
    with quiet():
        return Backend().connect(spark)  # type: ignore[no-any-return]


def parts(lake: Location, site: str) -> dict[Table, str | None]:
    """Per table, the partition directory of ``site`` in ``lake`` (``None`` where it has
    none); an error naming the sites the lake holds if it has nothing of ``site``."""
    part = site_dir(site)
    fs, root = lake.filesystem()
    try:
        found = {t: fs.get_file_info(f"{root}/{t}/{part}").type == pafs.FileType.Directory
                 for t in Table}  # fmt: skip
    except OSError as exc:
        raise EngineError(f"cannot read the lake {lake.url}: {exc}") from exc
    if not any(found.values()):
        known = ", ".join(sites(lake)) or "none"
        raise EngineError(f"no site {site!r} in the lake {lake.url} (sites: {known}); "
                          "give --site, or export it with hemostat lake export")  # fmt: skip
    return {t: part if here else None for t, here in found.items()}


def _view(spark: Any, lake: Location, table: Table, part: str | None) -> None:
    """The canonical columns of ``table`` in the site directory ``part`` (empty if none)."""
    schema = arrow_schema(table)
    with quiet():
        if part is None:
            df = spark.createDataFrame(schema.empty_table())
        else:
            base = lake.table(table)
            df = spark.read.option("basePath", base).parquet(f"{base}/{part}")
            have = set(df.columns)
            empty = spark.createDataFrame(schema.empty_table()).schema
            from pyspark.sql import functions as F

            df = df.select(*(
                F.col(f.name) if f.name in have else F.lit(None).cast(f.dataType).alias(f.name)
                for f in empty.fields
            ))  # fmt: skip
    df.createOrReplaceTempView(str(table))


def _backend_class() -> type:
    with quiet():
        import ibis
        from ibis.backends.pyspark import Backend as PySparkBackend

        _ = ibis.pyspark  # loads the backend's entry point, which declares its options
    return PySparkBackend  # type: ignore[no-any-return]


class Backend(_backend_class()):  # type: ignore[misc]
    """Ibis' PySpark backend, executing in stages (module docstring), results as Arrow."""

    def to_pyarrow(self, expr: Any, /, *, params: Any = None, limit: Any = None,
                   **kwargs: Any) -> pa.Table:  # fmt: skip
        table = expr.as_table()
        with quiet():
            self._run_pre_execute_hooks(table)
            query = self.compiler.to_sqlglot(table, limit=limit, params=params)
            with _staged(self._session, query, self.dialect) as df:
                result = df.toArrow()
        typed = _typed(result, table.schema().to_pyarrow())
        # Ibis' own conversion would make the UTC timestamps naive again: tables skip it
        return typed if expr is table else expr.__pyarrow_result__(typed)

    def _register_in_memory_table(self, op: Any) -> None:
        with quiet():
            frame = self._session.createDataFrame(op.data.to_pyarrow(op.schema))
        frame.createOrReplaceTempView(op.name)


@contextmanager
def _staged(spark: Any, query: sge.Select, dialect: Any) -> Iterator[Any]:
    """The final DataFrame of ``query``, its common table expressions checkpointed first."""
    ctes = query.args.get("with_")
    names: dict[str, str] = {}
    frames: list[Any] = []
    prefix = f"hemostat_{uuid.uuid4().hex[:12]}_"
    try:
        for cte in ctes.expressions if ctes else ():
            df = spark.sql(_renamed(cte.this, names).sql(dialect=dialect))
            df = df.localCheckpoint(eager=True)
            if df.count() <= BROADCAST_ROWS:
                df = df.hint("broadcast")
            names[cte.alias] = prefix + cte.alias
            df.createOrReplaceTempView(names[cte.alias])
            frames.append(df)
        final = query.copy()
        final.set("with_", None)
        yield spark.sql(_renamed(final, names).sql(dialect=dialect))
    finally:
        for name in names.values():
            spark.catalog.dropTempView(name)
        for df in frames:
            df.unpersist()


def _renamed(node: sge.Expression, names: dict[str, str]) -> sge.Expression:
    """``node`` reading the checkpointed views instead of the CTEs they replace."""

    def swap(n: sge.Expression) -> sge.Expression:
        if isinstance(n, sge.Table) and not n.args.get("db") and n.name in names:
            alias = n.args.get("alias") or sge.TableAlias(this=sg.to_identifier(n.name))
            return sge.Table(this=sg.to_identifier(names[n.name]), alias=alias)
        if isinstance(n, sge.Identifier) and isinstance(n.parent, sge.From) and n.name in names:
            return sg.to_identifier(names[n.name])  # ``IN (SELECT * FROM t23)``
        return n

    return node.transform(swap)


def _typed(result: pa.Table, schema: pa.Schema) -> pa.Table:
    """``result`` in the expression's types, timestamps as UTC instants (Spark's session
    time zone is UTC)."""
    fields = [
        pa.field(f.name, pa.timestamp("us", "UTC"), f.nullable)
        if pa.types.is_timestamp(f.type) else f
        for f in schema
    ]  # fmt: skip
    columns = [_column(result.column(i), field.type) for i, field in enumerate(fields)]
    return pa.Table.from_arrays(columns, schema=pa.schema(fields))


def _column(column: pa.ChunkedArray, target: pa.DataType) -> pa.ChunkedArray:
    if pa.types.is_timestamp(column.type) and column.type.tz is None:
        column = column.cast(pa.timestamp("us")).cast(pa.timestamp("us", "UTC"))
    return column if column.type == target else column.cast(target)

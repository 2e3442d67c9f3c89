"""One Spark session for the whole test session: ``local[2]``, no UI, 2 shuffle partitions,
quiet, the JIT kept light; skipped (not failed) where PySpark or Java 17 is missing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

#: 2 shuffle partitions (the tie-breaks are tested across partitions); C1 only: the JIT
#: compiling Spark's generated code was half the CPU of these short-lived runs
CONF = {
    "spark.sql.shuffle.partitions": "2",
    "spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1 -XX:ReservedCodeCacheSize=256m",
}


@pytest.fixture(scope="session")
def spark_session() -> Iterator[Any]:
    from hemostat.engine import EngineError

    try:
        from hemostat.engine import spark
    except ImportError:
        pytest.skip("PySpark is not installed (pip install 'hemostat[spark]')")
    try:
        session = spark.session("local[2]", CONF)
    except EngineError as exc:
        pytest.skip(str(exc))
    yield session
    session.stop()


#: py4j leaves its gateway sockets (loopback, to the JVM) for the garbage collector to close;
#: the ResourceWarning that raises then lands in whichever Spark test runs at that moment
PY4J_SOCKETS = pytest.mark.filterwarnings(
    "ignore:Exception ignored in. <socket.socket:pytest.PytestUnraisableExceptionWarning"
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = str(__file__).rsplit("/", 1)[0]
    for item in items:
        if str(item.path).startswith(here):
            item.add_marker(PY4J_SOCKETS)

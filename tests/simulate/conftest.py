"""One small simulation shared by the simulator's tests, read back from its files with DuckDB
(never from the generator's arrays)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from hemostat.simulate import SCENARIOS, Summary, generate
from hemostat.simulate.writer import CONN_FIELDS, CONN_TYPES, DNS_FIELDS, DNS_TYPES

_ZEEK_TYPES = {"time": "DOUBLE", "interval": "DOUBLE", "count": "UBIGINT", "port": "INTEGER"}


def zeek_view(con: duckdb.DuckDBPyConnection, name: str, files: str, kind: str) -> None:
    """A view over every hourly Zeek TSV file of one kind, typed from the Zeek types."""
    fields, types = (CONN_FIELDS, CONN_TYPES) if kind == "conn" else (DNS_FIELDS, DNS_TYPES)
    columns = ", ".join(
        f"'{f}': '{_ZEEK_TYPES.get(t, 'VARCHAR')}'" for f, t in zip(fields, types, strict=True)
    )
    con.execute(
        f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM read_csv('{files}', delim='\t', "
        f"header=false, comment='#', quote='', escape='', nullstr='-', auto_detect=false, "
        f"columns={{{columns}}})"
    )


def read_back(out: Path) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with views ``conn``, ``dns`` and ``access`` over ``out``."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    zeek_view(con, "conn", str(out / "conn.*.log"), "conn")
    zeek_view(con, "dns", str(out / "dns.*.log"), "dns")
    con.execute(
        f"CREATE VIEW access AS SELECT * FROM read_json('{out / 'access.jsonl'}', "
        "format='newline_delimited')"
    )
    return con


def truth(out: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((out / "truth.json").read_text(encoding="utf-8"))
    return document


@pytest.fixture(scope="session")
def sim(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Summary]:
    out = tmp_path_factory.mktemp("sim")
    return out, generate(out, hosts=100, days=1, scenarios=list(SCENARIOS), seed=7)


@pytest.fixture(scope="session")
def logs(sim: tuple[Path, Summary]) -> Iterator[duckdb.DuckDBPyConnection]:
    con = read_back(sim[0])
    yield con
    con.close()

"""Truth against logs: what every test and property of the simulator asserts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import duckdb


def epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def _list(values: list[str]) -> str:
    return ", ".join(f"'{v}'" for v in values)


def logged(con: duckdb.DuckDBPyConnection, episode: dict[str, Any]) -> tuple[int, int]:
    """(orig_bytes, rows) the written logs hold for ``episode``: its hosts to its
    destinations inside its window; for a DNS tunnel, its hosts' lookups under its domain."""
    hosts = _list(episode["hosts"])
    if episode["kind"] == "dns_tunnel":
        (domain,) = episode["destinations"]
        where = (
            f'uid IN (SELECT uid FROM dns WHERE "id.orig_h" IN ({hosts}) '
            f"AND query LIKE '%.{domain}') AND \"id.orig_h\" IN ({hosts})"
        )
    else:
        lo, hi = epoch(episode["start"]) - 1e-6, epoch(episode["end"]) + 1e-6
        where = (
            f'"id.orig_h" IN ({hosts}) AND "id.resp_h" IN '
            f"({_list(episode['destinations'])}) AND ts BETWEEN {lo} AND {hi}"
        )
    row = con.execute(f"SELECT coalesce(sum(orig_bytes), 0), count(*) FROM conn WHERE {where}")
    total, rows = row.fetchone() or (0, 0)
    return int(total), int(rows)


def disagreements(con: duckdb.DuckDBPyConnection, document: dict[str, Any]) -> list[str]:
    """Every malicious episode whose bytes or rows in the logs differ from the truth."""
    out = []
    for episode in document["episodes"]:
        total, rows = logged(con, episode)
        if (total, rows) != (episode["bytes_out"], episode["rows"]):
            out.append(
                f"{episode['id']}: logs {total} B/{rows} rows, truth "
                f"{episode['bytes_out']} B/{episode['rows']} rows"
            )
    return out

"""Leak-dump matching: when stolen data is published, count which of the site's records and
people are in it, without hemostat ever storing a clear identifier (docs/leak.md).

``build_index`` hashes the identifiers of a data-store export (CSV/JSON file or PostgreSQL
query) with a site secret kept apart; ``match`` normalises and hashes a dump the same way and
counts matched records and people per data store and category.
"""

from __future__ import annotations

from hemostat.leak.columns import ColumnMap, Field, parse_override
from hemostat.leak.errors import LeakError
from hemostat.leak.identify import Identity, IdKind, identify
from hemostat.leak.index import StoreIndex, build_index, load_index
from hemostat.leak.match import CategoryMatch, DumpStats, MatchResult, StoreMatch, match
from hemostat.leak.secret import create_secret, fingerprint, load_secret, open_secret

__all__ = [
    "CategoryMatch",
    "ColumnMap",
    "DumpStats",
    "Field",
    "IdKind",
    "Identity",
    "LeakError",
    "MatchResult",
    "StoreIndex",
    "StoreMatch",
    "build_index",
    "create_secret",
    "fingerprint",
    "identify",
    "load_index",
    "load_secret",
    "match",
    "open_secret",
    "parse_override",
]

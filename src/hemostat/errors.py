"""The errors hemostat raises, one tree; only the CLI and the HTTP API turn them into output.

HemostatError
 ├── ConfigError        settings or inventory that cannot be used
 ├── IngestError        one input file (and line) that cannot be read
 ├── StoreError         the DuckDB file or the Parquet lake
 └── ContainmentError   nftables plans that cannot be applied or released
"""

from __future__ import annotations

from pathlib import Path


class HemostatError(Exception):
    """Base of every error hemostat raises on purpose."""


class ConfigError(HemostatError):
    """A setting or the site inventory is missing or invalid."""


class StoreError(HemostatError):
    """The store cannot be opened, written or exported."""


class ContainmentError(HemostatError):
    """A containment action cannot be planned, applied or released."""


class IngestError(HemostatError):
    """An input that cannot be read; renders as ``conn.log:118: bad timestamp '17x'``."""

    def __init__(self, path: Path | str, line: int | None, message: str) -> None:
        self.path = Path(path)
        self.line = line
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else str(self.path)
        return f"{where}: {self.message}"

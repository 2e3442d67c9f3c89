"""The hemostat agent: collectors, spool, shipper, command executor (no DuckDB, no web stack).

httpx's package imports its command-line tool when it can, which pulls in rich, click and
pygments (about 10 MB and 60 ms the agent never uses): unless httpx is already loaded, its
``_main`` module is marked missing, so httpx falls back to a stub ``httpx.main``.
"""

from __future__ import annotations

import sys

if "httpx" not in sys.modules:
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]

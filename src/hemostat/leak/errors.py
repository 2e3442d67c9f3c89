"""The one error of leak-dump matching: an export, dump, index or secret that cannot be used.

HemostatError
 └── LeakError   names the file (and line), the column or the URL, and what to do
"""

from __future__ import annotations

from hemostat.errors import HemostatError


class LeakError(HemostatError):
    """An export, a dump, the index or the site secret cannot be used."""

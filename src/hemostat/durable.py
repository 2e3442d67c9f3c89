"""Files that survive a crash: written in full and fsync'ed, replaced atomically (a reader
sees the old file or the new one, never half of it), appended durably, and the directory
fsync'ed so that a rename is on disk too.

Standard library only: the agent, the collector and containment all use it.
"""

from __future__ import annotations

import os
from pathlib import Path


def sync_dir(path: Path) -> None:
    """Make the entries of directory ``path`` (a rename, a new file) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_synced(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Create or truncate ``path`` with permissions ``mode``, write all of ``data``, fsync."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def replace(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Replace ``path`` with ``data`` atomically and durably: a temporary file beside it,
    written and fsync'ed, renamed over it, the directory fsync'ed. ``OSError`` on failure,
    with the temporary file removed and ``path`` as it was."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write_synced(tmp, data, mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    sync_dir(path.parent)


def append(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Append ``data`` to ``path`` (created with ``mode``) and fsync before returning."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)

"""A throwaway PostgreSQL cluster for tests: initdb in a temporary directory, listening on a
unix socket only (run as the `postgres` user when the tests run as root), stopped and removed
afterwards. The test is skipped when the server binaries or that user are missing."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


def _bindir() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), reverse=True)
    which = shutil.which("initdb")
    initdb = found[0] if found else Path(which) if which else None
    return initdb.parent if initdb and (initdb.parent / "pg_ctl").exists() else None


@contextlib.contextmanager
def cluster(prefix: str, options: str = "") -> Iterator[tuple[str, Path]]:
    """``(postgresql://postgres@/postgres?host=DIR, server log)``; ``options`` are more
    ``-c name=value`` server settings."""
    bindir = _bindir()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    as_user: list[str] = []
    root = Path(tempfile.mkdtemp(prefix=prefix))  # short: a socket path has 107 bytes
    if os.geteuid() == 0:  # the server refuses to run as root
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(root)
            pytest.skip("running as root and there is no `postgres` user to run the server")
        shutil.chown(root, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data, log, pg_ctl = root / "data", root / "log", str(bindir / "pg_ctl")

    def run(*argv: str) -> None:
        subprocess.run([*as_user, *argv], check=True, capture_output=True, timeout=120)

    try:
        run(
            str(bindir / "initdb"),
            *f"-D {data} -U postgres -A trust -E UTF8 --locale=C --no-sync".split(),
        )
        settings = f"-c listen_addresses='' -c unix_socket_directories='{root}' -F {options}"
        run(pg_ctl, *f"-D {data} -l {log} -w -t 60 start".split(), "-o", settings)
        yield f"postgresql://postgres@/postgres?host={root}", log
    finally:
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True, timeout=60)  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)

"""``hemostat store rollup`` on the command line: on a small simulated hospital detected in two
passes, with its rollups dropped, the command writes back the rows the passes wrote (with the
inventory's internal networks), in one run or in two (--until, then --since), and a further run
fills nothing; a missing store or a bad date is one ``error:`` line."""

from __future__ import annotations

import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from hemostat import config, inventory
from hemostat.detect import Window
from hemostat.detect.runner import examine, pending
from hemostat.ingest import ingest
from hemostat.simulate import generate
from hemostat.store import DB_NAME, Store

ROLLUPS = ("pairs", "egress_hours", "egress_minutes", "egress_sources", "egress_targets")
HOUR = timedelta(hours=1)
Rows = dict[str, list[tuple[Any, ...]]]


def hemostat(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hemostat.cli", "--home", str(home), "store", "rollup", *args],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip


def rows(home: Path) -> Rows:
    with Store(home) as store:
        return {t: [tuple(r) for r in store.con.execute(f"SELECT * FROM {t} ORDER BY ALL")
                    .fetchall()] for t in ROLLUPS}  # fmt: skip


def drop_rollups(home: Path) -> None:
    with Store(home) as store:
        for table in (*ROLLUPS, "egress_rolls"):
            store.con.execute(f"DELETE FROM {table}")


@pytest.fixture(scope="module")
def detected(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Rows, datetime, datetime]:
    """A 50-host day, detected in two passes (split inside an hour), with an inventory whose
    only internal network is 10.0.0.0/8 (the simulated DMZ, 172.16.1.0/24, is then outside):
    the home, the rollups the passes wrote, the first and last flow start."""
    work = tmp_path_factory.mktemp("rollup")
    generate(work / "sim", hosts=50, days=1, seed=5, scenarios=("c2_beacon",))
    text = (work / "sim" / "inventory.yaml").read_text(encoding="utf-8")
    text = text.replace("internal: [10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16]",
                        "internal: [10.0.0.0/8]")  # fmt: skip
    home = work / "home"
    home.mkdir()
    (home / "inventory.yaml").write_text(text, encoding="utf-8")
    site = inventory.load(home / "inventory.yaml")
    assert site.internal == ["10.0.0.0/8"]
    with Store(home) as store:
        ingest(store, [work / "sim"])
        window = pending(store, None, None)
        assert window is not None
        middle = window.start + timedelta(hours=9, minutes=30)
        for part in (Window(window.start, middle), Window(middle, window.end)):
            examine(store, site, config.Settings(), part)
        first, last = store.con.execute("SELECT min(ts), max(ts) FROM flows").fetchall()[0]
    written = rows(home)
    assert all(written[t] for t in ROLLUPS)
    dmz = [r for r in written["egress_hours"] if r[2].startswith("172.16.")]
    assert dmz, "the DMZ counts as outside with this inventory"
    return home, written, first.astimezone(UTC), last.astimezone(UTC)


@pytest.fixture
def dropped(detected: tuple[Path, Rows, datetime, datetime], tmp_path: Path) -> Path:
    """A copy of the detected home without any rollup row."""
    home = tmp_path / "home"
    shutil.copytree(detected[0], home)
    drop_rollups(home)
    assert not any(rows(home).values())
    return home


def _hours(first: datetime, last: datetime) -> int:
    start = first.replace(minute=0, second=0, microsecond=0)
    end = last.replace(minute=0, second=0, microsecond=0) + HOUR
    return (end - start) // HOUR


@pytest.mark.slow
def test_rollup_writes_back_what_detection_wrote_then_fills_nothing(
    detected: tuple[Path, Rows, datetime, datetime], dropped: Path
) -> None:
    _, written, first, last = detected
    done = hemostat(dropped)
    assert done.returncode == 0, done.stderr
    assert f"{first:%Y-%m-%d %H:%M:%S} -> " in done.stdout
    assert f"filled 1 period(s), {_hours(first, last)} hour(s)" in done.stdout
    assert rows(dropped) == written
    again = hemostat(dropped)
    assert again.returncode == 0, again.stderr
    assert "nothing to fill: every stored flow is rolled up" in again.stdout
    assert rows(dropped) == written


@pytest.mark.slow
def test_until_then_since_fill_the_two_parts(
    detected: tuple[Path, Rows, datetime, datetime], dropped: Path
) -> None:
    _, written, first, last = detected
    cut = first.replace(minute=0, second=0, microsecond=0) + 7 * HOUR
    before = hemostat(dropped, "--until", cut.isoformat())
    assert before.returncode == 0, before.stderr
    assert "filled 1 period(s), 7 hour(s)" in before.stdout
    part = rows(dropped)
    for table in ROLLUPS:  # each one's first column is its hour (or minute)
        assert part[table] == [r for r in written[table] if r[0] < cut], table
    after = hemostat(dropped, "--since", cut.isoformat())
    assert after.returncode == 0, after.stderr
    assert f"filled 1 period(s), {_hours(first, last) - 7} hour(s)" in after.stdout
    assert rows(dropped) == written
    assert "nothing to fill" in hemostat(dropped).stdout
    assert "nothing to fill: every stored flow in that period" in hemostat(
        dropped, "--until", cut.isoformat()).stdout  # fmt: skip


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "error: no store at "),
        (("--since", "yesterday"), "error: bad time 'yesterday': use ISO 8601"),
        (("--since", "2026-11-20", "--until", "2026-11-19"), "error: --since 2026-11-20 is not "
                                                            "before --until 2026-11-19"),
    ],
)  # fmt: skip
def test_errors_are_one_line(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    done = hemostat(tmp_path / "home", *args)
    assert done.returncode == 1
    assert done.stderr.startswith(message)
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert not (tmp_path / "home" / DB_NAME).exists()

"""Following logs: growth and partial lines, rename rotation (with a writer still on the old
file), copytruncate, a file that disappears and comes back, restarts from a saved position
(also when the file was rotated meanwhile), Zeek headers repeated in every chunk, and
PostgreSQL records never cut in two."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hemostat.agent import tail
from hemostat.agent.tail import Chunk, Follower, Tailer, TailSpec
from hemostat.errors import ConfigError
from hemostat.ingest import READERS


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _lines(chunks: list[Chunk]) -> list[str]:
    return [line for c in chunks for line in c.lines]


def _append(path: Path, text: str) -> None:
    with path.open("a") as fh:
        fh.write(text)


OPEN: list[Follower | Tailer] = []


@pytest.fixture(autouse=True)
def _close() -> Iterator[None]:
    yield
    while OPEN:
        OPEN.pop().close()


def _follower(path: Path, fmt: str = "suricata_eve") -> tuple[Follower, Clock]:
    clock = Clock()
    OPEN.append(f := Follower(TailSpec(fmt, path), clock=clock))
    return f, clock


def _tailer(positions: dict[str, Any] | None = None) -> Tailer:
    OPEN.append(t := Tailer(positions))
    return t


def test_growth_and_a_partial_last_line(tmp_path: Path) -> None:
    log = tmp_path / "eve.json"
    log.write_text("a\nb\npar")
    f, _ = _follower(log)
    chunks = f.poll()
    assert _lines(chunks) == ["a", "b"] and chunks[0].first_line == 1
    assert chunks[0].path == str(log) and chunks[0].format == "suricata_eve"
    assert f.poll() == []  # the partial line waits for its end
    _append(log, "tial\r\nc\n")
    chunks = f.poll()
    assert _lines(chunks) == ["partial", "c"] and chunks[0].first_line == 3


def test_rename_rotation_reads_the_old_file_to_its_end(tmp_path: Path) -> None:
    log = tmp_path / "eve.json"
    log.write_text("1\n2\n")
    f, clock = _follower(log)
    assert _lines(f.poll()) == ["1", "2"]
    _append(log, "3\n")
    log.rename(tmp_path / "eve.json.1")
    log.write_text("new-1\n")
    assert _lines(f.poll()) == ["3", "new-1"]  # old file first
    _append(tmp_path / "eve.json.1", "4\n")  # a writer that has not reopened yet
    _append(log, "new-2\n")
    assert _lines(f.poll()) == ["4", "new-2"]
    clock.now += tail.GRACE
    _append(tmp_path / "eve.json.1", "5-without-end")
    assert _lines(f.poll()) == ["5-without-end"]  # closed: its last words are shipped
    _append(tmp_path / "eve.json.1", "6\n")
    assert f.poll() == []


def test_copytruncate_starts_again_from_the_top(tmp_path: Path) -> None:
    log = tmp_path / "eve.json"
    log.write_text("1\n2\n3\n")
    f, _ = _follower(log)
    f.poll()
    ino = log.stat().st_ino
    with log.open("r+") as fh:
        fh.truncate(0)
    _append(log, "x\n")
    assert log.stat().st_ino == ino
    chunks = f.poll()
    assert _lines(chunks) == ["x"] and chunks[0].first_line == 1


def test_a_file_that_disappears_and_comes_back(tmp_path: Path) -> None:
    log = tmp_path / "eve.json"
    log.write_text("1\n")
    f, clock = _follower(log)
    f.poll()
    _append(log, "2\n")
    log.unlink()
    assert _lines(f.poll()) == ["2"]  # the open handle is read to its end
    clock.now += tail.GRACE
    assert f.poll() == [] and f.position() is None
    log.write_text("again\n")
    assert _lines(f.poll()) == ["again"]


def test_restart_resumes_at_the_saved_position(tmp_path: Path) -> None:
    log = tmp_path / "eve.json"
    log.write_text("1\n2\n")
    t = _tailer()
    t.add(TailSpec("suricata_eve", log))
    t.poll()
    saved = t.positions()
    assert saved[f"suricata_eve:{log}"]["line"] == 2
    t.close()
    _append(log, "3\n")
    t = _tailer(saved)
    t.add(TailSpec("suricata_eve", log))
    chunks = t.poll()
    assert _lines(chunks) == ["3"] and chunks[0].first_line == 3


def test_restart_after_a_rotation_while_stopped(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    log.write_text("1\n")
    t = _tailer()
    t.add(TailSpec("auditd", log))
    t.poll()
    saved = t.positions()
    t.close()
    _append(log, "2\n")
    os.rename(log, tmp_path / "audit.log.1")
    log.write_text("n1\n")
    t = _tailer(saved)
    t.add(TailSpec("auditd", log))
    assert _lines(t.poll()) == ["2", "n1"]


def test_zeek_chunks_repeat_the_header(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tail, "MAX_CHUNK_LINES", 2)
    header = ["#separator \\x09", "#path\tconn", "#fields\tts\tuid", "#types\ttime\tstring"]
    log = tmp_path / "conn.log"
    log.write_text("\n".join([*header, "1.0\tCa", "2.0\tCb", "3.0\tCc"]) + "\n")
    f, _ = _follower(log, "zeek_tsv")
    chunks = f.poll()
    assert [c.lines for c in chunks] == [(*header, "1.0\tCa", "2.0\tCb"), (*header, "3.0\tCc")]
    assert [c.first_line for c in chunks] == [5, 7]
    _append(log, "4.0\tCd\n#close\t2026-11-23-10-00-00\n")
    assert [c.lines for c in f.poll()] == [(*header, "4.0\tCd")]
    # after a restart in the middle of the file, the header is read again from its top
    g = Follower(TailSpec("zeek_tsv", log), f.position())
    OPEN.append(g)
    _append(log, "5.0\tCe\n")
    assert [c.lines for c in g.poll()] == [(*header, "5.0\tCe")]


def test_postgresql_records_are_not_cut(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tail, "MAX_CHUNK_LINES", 2)
    log = tmp_path / "pg.log"
    log.write_text(
        "2026-11-23 10:00:00.000 UTC [1] LOG:  statement: SELECT a,\n\tb,\n\tc FROM t\n"
        "2026-11-23 10:00:01.000 UTC [1] LOG:  statement: SELECT 1\n"
    )
    f, _ = _follower(log, "pglog")
    assert [len(c.lines) for c in f.poll()] == [3, 1]


def test_audit_events_are_not_cut(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tail, "MAX_CHUNK_LINES", 2)
    log = tmp_path / "audit.log"
    log.write_text("".join(f"type={t} msg=audit(1700000000.100:{n}): x\n"
                           for n in (1, 2) for t in ("SYSCALL", "CWD", "PATH")))  # fmt: skip
    f, _ = _follower(log, "auditd")
    assert [len(c.lines) for c in f.poll()] == [3, 3]


def test_a_poll_reads_at_most_its_budget(tmp_path: Path) -> None:
    log = tmp_path / "eve.json"
    log.write_text("".join(f"{i}\n" for i in range(30)))
    t = _tailer()
    t.add(TailSpec("suricata_eve", log))
    first = _lines(t.poll(max_lines=10))
    rest = _lines(t.poll())
    assert 10 <= len(first) < 30 and first + rest == [str(i) for i in range(30)]


def test_tail_specs() -> None:
    assert TailSpec.parse("zeek_tsv:/var/log/zeek/current/conn.log") == TailSpec(
        "zeek_tsv", Path("/var/log/zeek/current/conn.log")
    )
    for bad in ("conn.log", "nope:/x", "zeek_tsv:"):
        with pytest.raises(ConfigError, match="--tail"):
            TailSpec.parse(bad)
    assert set(tail.FORMATS) <= set(READERS)  # the collector has a reader for each

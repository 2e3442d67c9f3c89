"""The hash-chained audit log: intact logs verify; every kind of tampering is found, at the
first bad entry."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hemostat.audit import GENESIS, AuditLog, Step
from hemostat.errors import ContainmentError

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def filled(home: Path, n: int = 5) -> AuditLog:
    log = AuditLog(home)
    for i in range(n):
        log.append(step=Step.PLAN if i % 2 == 0 else Step.APPLY, actor="soc-anne",
                   action=f"act-00000000000{i}", kind="host", target="10.1.2.10",
                   reason="INC-7 exfiltration", result="done", rules=f"table inet hemostat #{i}\n",
                   now=T0 + timedelta(seconds=i))  # fmt: skip
    return log


def test_an_intact_log_verifies_and_chains_by_canonical_json(tmp_path: Path) -> None:
    log = filled(tmp_path)
    verdict = log.verify()
    assert verdict.ok and verdict.entries == 5
    lines = log.path.read_text().splitlines()
    prev = GENESIS
    for seq, line in enumerate(lines, 1):
        entry = json.loads(line)
        body = {k: v for k, v in entry.items() if k != "hash"}
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert entry["hash"] == hashlib.sha256(canonical.encode()).hexdigest()
        assert (entry["seq"], entry["prev_hash"]) == (seq, prev)
        prev = entry["hash"]
    assert verdict.head == prev
    assert json.loads(lines[0])["ts"] == "2026-11-23T10:00:00.000000Z"
    assert log.rules(json.loads(lines[2])["rules_sha256"]) == "table inet hemostat #2\n"


def edit_byte(lines: list[str]) -> list[str]:
    lines[2] = lines[2].replace("INC-7", "INC-8")  # one byte, the JSON still parses
    return lines


def break_json(lines: list[str]) -> list[str]:
    lines[2] = lines[2].replace("{", "[", 1)
    return lines


def edit_hash_too(lines: list[str]) -> list[str]:
    """Edit an entry and recompute its own hash: the next entry no longer chains onto it."""
    entry = json.loads(lines[2])
    entry["result"] = "failed"
    body = {k: v for k, v in entry.items() if k != "hash"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    entry["hash"] = hashlib.sha256(canonical.encode()).hexdigest()
    lines[2] = json.dumps(entry, sort_keys=True)
    return lines


def delete_line(lines: list[str]) -> list[str]:
    del lines[2]
    return lines


def reorder(lines: list[str]) -> list[str]:
    lines[1], lines[2] = lines[2], lines[1]
    return lines


def cut_end(lines: list[str]) -> list[str]:
    return lines[:3]


@pytest.mark.parametrize(
    ("tamper", "line", "what"),
    [
        (edit_byte, 3, "edited: the entry does not match its hash"),
        (break_json, 3, "not a valid entry"),
        (edit_hash_too, 4, "does not chain onto the entry before it"),
        (delete_line, 3, "expected seq 3, found 4"),
        (reorder, 2, "expected seq 2, found 3"),
        (cut_end, 4, "the log ends at seq 3 but head.json records seq 5"),
    ],
)
def test_tampering_is_found_at_the_first_bad_entry(
    tmp_path: Path, tamper: Callable[[list[str]], list[str]], line: int, what: str
) -> None:
    log = filled(tmp_path)
    log.path.write_text("\n".join(tamper(log.path.read_text().splitlines())) + "\n")
    verdict = log.verify()
    assert not verdict.ok and verdict.problem is not None
    assert verdict.problem.line == line and what in verdict.problem.what
    with pytest.raises(ContainmentError, match=str(log.path)):
        log.entries()


def test_a_cut_log_appended_to_afterwards_is_still_found(tmp_path: Path) -> None:
    log = filled(tmp_path)
    log.path.write_text("\n".join(log.path.read_text().splitlines()[:3]) + "\n")
    log.append(step=Step.RELEASE, actor="x", action="act-000000000009", kind="host",
               target="10.1.2.10", result="done")  # fmt: skip
    problem = log.verify().problem
    assert problem is not None and (problem.line, problem.seq) == (4, 6)


def test_only_the_first_of_several_edits_is_reported(tmp_path: Path) -> None:
    log = filled(tmp_path)
    lines = log.path.read_text().splitlines()
    lines[1], lines[3] = lines[1].replace("soc-anne", "soc-anna"), lines[3].replace("5", "6")
    log.path.write_text("\n".join(lines) + "\n")
    problem = log.verify().problem
    assert problem is not None and problem.line == 2


def test_an_altered_rules_file_is_found(tmp_path: Path) -> None:
    log = filled(tmp_path, 2)
    sha = json.loads(log.path.read_text().splitlines()[1])["rules_sha256"]
    (log.dir / "rules" / f"{sha}.nft").write_text("table inet hemostat\n")
    problem = log.verify().problem
    assert problem is not None and problem.line == 2 and "rules file" in problem.what


def test_an_empty_log_is_intact_and_appends_start_the_chain(tmp_path: Path) -> None:
    log = AuditLog(tmp_path)
    assert log.verify().ok and log.verify().entries == 0
    entry = log.append(step=Step.EXPIRE, actor="ttl", action="act-000000000001",
                       kind="site", target="site", result="done")  # fmt: skip
    assert (entry.seq, entry.prev_hash, entry.rules_sha256) == (1, GENESIS, None)
    assert log.entries() == [entry]

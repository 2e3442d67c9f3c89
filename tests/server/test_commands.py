"""The command queue: long-polled, handed out until answered, kept across restarts."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest

from hemostat.schema import CommandStatus as Status
from hemostat.server import Refused
from hemostat.server.commands import Queue


def test_a_command_is_handed_out_until_answered(home: Path) -> None:
    queue = Queue(home)
    ident = queue.issue("a1", "isolate", {"keep": ["10.1.0.5"]}, "cert", "bulk upload")
    assert ident.startswith("act-")
    first = asyncio.run(queue.wait("a1", 0))
    again = asyncio.run(queue.wait("a1", 0))
    assert [c.id for c in first] == [c.id for c in again] == [ident]
    assert first[0].wire() == {"id": ident, "action": "isolate", "args": {"keep": ["10.1.0.5"]},
                               "issued": first[0].issued, "by": "cert",
                               "reason": "bulk upload"}  # fmt: skip
    assert asyncio.run(queue.wait("other", 0)) == []
    done = queue.answer("a1", ident, "done", "isolated", "2026-11-23T10:00:00Z")
    assert done.status is Status.DONE
    assert asyncio.run(queue.wait("a1", 0)) == []


def test_only_its_agent_may_answer_and_only_with_a_known_status(home: Path) -> None:
    queue = Queue(home)
    ident = queue.issue("a1", "ping", {}, "cert", "")
    with pytest.raises(Refused) as other:
        queue.answer("a2", ident, "done", "", "")
    assert other.value.status == 404
    with pytest.raises(Refused) as status:
        queue.answer("a1", ident, "maybe", "", "")
    assert (status.value.status, status.value.field) == (422, "status")
    with pytest.raises(Refused):
        queue.issue("a1", "format-disk", {}, "cert", "")


def test_a_restart_keeps_what_is_unanswered(home: Path) -> None:
    queue = Queue(home)
    answered = queue.issue("a1", "ping", {}, "cert", "")
    waiting = queue.issue("a1", "isolate", {"ttl": 3600}, "cert", "exfil")
    queue.answer("a1", answered, "failed", "no nft", "2026-11-23T10:00:00Z")
    with (home / "commands.jsonl").open("ab") as fh:
        fh.write(b'{"op": "iss')  # a crash in the middle of an append
    again = Queue(home)
    assert [c.id for c in again.pending("a1")] == [waiting]
    got = again.get(answered)
    assert got is not None and (got.status, got.detail) == (Status.FAILED, "no nft")


def test_a_long_poll_wakes_when_a_command_is_issued(home: Path) -> None:
    queue = Queue(home)

    def later() -> None:
        time.sleep(0.2)
        queue.issue("a1", "ping", {}, "cert", "")

    async def poll() -> tuple[int, float]:
        started = time.monotonic()
        found = await queue.wait("a1", 20)
        return len(found), time.monotonic() - started

    threading.Thread(target=later).start()
    count, waited = asyncio.run(poll())
    assert count == 1 and 0.1 < waited < 10


def test_a_long_poll_ends_empty_at_its_timeout(home: Path) -> None:
    started = time.monotonic()
    assert asyncio.run(Queue(home).wait("a1", 0.2)) == []
    assert time.monotonic() - started >= 0.2

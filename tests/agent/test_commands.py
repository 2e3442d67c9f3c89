"""Commands from the collector: handlers by action, unknown actions and failing handlers as
``failed`` results, results posted, and a command handed out again (its result lost on the
way) answered from memory rather than run twice."""

from __future__ import annotations

import contextlib
import json
import threading
from typing import Any

import httpx

from hemostat.agent.commands import HANDLERS, Executor, Result
from hemostat.schema import CommandStatus as Status

from .conftest import Collector


class FakeCollector:
    def __init__(self, commands: list[dict[str, Any]], fail_posts: int = 0) -> None:
        self.commands, self.fail_posts = commands, fail_posts
        self.posted: dict[str, dict[str, Any]] = {}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            assert request.url.params["wait"] == "25.0"
            pending = [c for c in self.commands if c["id"] not in self.posted]
            return httpx.Response(200, json={"commands": pending})
        if self.fail_posts:
            self.fail_posts -= 1
            return httpx.Response(503)
        self.posted[request.url.path.rsplit("/", 1)[1]] = json.loads(request.content)
        return httpx.Response(200, json={})


def _executor(fake: FakeCollector, handlers: dict[str, Any]) -> Executor:
    client = httpx.Client(base_url="https://c", transport=httpx.MockTransport(fake))
    return Executor(client, handlers)


def _command(cid: str, action: str, **args: Any) -> dict[str, Any]:
    return {"id": cid, "action": action, "args": args, "issued": "2026-11-23T10:00:00.000000Z",
            "by": "soc", "reason": "test"}  # fmt: skip


def test_handlers_results_and_failures() -> None:
    calls: list[dict[str, Any]] = []

    def isolate(args: dict[str, Any]) -> Result:
        calls.append(args)
        return Result(Status.DONE, f"isolated, management {args['keep']}")

    def broken(args: dict[str, Any]) -> Result:
        raise RuntimeError("nft exploded")

    fake = FakeCollector([_command("act-1", "isolate", keep=["10.1.0.5"]),
                          _command("act-2", "ping"), _command("act-3", "frobnicate"),
                          _command("act-4", "release")])  # fmt: skip
    executor = _executor(fake, {**HANDLERS, "isolate": isolate, "release": broken})
    assert executor.poll_once() == 4
    assert calls == [{"keep": ["10.1.0.5"]}]
    status = {cid: (r["status"], r["detail"]) for cid, r in fake.posted.items()}
    assert status["act-1"] == ("done", "isolated, management ['10.1.0.5']")
    assert status["act-2"][0] == "done" and status["act-2"][1].startswith("pong from ")
    assert status["act-3"][0] == "failed" and "unknown action 'frobnicate'" in status["act-3"][1]
    assert status["act-4"] == ("failed", "RuntimeError: nft exploded")
    assert all(r["at"].endswith("Z") for r in fake.posted.values())


def test_a_command_handed_out_again_is_not_run_again() -> None:
    runs: list[str] = []

    def isolate(args: dict[str, Any]) -> Result:
        runs.append("isolate")
        return Result(Status.DONE, "ok")

    fake = FakeCollector([_command("act-9", "isolate")], fail_posts=1)
    executor = _executor(fake, {"isolate": isolate})
    with contextlib.suppress(httpx.HTTPStatusError):  # the result did not reach the collector
        executor.poll_once()
    executor.poll_once()
    assert runs == ["isolate"] and fake.posted["act-9"]["status"] == "done"


def test_the_poll_loop_against_a_real_server(collector: Collector) -> None:
    collector.commands = [_command("act-5", "ping")]
    with httpx.Client(base_url=collector.url) as client:
        executor = Executor(client, wait=1.0)
        stop = threading.Event()
        thread = threading.Thread(target=executor.run, args=(stop,))
        thread.start()
        collector.wait(lambda: "act-5" in collector.results)
        stop.set()
        thread.join(timeout=5)
    assert [r["status"] for r in collector.results["act-5"]] == ["done"]
    assert any(p.startswith("/api/v1/commands?wait=1.0") for _, p, _ in collector.requests)

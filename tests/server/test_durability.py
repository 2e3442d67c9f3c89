"""Nothing acknowledged is lost, nothing is stored twice: a real ``hemostat serve`` killed
with SIGKILL in the middle of sustained ingest, then restarted."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx

from hemostat.store import Store
from tests.server.conftest import Served, Tokened, batch, gz, headers

FLOWS = 400  # per batch


class Agent(threading.Thread):
    """Sends batches back to back; remembers which ones got a 200."""

    def __init__(self, url: str, agent: str, token: str) -> None:
        super().__init__(daemon=True)
        self.url, self.agent, self.token = url, agent, token
        self.bodies: dict[str, bytes] = {}
        self.acked: set[str] = set()
        self.stop = threading.Event()

    def run(self) -> None:
        seq = 0
        with httpx.Client(timeout=10) as client:
            while not self.stop.is_set():
                seq += 1
                body = batch(self.agent, seq, flows=FLOWS)
                self.bodies[body["batch"]] = data = gz(body)
                if not self.send(client, body["batch"], data):
                    return  # the collector is gone

    def send(self, client: httpx.Client, ident: str, data: bytes) -> bool:
        try:
            answer = client.post(f"{self.url}/api/v1/ingest", content=data,
                                 headers=headers(self.token))  # fmt: skip
        except httpx.TransportError:
            return False
        if answer.status_code == 200:
            self.acked.add(ident)
        return True

    def resend(self, url: str) -> list[bool]:
        """Send every unacknowledged batch again until it is; the duplicate flags."""
        flags = []
        with httpx.Client(timeout=30) as client:
            for ident, data in self.bodies.items():
                if ident in self.acked:
                    continue
                for _ in range(20):
                    answer = client.post(f"{url}/api/v1/ingest", content=data,
                                         headers=headers(self.token))  # fmt: skip
                    if answer.status_code == 200:
                        self.acked.add(ident)
                        flags.append(answer.json()["duplicate"])
                        break
                assert ident in self.acked, f"{ident}: {answer.status_code} {answer.text}"
        return flags


def _stored(home: Path) -> tuple[int, int, set[str], set[str]]:
    with Store(home, read_only=True) as store:
        rows, distinct = store.con.execute(
            "SELECT count(*), count(DISTINCT conn_id) FROM flows").fetchall()[0]  # fmt: skip
        from_rows = {r[0] for r in store.con.execute(
            "SELECT DISTINCT split_part(conn_id, '/', 1) FROM flows").fetchall()}  # fmt: skip
        ids = {r[0] for r in store.con.execute("SELECT id FROM batches").fetchall()}
    return int(rows), int(distinct), from_rows, ids


def test_a_sigkilled_collector_loses_nothing_it_acknowledged(
    home: Path, tokened: Tokened, serve: type[Served]
) -> None:
    first = serve(home, "--insecure-http")
    agents = [Agent(first.url, tokened.agent.id, tokened.agent_text),
              Agent(first.url, tokened.other.id, tokened.other_text)]  # fmt: skip
    for agent in agents:
        agent.start()
    deadline = time.monotonic() + 120
    while sum(len(a.acked) for a in agents) < 40 and time.monotonic() < deadline:
        time.sleep(0.02)
    first.kill()  # SIGKILL, with requests in flight
    for agent in agents:
        agent.stop.set()
        agent.join(30)
    acked_before = {i for a in agents for i in a.acked}
    sent = {i for a in agents for i in a.bodies}
    assert len(acked_before) >= 40 and sent - acked_before, "the kill came between requests"

    second = serve(home, "--insecure-http")
    for agent in agents:
        agent.resend(second.url)
    with httpx.Client() as client:  # an acknowledged batch sent again is recognised
        ident = sorted(acked_before)[0]
        owner = next(a for a in agents if ident in a.bodies)
        dup = client.post(f"{second.url}/api/v1/ingest", content=owner.bodies[ident],
                          headers=headers(owner.token))  # fmt: skip
    assert dup.json()["duplicate"] is True
    assert second.stop() in (0, -15)

    rows, distinct, from_rows, ids = _stored(home)
    assert {i for a in agents for i in a.acked} == sent
    assert ids == from_rows == sent  # every batch: acknowledged ones, then resent ones
    assert rows == distinct == FLOWS * len(sent)  # none twice
    assert list((home / "journal").glob("*.batch")) == []

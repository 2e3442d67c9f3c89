"""A real ``hemostat serve`` over HTTPS: agents pin the site CA, refusals over the network,
tokens absent from everything the process printed, commands long-polled, a clean stop."""

from __future__ import annotations

import ssl
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from hemostat.server import pki
from hemostat.store import Store
from tests.server.conftest import Served, Tokened, batch, gz, headers


def test_the_collector_over_tls(
    home: Path, tmp_path: Path, tokened: Tokened, serve: type[Served]
) -> None:
    made, _ = pki.init(home)
    served = serve(home)
    url = served.url
    assert url.startswith("https://127.0.0.1:")
    pinned = pki.client_context(made.ca)

    # a client without the site CA, or with another site's, does not get through
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"{url}/healthz")
    other, _ = pki.init(tmp_path / "elsewhere")
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"{url}/healthz", verify=pki.client_context(other.ca))
    assert isinstance(pinned, ssl.SSLContext)

    with httpx.Client(verify=pinned, timeout=30) as client:
        assert client.get(f"{url}/healthz").json()["status"] == "ok"
        _refusals(client, url, tokened)
        ok = client.post(f"{url}/api/v1/ingest", content=gz(batch(tokened.agent.id, 1, flows=7)),
                         headers=headers(tokened.agent_text))  # fmt: skip
        assert ok.status_code == 200 and ok.json()["duplicate"] is False
        _long_poll(client, url, tokened)
    assert served.stop() in (0, -15)  # SIGTERM: drained, then gone

    with Store(home, read_only=True) as store:
        assert store.con.execute("SELECT count(*) FROM flows").fetchall()[0][0] == 7
        assert store.con.execute("SELECT id FROM batches").fetchall() == [
            (f"{tokened.agent.id}-000000000001",)
        ]
        agents = store.con.execute("SELECT id, name, ip FROM agents").fetchall()
    assert agents == [(tokened.agent.id, "dpi-db-01", "127.0.0.1")]
    log = served.log()
    assert "POST /api/v1/ingest" in log  # the access log is there...
    for text in tokened.texts:  # ... and no token in it, nor in our lines
        assert text not in log and text.split("_", 2)[2] not in log


def _refusals(client: httpx.Client, url: str, tokened: Tokened) -> None:
    me = tokened.agent.id
    bad_port = batch(me, 2)
    bad_port["flows"][1]["dst_port"] = -3
    cases: list[tuple[dict[str, str], bytes, int]] = [
        ({}, gz(batch(me, 2)), 401),
        (headers(tokened.revoked_text), gz(batch(tokened.revoked.id, 2)), 401),
        (headers(tokened.other_text), gz(batch(me, 2)), 403),
        (headers(tokened.analyst_text), gz(batch(me, 2)), 403),
        (headers(tokened.agent_text), b"\x1f\x8b" + bytes(9 << 20), 413),  # over 8 MiB
        (headers(tokened.agent_text), b"\x1f\x8b\x08\x00garbage", 400),
        (headers(tokened.agent_text), gz(bad_port), 422),
    ]
    for sent, body, status in cases:
        answer = client.post(f"{url}/api/v1/ingest", content=body, headers=sent)
        assert answer.status_code == status, answer.text
        assert answer.json()["field"] in ("Authorization", "agent", "body", "flows[1].dst_port")


def _long_poll(client: httpx.Client, url: str, tokened: Tokened) -> None:
    got: dict[str, Any] = {}

    def poll() -> None:
        started = time.monotonic()
        answer = client.get(f"{url}/api/v1/commands", params={"wait": 20},
                            headers=headers(tokened.agent_text))  # fmt: skip
        got.update(answer.json(), waited=time.monotonic() - started)

    poller = threading.Thread(target=poll)
    poller.start()
    issued = client.post(f"{url}/api/v1/agents/{tokened.agent.id}/commands",
                         json={"action": "ping", "reason": "test"},
                         headers=headers(tokened.responder_text)).json()  # fmt: skip
    poller.join(25)
    assert [c["id"] for c in got["commands"]] == [issued["id"]] and got["waited"] < 15
    done = client.post(f"{url}/api/v1/commands/{issued['id']}",
                       json={"status": "done", "detail": "pong", "at": "2026-11-23T10:00:00Z"},
                       headers=headers(tokened.agent_text))  # fmt: skip
    assert done.json()["status"] == "done"
    empty = client.get(f"{url}/api/v1/commands", params={"wait": 0},
                       headers=headers(tokened.agent_text))  # fmt: skip
    assert empty.json() == {"commands": []}

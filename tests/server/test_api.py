"""The HTTP API in process (FastAPI TestClient): who may call what, what a refusal says, and
that nothing of a refused request reaches the journal or the store."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from tests.server.conftest import Tokened, batch, gz, headers, journal, running, stored


def test_refusals_have_their_status_and_store_nothing(
    home: Path, tokened: Tokened, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    me = tokened.agent.id
    good = gz(batch(me, 1))
    cases = [
        ({}, good, 401, "Authorization"),  # no token
        (headers("hst_000000000000_" + "x" * 43), good, 401, "Authorization"),  # unknown
        (headers(tokened.revoked_text), gz(batch(tokened.revoked.id, 1)), 401, "Authorization"),
        (headers(tokened.other_text), good, 403, "agent"),  # another agent's token
        (headers(tokened.analyst_text), good, 403, "Authorization"),  # not an agent
        (headers(tokened.agent_text), b"\x1f\x8b" + b"\0" * 70_000, 413, "body"),  # too large
        (headers(tokened.agent_text), b"\x1f\x8b\x08\x00broken", 400, "body"),  # bad gzip
        (headers(tokened.agent_text, gzip_body=False), b'{"agent": ', 400, "body"),  # bad JSON
        (headers(tokened.agent_text), gz(batch(me, 1, flows=1001)), 413, "body"),  # rows
    ]
    bad_port = batch(me, 1)
    bad_port["flows"][2]["dst_port"] = "https"
    cases.append((headers(tokened.agent_text), gz(bad_port), 422, "flows[2].dst_port"))
    with running(home) as client:
        for sent_headers, body, status, field in cases:
            answer = client.post("/api/v1/ingest", content=body, headers=sent_headers)
            assert (answer.status_code, answer.json()["field"]) == (status, field), answer.text
            assert answer.json()["error"]
            if status == 401:
                assert answer.headers["WWW-Authenticate"] == "Bearer"
        assert journal(home) == []
    assert stored(home) == (0, 0)
    for text in tokened.texts:
        assert text not in caplog.text and text.split("_", 2)[2] not in caplog.text
    assert tokened.other.id in caplog.text  # log lines name tokens by id


def test_a_batch_sent_twice_is_stored_once(home: Path, tokened: Tokened) -> None:
    body = gz(batch(tokened.agent.id, 1, flows=5))
    with running(home) as client:
        first = client.post("/api/v1/ingest", content=body, headers=headers(tokened.agent_text))
        again = client.post("/api/v1/ingest", content=body, headers=headers(tokened.agent_text))
    assert first.status_code == again.status_code == 200
    assert first.json() == {"batch": f"{tokened.agent.id}-000000000001", "duplicate": False,
                            "rows": {"flows": 5, "dns": 0, "access": 0, "raw": 0}}  # fmt: skip
    assert again.json()["duplicate"] is True
    assert stored(home) == (5, 1)
    with running(home) as client:  # the store remembers it after a restart too
        later = client.post("/api/v1/ingest", content=body, headers=headers(tokened.agent_text))
        assert later.json()["duplicate"] is True
    assert stored(home) == (5, 1)
    assert journal(home) == []


def test_an_agent_over_its_rate_waits(home: Path, tokened: Tokened) -> None:
    me, auth = tokened.agent.id, headers(tokened.agent_text)
    with running(home, HEMOSTAT_SERVER__RATE="0.01", HEMOSTAT_SERVER__BURST="2") as client:
        codes = [client.post("/api/v1/ingest", content=gz(batch(me, seq)), headers=auth)
                 for seq in (1, 2, 3)]  # fmt: skip
        other = client.post("/api/v1/ingest", content=gz(batch(tokened.other.id, 1)),
                            headers=headers(tokened.other_text))  # fmt: skip
    assert [c.status_code for c in codes] == [200, 200, 429]
    assert int(codes[2].headers["Retry-After"]) >= 1
    assert other.status_code == 200  # the limit is per agent
    assert stored(home) == (9, 3)


def test_health_and_metrics(home: Path, tokened: Tokened) -> None:
    with running(home) as client:
        client.post("/api/v1/ingest", content=gz(batch(tokened.agent.id, 1)),
                    headers=headers(tokened.agent_text))  # fmt: skip
        health = client.get("/healthz")
        assert health.status_code == 200
        assert set(health.json()) == {"status", "writer_lag_seconds", "journal_batches",
                                      "detection"}  # fmt: skip
        assert health.json()["detection"] == "off"  # detect_interval 0 here
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers=headers(tokened.agent_text)).status_code == 403
        text = client.get("/metrics", headers=headers(tokened.analyst_text)).text
    assert 'hemostat_ingest_batches_total{result="accepted"} 1' in text
    assert f'hemostat_agent_spool_bytes{{agent="{tokened.agent.id}",name="dpi-db-01"}} 2048' in text
    with running(home, metrics_open=True) as client:
        assert client.get("/metrics").status_code == 200


INVENTORY = """
site: chu
management: [10.1.0.5/32]
hosts:
  - {name: dpi-db-01, ip: 10.0.0.5}
  - {name: ns1, ip: 10.0.0.53, role: dns}
datastores:
  - {name: pacs, host: 10.0.0.5, objects: ["file:///srv/pacs/", "smb://fs/x"]}
  - {name: rh, host: dpi-db-01, objects: ["file:///srv/rh/"]}
  - {name: other, host: 10.0.0.99, objects: ["file:///srv/other/"]}
continuity:
  - {name: dicom, direction: both, dst: 10.2.0.0/16, ports: [104]}
"""


def test_an_agent_gets_its_configuration_from_the_inventory(home: Path, tokened: Tokened) -> None:
    (home / "inventory.yaml").write_text(INVENTORY)
    with running(home) as client:
        got = client.get("/api/v1/agent/config", headers=headers(tokened.agent_text)).json()
        refused = client.get("/api/v1/agent/config", headers=headers(tokened.analyst_text))
    assert refused.status_code == 403
    assert got == {
        "agent": tokened.agent.id, "name": "dpi-db-01", "interval": 5.0,
        "watch": ["/srv/pacs/", "/srv/rh/"], "management": ["10.1.0.5/32"],
        "resolvers": ["10.0.0.53"],
        "continuity": [{"name": "dicom", "direction": "both", "dst": "10.2.0.0/16",
                        "ports": [104]}],
    }  # fmt: skip


def test_commands_round_trip(home: Path, tokened: Tokened) -> None:
    agent, other = headers(tokened.agent_text), headers(tokened.other_text)
    with running(home) as client:
        denied = client.post(
            f"/api/v1/agents/{tokened.agent.id}/commands",
            json={"action": "isolate"},
            headers=headers(tokened.analyst_text),
        )
        issued = client.post(f"/api/v1/agents/{tokened.agent.id}/commands",
                             json={"action": "isolate", "args": {"ttl": 600}, "reason": "exfil"},
                             headers=headers(tokened.responder_text))  # fmt: skip
        ident = issued.json()["id"]
        polled = client.get("/api/v1/commands", params={"wait": 0}, headers=agent).json()
        nothing = client.get("/api/v1/commands", params={"wait": 0}, headers=other).json()
        wrong = client.post(
            f"/api/v1/commands/{ident}",
            headers=other,
            json={"status": "done", "detail": "", "at": "2026-11-23T10:00:00Z"},
        )
        done = client.post(
            f"/api/v1/commands/{ident}",
            headers=agent,
            json={"status": "done", "detail": "ok", "at": "2026-11-23T10:00:00Z"},
        )
        after = client.get("/api/v1/commands", params={"wait": 0}, headers=agent).json()
        too_long = client.get("/api/v1/commands", params={"wait": 31}, headers=agent)
    assert denied.status_code == 403
    assert [c["id"] for c in polled["commands"]] == [ident]
    assert polled["commands"][0]["action"] == "isolate" and polled["commands"][0]["by"] == "cert"
    assert nothing == {"commands": []}
    assert wrong.status_code == 404 and done.json() == {"id": ident, "status": "done"}
    assert after == {"commands": []}
    assert (too_long.status_code, too_long.json()["field"]) == (422, "wait")


def test_an_inventory_edited_within_one_clock_tick_is_read_again(
    home: Path, tokened: Tokened
) -> None:
    """The collector re-reads the inventory when its size or file changes, not only its
    modification time: an edit that keeps the time (same tick, or a copy with -p) counts."""
    path = home / "inventory.yaml"
    path.write_text(INVENTORY)
    stamp = path.stat().st_mtime_ns
    with running(home) as client:
        first = client.get("/api/v1/agent/config", headers=headers(tokened.agent_text)).json()
        path.write_text(INVENTORY.replace("[104]", "[104, 11112]"))
        os.utime(path, ns=(stamp, stamp))
        again = client.get("/api/v1/agent/config", headers=headers(tokened.agent_text)).json()
    assert first["continuity"][0]["ports"] == [104]
    assert again["continuity"][0]["ports"] == [104, 11112]

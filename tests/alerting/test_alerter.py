"""The Alerter with real receivers: one alert per incident, updates when it grows (at most one
per interval unless severity rises), state that survives a restart, no storm over 1,000
calls, and a dead sink that neither blocks the others nor is forgotten."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import re
from pathlib import Path

import pytest

from hemostat import config
from hemostat.alerting import STATE, Alerter, AlertKind
from hemostat.alerting.policy import Policy, Snapshot
from hemostat.alerting.state import Ledger
from hemostat.errors import ConfigError, StoreError
from hemostat.schema import Severity

from .conftest import (
    T0,
    StreamSyslog,
    UdpSyslog,
    Webhook,
    make_incident,
    parse_cef,
    parse_syslog,
    write_settings,
)

DOCS = Path(__file__).parents[2] / "docs" / "alerting.md"


def minutes(n: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=n)


def settings_home(tmp_path: Path, *syslog: str, webhook: str = "", extra: str = "") -> Path:
    hooks = f'webhook = ["{webhook}"]\n' if webhook else ""
    urls = ", ".join(f'"{u}"' for u in syslog)
    return write_settings(tmp_path / "home", f"[alerting]\nsyslog = [{urls}]\n{hooks}timeout = 0.5\n"
                          f"webhook_retries = 0\n{extra}")  # fmt: skip


def load(home: Path) -> Alerter:
    return Alerter.from_settings(config.load(home, environ={}), home)


def activities(udp: UdpSyslog) -> list[tuple[str, str]]:
    """(activity, msg) of every syslog line received since the last call."""
    out = []
    for line in udp.lines():
        msg = parse_syslog(line)
        out.append((msg["params"]["activity"], parse_cef(msg["msg"])[1]["msg"]))
    return out


def test_new_then_updates_as_the_incident_grows_and_state_survives_restart(
    tmp_path: Path, udp_syslog: UdpSyslog
) -> None:
    home = settings_home(tmp_path, udp_syslog.url)
    alerter = load(home)
    base = make_incident()  # high, 100 MB
    assert [s.kind for s in alerter.notify([base], T0)] == [AlertKind.NEW]
    assert [a for a, _ in activities(udp_syslog)] == ["new"]

    bigger = dataclasses.replace(base, bytes_out=150_000_000)  # x1.5: not material
    assert alerter.notify([bigger], minutes(20)) == []
    doubled = dataclasses.replace(base, bytes_out=200_000_000)  # x2 since the last alert
    assert [s.kind for s in alerter.notify([doubled], minutes(21))] == [AlertKind.UPDATE]
    assert activities(udp_syslog)[0][1].endswith("Update: bytes out: 100000000 -> 200000000.")

    wider = dataclasses.replace(doubled, destinations=(*base.destinations, "198.51.100.7"))
    assert alerter.notify([wider], minutes(30)) == []  # 9 min after the update: held back
    critical = dataclasses.replace(wider, score=90.0)
    assert [s.kind for s in alerter.notify([critical], minutes(31))] == [AlertKind.UPDATE]
    [(_, msg)] = activities(udp_syslog)  # the held-back destination goes with the rise
    assert msg.endswith("Update: severity: high -> critical; new destinations: 198.51.100.7.")

    restarted = load(home)  # a new collector process
    assert restarted.notify([critical], minutes(32)) == []
    grown = dataclasses.replace(critical, bytes_out=400_000_000)
    assert restarted.notify([grown], minutes(40)) == []  # the interval survived the restart
    assert [s.kind for s in restarted.notify([grown], minutes(47))] == [AlertKind.UPDATE]
    assert len(activities(udp_syslog)) == 1
    state = json.loads((home / STATE).read_text())
    assert state["incidents"]["INC-1a2b3c4d"]["first"] == "2026-11-23T10:00:00.000000Z"


def test_below_min_severity_nothing_until_it_rises(tmp_path: Path, udp_syslog: UdpSyslog) -> None:
    alerter = load(settings_home(tmp_path, udp_syslog.url, extra='min_severity = "high"\n'))
    medium = make_incident(score=50.0)
    assert alerter.notify([medium], T0) == []
    assert udp_syslog.lines() == []
    assert [s.kind for s in alerter.notify([make_incident(score=70.0)], minutes(1))] == [
        AlertKind.NEW]  # fmt: skip


def test_a_severity_that_drops_and_comes_back_is_not_news(
    tmp_path: Path, udp_syslog: UdpSyslog
) -> None:
    alerter = load(settings_home(tmp_path, udp_syslog.url))
    alerter.notify([make_incident(score=90.0)], T0)
    assert alerter.notify([make_incident(score=70.0)], minutes(1)) == []
    assert alerter.notify([make_incident(score=91.0)], minutes(2)) == []
    assert len(udp_syslog.lines()) == 1


def test_a_thousand_calls_send_each_incident_once(
    tmp_path: Path, udp_syslog: UdpSyslog, webhook: Webhook
) -> None:
    home = settings_home(tmp_path, udp_syslog.url, webhook=webhook.url)
    alerter = load(home)
    incidents = [make_incident(id=f"INC-{i}", hosts=(f"10.1.2.{i}",)) for i in range(5)]
    first = alerter.notify(incidents, T0)
    assert len(first) == 10 and all(s.ok and s.kind is AlertKind.NEW for s in first)
    written = (home / STATE).stat().st_mtime_ns
    for i in range(1, 1000):
        assert alerter.notify(incidents, T0 + dt.timedelta(seconds=5 * i)) == []
    assert len(udp_syslog.lines()) == 5 and len(webhook.posts) == 5
    assert (home / STATE).stat().st_mtime_ns == written  # nothing new: nothing rewritten
    assert alerter.sent_total == {f"syslog:{udp_syslog.url}": 5,
                                  "webhook:" + webhook.url.split("?")[0]: 5}  # fmt: skip


def test_dead_sinks_do_not_block_the_others_and_are_retried(
    tmp_path: Path, udp_syslog: UdpSyslog, tcp_syslog: StreamSyslog, silent_port: int,
    closed_port: int, caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    hung = f"http://127.0.0.1:{silent_port}/hook"
    refused = f"tcp://127.0.0.1:{closed_port}"
    home = settings_home(tmp_path, udp_syslog.url, tcp_syslog.url, refused, webhook=hung)
    alerter = load(home)
    caplog.set_level(logging.WARNING, "hemostat.alerting")
    sent = alerter.notify([make_incident()], T0)
    by_sink = {s.sink: s for s in sent}
    assert by_sink[f"syslog:{udp_syslog.url}"].ok and by_sink[f"syslog:{tcp_syslog.url}"].ok
    assert not by_sink[f"syslog:{refused}"].ok
    assert "refused" in str(by_sink[f"syslog:{refused}"].error).lower()
    assert not by_sink[f"webhook:{hung}"].ok
    assert "Timeout" in str(by_sink[f"webhook:{hung}"].error)
    assert len(udp_syslog.lines()) == 1 and len(tcp_syslog.wait(1)) == 1

    again = alerter.notify([make_incident()], minutes(1))  # only the failed sinks try again
    assert sorted(s.sink for s in again) == [f"syslog:{refused}", f"webhook:{hung}"]
    assert all(not s.ok and s.kind is AlertKind.NEW for s in again)
    assert udp_syslog.lines() == []
    failing = [r.getMessage() for r in caplog.records if "is failing" in r.getMessage()]
    assert len(failing) == 2  # once per sink and failure streak, not once per call
    assert alerter.failed_total[f"syslog:{refused}"] == 2

    state = json.loads((home / STATE).read_text())  # a restart still owes the dead sinks
    assert sorted(state["incidents"]["INC-1a2b3c4d"]["sinks"]) == [
        f"syslog:{tcp_syslog.url}", f"syslog:{udp_syslog.url}"]  # fmt: skip


def test_a_sink_that_comes_back_gets_what_it_missed(
    tmp_path: Path, webhook: Webhook, caplog: pytest.LogCaptureFixture
) -> None:
    alerter = load(settings_home(tmp_path, webhook=webhook.url))
    caplog.set_level(logging.INFO, "hemostat.alerting")
    webhook.statuses = [503, 503]
    assert [s.ok for s in alerter.notify([make_incident()], T0)] == [False]
    assert [s.ok for s in alerter.notify([make_incident()], minutes(1))] == [False]
    sent = alerter.notify([make_incident()], minutes(2))
    assert [(s.ok, s.kind, s.error) for s in sent] == [(True, AlertKind.NEW, None)]
    assert len(webhook.accepted()) == 1 and alerter.notify([make_incident()], minutes(3)) == []
    messages = [r.getMessage() for r in caplog.records]
    assert sum("is failing" in m for m in messages) == 1
    assert sum("delivers again" in m for m in messages) == 1


def test_a_sink_failing_mid_batch_keeps_what_it_took(tmp_path: Path, webhook: Webhook) -> None:
    alerter = load(settings_home(tmp_path, webhook=webhook.url))
    webhook.statuses = [200, 400]
    incidents = [make_incident(id=f"INC-{i}") for i in range(3)]
    sent = alerter.notify(incidents, T0)
    assert [(s.incident, s.ok) for s in sent] == [
        ("INC-0", True),
        ("INC-1", False),
        ("INC-2", False),
    ]
    assert "HTTP 400" in str(sent[2].error)  # not tried: the sink failed earlier in the batch
    assert len(webhook.posts) == 2
    retried = alerter.notify(incidents, minutes(1))
    assert [(s.incident, s.ok) for s in retried] == [("INC-1", True), ("INC-2", True)]


@pytest.mark.parametrize(
    ("last", "incident", "at", "expected"),
    [(None, {}, 0, AlertKind.NEW),
     (None, {"score": 20.0}, 0, None),  # low: below the default medium
     ({}, {}, 60, None),  # unchanged
     ({}, {"bytes_out": 199_999_999}, 60, None),  # under x2
     ({}, {"bytes_out": 200_000_000}, 14, None),  # x2 inside the interval
     ({}, {"bytes_out": 200_000_000}, 15, AlertKind.UPDATE),
     ({}, {"hosts": ("10.1.2.3", "10.9.9.9")}, 15, AlertKind.UPDATE),
     ({}, {"detectors": ("egress_volume", "beaconing")}, 15, AlertKind.UPDATE),
     ({}, {"score": 90.0}, 1, AlertKind.UPDATE),  # severity rose: at once
     ({}, {"score": 50.0}, 60, None),  # severity fell
     ({"bytes_out": 0}, {"bytes_out": 1}, 60, AlertKind.UPDATE)],
)  # fmt: skip
def test_policy(last: dict[str, object] | None, incident: dict[str, object], at: float,
                expected: AlertKind | None) -> None:  # fmt: skip
    snap = None if last is None else Snapshot.of(make_incident(**last), T0)
    decision = Policy().decide(make_incident(**incident), snap, minutes(at))
    assert (decision[0] if decision else None) == expected


def test_state_is_forgotten_for_incidents_long_gone(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "s.json")
    ledger.record(make_incident(id="INC-old"), "x", T0)
    ledger.record(make_incident(id="INC-now"), "x", T0)
    ledger.forget({"INC-now"}, T0 + dt.timedelta(days=29))
    assert set(ledger.incidents) == {"INC-old", "INC-now"}
    ledger.forget({"INC-now"}, T0 + dt.timedelta(days=31))
    assert set(ledger.incidents) == {"INC-now"}


def test_state_is_replaced_atomically_and_a_damaged_one_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "alerts" / "state.json"
    ledger = Ledger(path)
    ledger.record(make_incident(), "syslog:udp://x:514", T0)
    ledger.save()
    assert [p.name for p in path.parent.iterdir()] == ["state.json"]  # no temporary left
    again = Ledger.load(path).last("INC-1a2b3c4d", "syslog:udp://x:514")
    assert again == Snapshot.of(make_incident(), T0) and again.severity is Severity.HIGH
    path.write_text('{"version": 1, "incidents": {"INC-1": {"sinks": {"x": {}}}}}')
    with pytest.raises(StoreError, match=r"state\.json: damaged alert state.*move the file away"):
        Ledger.load(path)
    path.write_text("{")
    with pytest.raises(StoreError, match="cannot read the alert state"):
        Ledger.load(path)


def test_no_sink_configured_sends_nothing_and_writes_nothing(tmp_path: Path) -> None:
    home = write_settings(tmp_path / "home", "")
    alerter = load(home)
    assert alerter.sinks == [] and alerter.notify([make_incident(score=99.0)], T0) == []
    assert not (home / STATE).exists()


@pytest.mark.parametrize(
    ("text", "message"),
    [('syslog = ["syslog://x"]', "alerting.syslog 'syslog://x': use udp://"),
     ('syslog_facility = "nope"\nsyslog = ["udp://x:1"]', "syslog_facility 'nope'"),
     ('syslog = ["udp://x:1", "udp://x:1"]', "lists syslog:udp://x:1 twice"),
     ('min_severity = "urgent"', "min_severity 'urgent': use one of low, medium"),
     ("update_factor = 1.0", "update_factor 1.0: use a factor above 1"),
     ('webhook = ["https://x/"]\nwebhook_token_file = "nope"', "webhook_token_file: .*nope"),
     ('syslog_ca_file = "ca.pem"', r"syslog_ca_file: .*ca\.pem does not exist"),
     ("timeout = 0.0", "alerting.timeout 0.0"),
     ("syslog = 'udp://x:1'", "alerting.syslog must be like")],
)  # fmt: skip
def test_bad_settings_name_the_file_and_the_key(tmp_path: Path, text: str, message: str) -> None:
    home = write_settings(tmp_path, f"[alerting]\n{text}\n")
    with pytest.raises(ConfigError, match=r"hemostat\.toml: .*" + message):
        load(home)


def test_token_file_is_read_relative_to_home(tmp_path: Path, webhook: Webhook) -> None:
    home = settings_home(tmp_path, webhook=webhook.url, extra='webhook_token_file = "tok"\n')
    (home / "tok").write_text("abc.def\n")
    load(home).notify([make_incident()], T0)
    assert webhook.posts[0]["headers"]["Authorization"] == "Bearer abc.def"


def test_every_alerting_setting_is_documented() -> None:
    text = DOCS.read_text()
    names = [s.name for s in config.SETTINGS if s.section == "alerting"]
    assert len(names) >= 15
    missing = [n for n in names if not re.search(rf"`{n}`", text)]
    assert missing == []

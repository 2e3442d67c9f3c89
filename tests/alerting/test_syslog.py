"""Syslog sink against real receivers: RFC 5424 header, structured data and CEF fields parsed
back, over UDP, TCP (octet counting) and TLS with a test CA; CEF escaping round trips."""

from __future__ import annotations

import datetime as dt
import os
import socket
from pathlib import Path

import pytest

import hemostat
from hemostat.alerting import Alerter
from hemostat.alerting.alert import Alert, AlertKind, DeliveryError
from hemostat.alerting.cef import header_escape, value_escape
from hemostat.alerting.policy import Policy
from hemostat.alerting.state import Ledger
from hemostat.alerting.syslog import SyslogSink
from hemostat.errors import ConfigError
from hemostat.schema import Kind

from .conftest import (
    T0,
    Pki,
    StreamSyslog,
    UdpSyslog,
    make_incident,
    parse_cef,
    parse_syslog,
)


def alerter(tmp_path: Path, *urls: str, ca: Path | None = None) -> Alerter:
    sinks = [SyslogSink.parse(u, "local4", 2.0, ca) for u in urls]
    return Alerter(sinks, Ledger(tmp_path / "state.json"), Policy(), "https://soc.example/")


def test_udp_line_has_rfc5424_header_structured_data_and_cef(
    tmp_path: Path, udp_syslog: UdpSyslog
) -> None:
    incident = make_incident(score=90.0, bytes_out=2_500_000_000)
    sent = alerter(tmp_path, udp_syslog.url).notify([incident], T0)
    assert [(s.ok, s.kind, s.sink) for s in sent] == [
        (True, AlertKind.NEW, f"syslog:{udp_syslog.url}")
    ]
    [line] = udp_syslog.lines()
    msg = parse_syslog(line)
    assert msg["pri"] == 20 * 8 + 2  # local4, critical
    assert (msg["ts"], msg["app"], msg["msgid"]) == (
        "2026-11-23T10:00:00.000000Z",
        "hemostat",
        "incident",
    )
    assert msg["host"] == socket.gethostname() and msg["procid"] == str(os.getpid())
    assert msg["sd_id"] == "hemostat@32473"
    assert msg["params"] == {
        "id": "INC-1a2b3c4d",
        "kind": "exfiltration",
        "severity": "critical",
        "score": "90",
        "activity": "new",
    }
    header, ext = parse_cef(msg["msg"])
    assert header == [
        "CEF:0",
        "hemostat",
        "hemostat",
        hemostat.__version__,
        "exfiltration",
        incident.summary,
        "10",
    ]
    assert ext["rt"] == str(int(T0.timestamp() * 1000))
    assert (ext["src"], ext["dst"], ext["out"]) == ("10.1.2.3", "203.0.113.9", "2500000000")
    assert (ext["cs1Label"], ext["cs1"]) == ("incident", "INC-1a2b3c4d")
    assert (ext["cs2Label"], ext["cs2"]) == ("attack", "T1041,T1048.003")
    assert (ext["cs3Label"], ext["cs3"]) == ("detectors", "egress_volume")
    assert ext["cs6"] == "https://soc.example/incidents/INC-1a2b3c4d"
    assert ext["msg"] == incident.summary and ext["act"] == "new"


@pytest.mark.parametrize(
    ("severity_score", "pri"), [(90.0, 162), (70.0, 163), (50.0, 164)],
)  # fmt: skip
def test_pri_follows_severity(
    tmp_path: Path, udp_syslog: UdpSyslog, severity_score: float, pri: int
) -> None:
    alerter(tmp_path, udp_syslog.url).notify([make_incident(score=severity_score)], T0)
    assert parse_syslog(udp_syslog.lines()[0])["pri"] == pri


def test_cef_escapes_pipes_equals_backslashes_and_newlines(
    tmp_path: Path, udp_syslog: UdpSyslog
) -> None:
    nasty = "a|b = c \\ d\nnext\rline"
    incident = make_incident(summary=nasty, destinations=("evil|x=y.example",), id="INC-x=1")
    alerter(tmp_path, udp_syslog.url).notify([incident], T0)
    msg = parse_syslog(udp_syslog.lines()[0])
    assert "|a\\|b = c \\\\ d next line|" in msg["msg"] and "\n" not in msg["msg"]
    assert "msg=a|b \\= c \\\\ d\\nnext\\rline" in msg["msg"]
    assert msg["params"]["id"] == "INC-x=1"
    header, ext = parse_cef(msg["msg"])
    assert header[5] == "a|b = c \\ d next line"  # header: no line breaks
    assert ext["msg"] == nasty and ext["dhost"] == "evil|x=y.example"
    assert ext["cs1"] == "INC-x=1" and len(header) == 7


@pytest.mark.parametrize(
    ("text", "header", "value"),
    [("a|b", "a\\|b", "a|b"), ("x=y", "x=y", "x\\=y"), ("c:\\t", "c:\\\\t", "c:\\\\t"),
     ("l1\nl2", "l1 l2", "l1\\nl2"), ("l1\r\nl2", "l1 l2", "l1\\nl2")],
)  # fmt: skip
def test_escaping_rules(text: str, header: str, value: str) -> None:
    assert header_escape(text) == header and value_escape(text) == value


def test_tcp_uses_octet_counting_one_connection_per_batch(
    tmp_path: Path, tcp_syslog: StreamSyslog
) -> None:
    incidents = [make_incident(id=f"INC-{i}", hosts=(f"10.1.2.{i}",)) for i in range(3)]
    sent = alerter(tmp_path, tcp_syslog.url).notify(incidents, T0)
    assert all(s.ok for s in sent) and len(sent) == 3
    frames = tcp_syslog.wait(3)
    assert sorted(parse_syslog(f)["params"]["id"] for f in frames) == ["INC-0", "INC-1", "INC-2"]
    assert all(parse_cef(parse_syslog(f)["msg"])[1]["src"].startswith("10.1.2.") for f in frames)
    assert tcp_syslog.connections == 1


def test_tls_verifies_the_receiver_against_the_ca_file(
    tmp_path: Path, tls_syslog: StreamSyslog, pki: Pki
) -> None:
    sent = alerter(tmp_path, tls_syslog.url, ca=pki.ca).notify([make_incident()], T0)
    assert [s.ok for s in sent] == [True]
    [frame] = tls_syslog.wait(1)
    assert parse_syslog(frame)["params"]["id"] == "INC-1a2b3c4d"
    assert tls_syslog.tls_versions and tls_syslog.tls_versions[0].startswith("TLSv1.")


def test_tls_refuses_a_receiver_the_ca_did_not_sign(tls_syslog: StreamSyslog) -> None:
    sink = SyslogSink.parse(tls_syslog.url, "local4", 2.0, None)  # system trust store
    alert = Alert(make_incident(), AlertKind.NEW, T0, T0)
    with pytest.raises(DeliveryError, match="CERTIFICATE_VERIFY_FAILED") as caught:
        sink.send([alert])
    assert caught.value.delivered == 0 and tls_syslog.frames == []


def test_an_update_says_what_changed(tmp_path: Path, udp_syslog: UdpSyslog) -> None:
    sender = alerter(tmp_path, udp_syslog.url)
    sender.notify([make_incident()], T0)
    grown = make_incident(score=90.0, destinations=("203.0.113.9", "198.51.100.7"),
                          kind=Kind.EXFILTRATION)  # fmt: skip
    sender.notify([grown], T0 + dt.timedelta(minutes=1))
    update = parse_syslog(udp_syslog.lines()[1])
    _, ext = parse_cef(update["msg"])
    assert update["params"]["activity"] == "update" and ext["act"] == "update"
    assert ext["msg"].endswith(
        "Update: severity: high -> critical; new destinations: 198.51.100.7."
    )


@pytest.mark.parametrize(
    ("url", "message"),
    [("syslog://x:514", "use udp://host:port"), ("udp://:514", "no host"),
     ("tcp://x:port", "use udp://host:port")],
)  # fmt: skip
def test_bad_urls_are_config_errors(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        SyslogSink.parse(url, "local4", 1.0, None)


def test_default_ports_and_ipv6_destination() -> None:
    assert SyslogSink.parse("tls://siem.example", "auth", 1.0, None).port == 6514
    sink = SyslogSink.parse("udp://[::1]", "auth", 1.0, None)
    assert (sink.host, sink.port, sink.facility) == ("::1", 514, 4)
    line = sink.line(Alert(make_incident(destinations=("2001:db8::5",)), AlertKind.NEW, T0, T0))
    _, ext = parse_cef(parse_syslog(line.decode())["msg"])
    assert ext["c6a3"] == "2001:db8::5" and "dst" not in ext

"""An alert as an ArcSight Common Event Format (CEF:0) record, the MSG of our syslog lines.

``CEF:0|hemostat|hemostat|0.1.0|exfiltration|<summary>|10|rt=... src=... dst=... out=...``

Header fields escape ``\\`` and ``|``; extension values escape ``\\``, ``=`` and line breaks
(``\\n``, ``\\r``). Keys: ``rt`` (alert time), ``start``/``end`` (the incident's span), ``src``
(first internal host), ``dst`` or ``dhost`` (first destination, an IPv4 address or a name;
IPv6 goes to ``c6a2``/``c6a3``), ``out`` (bytes out), ``act`` (new or update), ``cat``
(incident kind), ``cs1`` incident id, ``cs2`` ATT&CK ids, ``cs3`` detectors, ``cs4`` every host,
``cs5`` every destination, ``cs6`` console link, ``cfp1`` score, ``msg`` (summary and changes).
"""

from __future__ import annotations

import ipaddress

import hemostat
from hemostat.alerting.alert import Alert, epoch_ms
from hemostat.schema import Severity

#: CEF severity (0-10) of each hemostat severity
CEF_SEVERITY = {Severity.LOW: 3, Severity.MEDIUM: 5, Severity.HIGH: 8, Severity.CRITICAL: 10}


def header_escape(text: str) -> str:
    text = text.replace("\\", "\\\\").replace("|", "\\|")
    return " ".join(text.splitlines())


def value_escape(text: str) -> str:
    text = text.replace("\\", "\\\\").replace("=", "\\=")
    return text.replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\r")


def record(alert: Alert) -> str:
    """The CEF:0 record of ``alert``."""
    inc = alert.incident
    header = [
        "CEF:0", "hemostat", "hemostat", hemostat.__version__, str(inc.kind), inc.summary,
        str(CEF_SEVERITY[inc.severity]),
    ]  # fmt: skip
    pairs = " ".join(f"{key}={value_escape(value)}" for key, value in extensions(alert))
    return "|".join(header_escape(h) for h in header) + "|" + pairs


def extensions(alert: Alert) -> list[tuple[str, str]]:
    """The extension keys and (unescaped) values of ``alert``, in order."""
    inc = alert.incident
    pairs = [
        ("rt", str(epoch_ms(alert.at))), ("start", str(epoch_ms(inc.start))),
        ("end", str(epoch_ms(inc.end))), ("act", str(alert.kind)), ("cat", str(inc.kind)),
    ]  # fmt: skip
    if inc.hosts:
        pairs += _address("src", "shost", "c6a2", inc.hosts[0])
    if inc.destinations:
        pairs += _address("dst", "dhost", "c6a3", inc.destinations[0])
    pairs += [
        ("out", str(inc.bytes_out)),
        ("cs1Label", "incident"), ("cs1", inc.id),
        ("cs2Label", "attack"), ("cs2", ",".join(inc.attack)),
        ("cs3Label", "detectors"), ("cs3", ",".join(inc.detectors)),
        ("cs4Label", "hosts"), ("cs4", ",".join(inc.hosts)),
        ("cs5Label", "destinations"), ("cs5", ",".join(inc.destinations)),
    ]  # fmt: skip
    if alert.link:
        pairs += [("cs6Label", "console"), ("cs6", alert.link)]
    pairs += [("cfp1Label", "score"), ("cfp1", f"{inc.score:g}"), ("msg", message(alert))]
    return pairs


def message(alert: Alert) -> str:
    """The summary, followed for an update by what changed."""
    if not alert.changes:
        return alert.incident.summary
    return f"{alert.incident.summary} Update: {'; '.join(str(c) for c in alert.changes)}."


def _address(v4: str, name: str, v6: str, value: str) -> list[tuple[str, str]]:
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return [(name, value)]
    if address.version == 4:
        return [(v4, value)]
    label = "Source IPv6 Address" if v6 == "c6a2" else "Destination IPv6 Address"
    return [(f"{v6}Label", label), (v6, value)]

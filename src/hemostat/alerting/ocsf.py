"""An alert as an OCSF 1.4 Detection Finding (class 2004, category 2 Findings), the body of
our webhook posts. Times are OCSF ``timestamp_t``: milliseconds since 1970, UTC.

A new alert is activity 1 (Create), an update activity 2 (Update) with the same
``finding_info.uid`` (the incident id), so a SIEM can fold them into one finding.
Hemostat-only figures (score, bytes out, every host and destination, what changed) are
under ``unmapped.hemostat``.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import hemostat
from hemostat.alerting.alert import Alert, AlertKind, epoch_ms
from hemostat.alerting.cef import message
from hemostat.schema import Severity

OCSF_VERSION = "1.4.0"
CLASS_UID, CATEGORY_UID = 2004, 2
ACTIVITY = {AlertKind.NEW: (1, "Create"), AlertKind.UPDATE: (2, "Update")}
SEVERITY = {
    Severity.LOW: (2, "Low"), Severity.MEDIUM: (3, "Medium"), Severity.HIGH: (4, "High"),
    Severity.CRITICAL: (5, "Critical"),
}  # fmt: skip

#: tactics of the techniques hemostat names
TACTICS = {
    "TA0001": "Initial Access", "TA0008": "Lateral Movement", "TA0009": "Collection",
    "TA0010": "Exfiltration", "TA0011": "Command and Control",
}  # fmt: skip
#: ATT&CK technique id -> (name, tactic id) for every technique detectors and reports use
TECHNIQUES = {
    "T1041": ("Exfiltration Over C2 Channel", "TA0010"),
    "T1048": ("Exfiltration Over Alternative Protocol", "TA0010"),
    "T1048.002": ("Exfiltration Over Asymmetric Encrypted Non-C2 Protocol", "TA0010"),
    "T1048.003": ("Exfiltration Over Unencrypted Non-C2 Protocol", "TA0010"),
    "T1567": ("Exfiltration Over Web Service", "TA0010"),
    "T1567.002": ("Exfiltration to Cloud Storage", "TA0010"),
    "T1029": ("Scheduled Transfer", "TA0010"),
    "T1030": ("Data Transfer Size Limits", "TA0010"),
    "T1020": ("Automated Exfiltration", "TA0010"),
    "T1074": ("Data Staged", "TA0009"),
    "T1074.001": ("Local Data Staging", "TA0009"),
    "T1074.002": ("Remote Data Staging", "TA0009"),
    "T1560": ("Archive Collected Data", "TA0009"),
    "T1560.001": ("Archive via Utility", "TA0009"),
    "T1005": ("Data from Local System", "TA0009"),
    "T1039": ("Data from Network Shared Drive", "TA0009"),
    "T1213": ("Data from Information Repositories", "TA0009"),
    "T1530": ("Data from Cloud Storage", "TA0009"),
    "T1071": ("Application Layer Protocol", "TA0011"),
    "T1071.001": ("Web Protocols", "TA0011"),
    "T1071.004": ("DNS", "TA0011"),
    "T1573": ("Encrypted Channel", "TA0011"),
    "T1572": ("Protocol Tunneling", "TA0011"),
    "T1095": ("Non-Application Layer Protocol", "TA0011"),
    "T1133": ("External Remote Services", "TA0001"),
    "T1199": ("Trusted Relationship", "TA0001"),
    "T1078": ("Valid Accounts", "TA0001"),
    "T1021": ("Remote Services", "TA0008"),
    "T1021.001": ("Remote Desktop Protocol", "TA0008"),
    "T1021.002": ("SMB/Windows Admin Shares", "TA0008"),
}


def finding(alert: Alert) -> dict[str, Any]:
    """The Detection Finding of ``alert`` (a JSON-ready dict)."""
    inc = alert.incident
    activity_id, activity = ACTIVITY[alert.kind]
    severity_id, severity = SEVERITY[inc.severity]
    now = epoch_ms(alert.at)
    return {
        "class_uid": CLASS_UID, "class_name": "Detection Finding",
        "category_uid": CATEGORY_UID, "category_name": "Findings",
        "activity_id": activity_id, "activity_name": activity,
        "type_uid": CLASS_UID * 100 + activity_id, "type_name": f"Detection Finding: {activity}",
        "severity_id": severity_id, "severity": severity,
        "status_id": 1, "status": "New",
        "time": now, "start_time": epoch_ms(inc.start), "end_time": epoch_ms(inc.end),
        "is_alert": True,
        "risk_score": round(inc.score),
        "message": message(alert),
        "finding_info": _info(alert),
        "evidences": _evidences(inc.hosts, inc.destinations),
        "resources": [{"uid": h, "name": h, "type": "host"} for h in inc.hosts],
        "metadata": {
            "version": OCSF_VERSION,
            "uid": f"{inc.id}-{alert.kind}-{now}",
            "correlation_uid": inc.id,
            "product": {
                "name": "hemostat", "vendor_name": "hemostat", "version": hemostat.__version__,
            },
        },
        "unmapped": {"hemostat": _extra(alert)},
    }  # fmt: skip


def attack(technique: str) -> dict[str, Any]:
    """One ``attacks`` entry: technique (and sub-technique) with its tactic, names if known."""
    parent = technique.split(".")[0]
    entry: dict[str, Any] = {"technique": _named(parent, TECHNIQUES.get(parent, ("", ""))[0])}
    if technique != parent:
        entry["sub_technique"] = _named(technique, TECHNIQUES.get(technique, ("", ""))[0])
    tactic = TECHNIQUES.get(technique, TECHNIQUES.get(parent, ("", "")))[1]
    if tactic:
        entry["tactic"] = {"uid": tactic, "name": TACTICS[tactic]}
    return entry


def _info(alert: Alert) -> dict[str, Any]:
    inc = alert.incident
    info: dict[str, Any] = {
        "uid": inc.id, "title": alert.headline, "desc": message(alert), "types": [str(inc.kind)],
        "created_time": epoch_ms(alert.first_alerted), "modified_time": epoch_ms(alert.at),
        "first_seen_time": epoch_ms(inc.start), "last_seen_time": epoch_ms(inc.end),
        "attacks": [attack(t) for t in inc.attack],
    }  # fmt: skip
    analytics = [_analytic(d) for d in inc.detectors]
    if analytics:
        info["analytic"] = analytics[0]
        info["related_analytics"] = analytics[1:]
    if alert.link:
        info["src_url"] = alert.link
    return info


def _analytic(detector: str) -> dict[str, Any]:
    rule = detector == "threat_intel"  # a list match; every other detector measures
    return {"uid": detector, "name": detector, "type_id": 1 if rule else 3,
            "type": "Rule" if rule else "Statistical"}  # fmt: skip


def _evidences(hosts: tuple[str, ...], destinations: tuple[str, ...]) -> list[dict[str, Any]]:
    if not hosts:
        return [{"dst_endpoint": _endpoint(d)} for d in destinations]
    source = _endpoint(hosts[0])
    if not destinations:
        return [{"src_endpoint": source}]
    return [{"src_endpoint": source, "dst_endpoint": _endpoint(d)} for d in destinations]


def _endpoint(value: str) -> dict[str, str]:
    """An address as ``ip``, a domain as ``hostname``, a range (or anything else) as ``name``."""
    try:
        return {"ip": str(ipaddress.ip_address(value))}
    except ValueError:
        pass
    if "/" in value or " " in value:
        return {"name": value}
    return {"hostname": value}


def _named(uid: str, name: str) -> dict[str, str]:
    return {"uid": uid, "name": name} if name else {"uid": uid}


def _extra(alert: Alert) -> dict[str, Any]:
    inc = alert.incident
    return {
        "kind": str(inc.kind), "score": inc.score, "bytes_out": inc.bytes_out,
        "hosts": list(inc.hosts), "destinations": list(inc.destinations),
        "detectors": list(inc.detectors), "findings": list(inc.findings),
        "expected": list(inc.expected), "changes": [str(c) for c in alert.changes],
    }  # fmt: skip

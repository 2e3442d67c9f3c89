"""Webhook sink against a real HTTP receiver: the OCSF Detection Finding's shape and values,
the bearer token, retries of 5xx with backoff, no retry of a 4xx."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

import hemostat
from hemostat.alerting import Alerter
from hemostat.alerting.alert import Alert, AlertKind, DeliveryError
from hemostat.alerting.ocsf import attack
from hemostat.alerting.policy import Policy
from hemostat.alerting.state import Ledger
from hemostat.alerting.webhook import WebhookSink
from hemostat.errors import ConfigError

from .conftest import T0, Webhook, make_incident


def ms(ts: dt.datetime) -> int:
    return int(ts.timestamp() * 1000)


def sink(url: str, retries: int = 2, token: str | None = "tok-123") -> WebhookSink:  # noqa: S107
    return WebhookSink(url, token, timeout=2.0, retries=retries, backoff=0.01)


def test_body_is_an_ocsf_detection_finding(tmp_path: Path, webhook: Webhook) -> None:
    incident = make_incident(score=92.0, hosts=("10.1.2.3", "10.1.9.9"),
                             detectors=("egress_volume", "upload_ratio"))  # fmt: skip
    alerter = Alerter([sink(webhook.url)], Ledger(tmp_path / "s.json"), Policy(),
                      "https://soc.example/console/{id}/view")  # fmt: skip
    assert [s.ok for s in alerter.notify([incident], T0)] == [True]
    [post] = webhook.posts
    assert post["path"] == "/hooks/soc?key=s3cret"
    assert post["headers"]["Authorization"] == "Bearer tok-123"
    assert post["headers"]["Content-Type"] == "application/json"
    body = post["body"]
    assert {k: body[k] for k in ("class_uid", "category_uid", "activity_id", "type_uid",
                                 "severity_id", "severity", "time", "is_alert")} == {
        "class_uid": 2004, "category_uid": 2, "activity_id": 1, "type_uid": 200401,
        "severity_id": 5, "severity": "Critical", "time": ms(T0), "is_alert": True}  # fmt: skip
    info = body["finding_info"]
    assert info["uid"] == "INC-1a2b3c4d" and info["types"] == ["exfiltration"]
    assert info["title"] == "CRITICAL exfiltration on 10.1.2.3 (INC-1a2b3c4d)"
    assert info["desc"] == incident.summary
    assert info["first_seen_time"] == ms(incident.start)
    assert info["last_seen_time"] == ms(incident.end)
    assert info["created_time"] == ms(T0)
    assert info["analytic"] == {"uid": "egress_volume", "name": "egress_volume", "type_id": 3,
                                "type": "Statistical"}  # fmt: skip
    assert [a["name"] for a in info["related_analytics"]] == ["upload_ratio"]
    assert info["attacks"] == [
        {"technique": {"uid": "T1041", "name": "Exfiltration Over C2 Channel"},
         "tactic": {"uid": "TA0010", "name": "Exfiltration"}},
        {"technique": {"uid": "T1048", "name": "Exfiltration Over Alternative Protocol"},
         "sub_technique": {"uid": "T1048.003",
                           "name": "Exfiltration Over Unencrypted Non-C2 Protocol"},
         "tactic": {"uid": "TA0010", "name": "Exfiltration"}},
    ]  # fmt: skip
    assert info["src_url"] == "https://soc.example/console/INC-1a2b3c4d/view"
    assert body["evidences"] == [
        {"src_endpoint": {"ip": "10.1.2.3"}, "dst_endpoint": {"ip": "203.0.113.9"}}
    ]
    assert [r["uid"] for r in body["resources"]] == ["10.1.2.3", "10.1.9.9"]
    meta = body["metadata"]
    assert meta["version"].startswith("1.") and meta["correlation_uid"] == "INC-1a2b3c4d"
    assert meta["product"] == {"name": "hemostat", "vendor_name": "hemostat",
                               "version": hemostat.__version__}  # fmt: skip
    assert body["unmapped"]["hemostat"]["bytes_out"] == 100_000_000


def test_update_is_activity_2_with_the_same_uid(tmp_path: Path, webhook: Webhook) -> None:
    alerter = Alerter([sink(webhook.url)], Ledger(tmp_path / "s.json"))
    alerter.notify([make_incident()], T0)
    later = T0 + dt.timedelta(minutes=20)
    alerter.notify([make_incident(bytes_out=300_000_000, destinations=("files.example",))], later)
    first, update = webhook.accepted()
    assert (update["activity_id"], update["type_uid"], update["activity_name"]) == (
        2,
        200402,
        "Update",
    )
    assert update["finding_info"]["uid"] == first["finding_info"]["uid"]
    assert update["finding_info"]["created_time"] == ms(T0)
    assert update["finding_info"]["modified_time"] == ms(later)
    assert update["evidences"][0]["dst_endpoint"] == {"hostname": "files.example"}
    assert update["unmapped"]["hemostat"]["changes"] == [
        "bytes out: 100000000 -> 300000000",
        "new destinations: files.example",
    ]


def test_5xx_is_retried_then_delivered(webhook: Webhook) -> None:
    webhook.statuses = [503, 502]
    sink(webhook.url).send([Alert(make_incident(), AlertKind.NEW, T0, T0)])
    assert [p["status"] for p in webhook.posts] == [503, 502, 200]


def test_5xx_beyond_the_retries_is_a_delivery_error(webhook: Webhook) -> None:
    webhook.statuses = [500, 500, 500]
    with pytest.raises(DeliveryError, match="HTTP 500") as caught:
        sink(webhook.url, retries=1).send([Alert(make_incident(), AlertKind.NEW, T0, T0)])
    assert caught.value.delivered == 0 and len(webhook.posts) == 2


def test_4xx_is_not_retried_and_later_alerts_wait(webhook: Webhook) -> None:
    webhook.statuses = [200, 401]
    alerts = [Alert(make_incident(id=f"INC-{i}"), AlertKind.NEW, T0, T0) for i in range(3)]
    with pytest.raises(DeliveryError, match="HTTP 401 Unauthorized") as caught:
        sink(webhook.url).send(alerts)
    assert caught.value.delivered == 1 and len(webhook.posts) == 2


def test_name_hides_credentials_and_query() -> None:
    hook = WebhookSink("https://user:pw@soc.example:8443/in?key=secret")
    assert hook.name == "webhook:https://soc.example:8443/in" and "pw" not in repr(hook)
    assert "tok" not in repr(sink("http://x/"))


@pytest.mark.parametrize("url", ["ftp://x/", "soc.example/hook", "https:///x"])
def test_bad_urls_are_config_errors(url: str) -> None:
    with pytest.raises(ConfigError, match="use an https://"):
        WebhookSink.parse(url, None, 1.0, 2, None)


def test_unknown_technique_keeps_its_id() -> None:
    assert attack("T9999.001") == {"technique": {"uid": "T9999"},
                                   "sub_technique": {"uid": "T9999.001"}}  # fmt: skip

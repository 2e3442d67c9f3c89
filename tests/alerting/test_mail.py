"""Mail sink against a real SMTP server (aiosmtpd) that requires STARTTLS: the alert arrives
over TLS, after a login with the password file, with the subject the SOC filters on."""

from __future__ import annotations

import datetime as dt
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from hemostat import config
from hemostat.alerting import Alerter
from hemostat.alerting.alert import Alert, AlertKind, DeliveryError
from hemostat.alerting.mail import MailSink
from hemostat.alerting.policy import Policy, Snapshot
from hemostat.errors import ConfigError

from .conftest import T0, Pki, make_incident, write_settings


@dataclass
class Inbox:
    mails: list[dict[str, Any]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.mails.append({"tls": session.ssl is not None, "auth": session.authenticated,
                           "rcpt": list(envelope.rcpt_tos),
                           "msg": message_from_bytes(envelope.content, policy=policy.default)})  # fmt: skip
        return "250 OK"


def login(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"soc", b"pa55")
    return AuthResult(success=ok, handled=False)  # not handled: the server answers 535


def free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as sock:
        return int(sock.getsockname()[1])


@pytest.fixture
def smtp(pki: Pki) -> Iterator[tuple[Inbox, int]]:
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port,
                            tls_context=pki.server_context(), require_starttls=True,
                            authenticator=login, auth_require_tls=True)  # fmt: skip
    controller.start()
    yield inbox, port
    controller.stop()


@pytest.fixture
def plain_smtp() -> Iterator[tuple[Inbox, int]]:
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


def test_alert_arrives_over_starttls_after_login(
    tmp_path: Path, smtp: tuple[Inbox, int], pki: Pki
) -> None:
    inbox, port = smtp
    (tmp_path / "smtp-password").write_text("pa55\n")
    home = write_settings(tmp_path, f"""
[alerting]
mail_to = ["soc@hospital.example", "rssi@hospital.example"]
mail_from = "hemostat@hospital.example"
smtp_host = "127.0.0.1"
smtp_port = {port}
smtp_user = "soc"
smtp_password_file = "smtp-password"
smtp_ca_file = "{pki.ca}"
console_url = "https://soc.example"
""")  # fmt: skip
    alerter = Alerter.from_settings(config.load(home, environ={}), home)
    incident = make_incident(score=95.0, hosts=("dpi-db-01",))
    sent = alerter.notify([incident], T0)
    assert [(s.ok, s.sink) for s in sent] == [(True, f"mail:127.0.0.1:{port}")]
    [mail] = inbox.mails
    assert mail["tls"] and mail["auth"]
    assert mail["rcpt"] == ["soc@hospital.example", "rssi@hospital.example"]
    msg = mail["msg"]
    assert msg["Subject"] == "[hemostat] CRITICAL exfiltration on dpi-db-01 (INC-1a2b3c4d)"
    assert msg["From"] == "hemostat@hospital.example"
    body = msg.get_content()
    assert "Bytes out     100 MB (100000000)" in body
    assert "https://soc.example/incidents/INC-1a2b3c4d" in body and incident.summary in body


def test_update_threads_under_the_first_mail_in_french(smtp: tuple[Inbox, int], pki: Pki) -> None:
    inbox, port = smtp
    mail = MailSink(
        "127.0.0.1", ("soc@h.example",), port=port, user="soc", password="pa55",  # noqa: S106
        ca_file=pki.ca, language="fr",
    )  # fmt: skip
    first = Alert(make_incident(), AlertKind.NEW, T0, T0)
    grown = make_incident(score=90.0, bytes_out=300_000_000)
    changes = Policy().changes(Snapshot.of(first.incident, T0), grown)
    update = Alert(grown, AlertKind.UPDATE, T0 + dt.timedelta(minutes=3), T0, changes)
    mail.send([first, update])
    new, upd = (m["msg"] for m in inbox.mails)
    assert new["Subject"] == "[hemostat] ÉLEVÉE exfiltration sur 10.1.2.3 (INC-1a2b3c4d)"
    assert upd["Subject"].startswith("[hemostat] Mise à jour: CRITIQUE exfiltration sur")
    assert upd["In-Reply-To"] == new["Message-ID"] != upd["Message-ID"]
    body = upd.get_content()
    assert "- gravité: ÉLEVÉE -> CRITIQUE" in body
    assert "- volume sorti: 100 Mo -> 300 Mo" in body


def test_a_server_without_starttls_gets_nothing(plain_smtp: tuple[Inbox, int]) -> None:
    inbox, port = plain_smtp
    with pytest.raises(DeliveryError, match="does not offer STARTTLS") as caught:
        MailSink("127.0.0.1", ("soc@h.example",), port=port).send(
            [Alert(make_incident(), AlertKind.NEW, T0, T0)]
        )
    assert caught.value.delivered == 0 and inbox.mails == []


def test_a_wrong_password_is_a_delivery_error(smtp: tuple[Inbox, int], pki: Pki) -> None:
    inbox, port = smtp
    mail = MailSink(
        "127.0.0.1", ("soc@h.example",), port=port, user="soc", password="nope",  # noqa: S106
        ca_file=pki.ca,
    )  # fmt: skip
    with pytest.raises(DeliveryError, match="535"):
        mail.send([Alert(make_incident(), AlertKind.NEW, T0, T0)])
    assert inbox.mails == []


@pytest.mark.parametrize(
    ("text", "message"),
    [('mail_to = ["a@b"]\n', "smtp_host is empty"),
     ('mail_to = ["a@b"]\nsmtp_host = "x"\nsmtp_user = "u"\n', "set alerting.smtp_password_file"),
     ('mail_to = ["a@b"]\nsmtp_host = "x"\nsmtp_password_file = "nope"\n', "nope does not exist"),
     ('mail_to = ["a@b"]\nsmtp_host = "x"\nmail_language = "de"\n', "use en or fr")],
)  # fmt: skip
def test_mail_settings_are_checked(tmp_path: Path, text: str, message: str) -> None:
    home = write_settings(tmp_path, "[alerting]\n" + text)
    with pytest.raises(ConfigError, match=r"hemostat\.toml: .*" + message):
        Alerter.from_settings(config.load(home, environ={}), home)

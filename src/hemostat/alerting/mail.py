"""E-mail sink: plain-text alerts over SMTP, always with STARTTLS (a server that does not offer
it gets nothing: alerts name hosts and volumes and never travel in clear), logged in when
``smtp_user`` is set, in English or French (``mail_language``).

Subject: ``[hemostat] CRITICAL exfiltration on 10.1.2.3 (INC-1a2b3c4d)``; an update says so
and threads under the first alert (``In-Reply-To`` its ``Message-ID``).
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

import hemostat
from hemostat.alerting.alert import Alert, AlertKind, Change, DeliveryError, Delta
from hemostat.errors import ConfigError

#: every text of a mail, per language
WORDS: dict[str, dict[str, str]] = {
    "en": {
        "on": "on", "update": "Update", "new_title": "New incident", "update_title":
        "Incident update", "incident": "Incident", "severity": "Severity", "kind": "Kind",
        "hosts": "Hosts", "destinations": "Destinations", "bytes_out": "Bytes out",
        "period": "Period", "to": "to", "detectors": "Detectors", "console": "Console",
        "summary": "Summary", "changes": "What changed", "new": "new", "score": "score",
        "footer": "Sent by hemostat {version} at {at}. Another mail follows only if the "
        "incident grows (severity, hosts, destinations, detectors, or twice the bytes).",
        "low": "LOW", "medium": "MEDIUM", "high": "HIGH", "critical": "CRITICAL",
    },
    "fr": {
        "on": "sur", "update": "Mise à jour", "new_title": "Nouvel incident", "update_title":
        "Mise à jour d'incident", "incident": "Incident", "severity": "Gravité",
        "kind": "Nature", "hosts": "Machines", "destinations": "Destinations",
        "bytes_out": "Volume sorti", "period": "Période", "to": "à",
        "detectors": "Détecteurs", "console": "Console", "summary": "Résumé (en anglais)",
        "changes": "Ce qui a changé", "new": "nouveaux", "score": "score",
        "footer": "Envoyé par hemostat {version} le {at}. Un autre message ne suit que si "
        "l'incident s'aggrave (gravité, machines, destinations, détecteurs, ou volume doublé).",
        "low": "FAIBLE", "medium": "MOYENNE", "high": "ÉLEVÉE", "critical": "CRITIQUE",
        "exfiltration": "exfiltration", "dns_tunnel": "tunnel DNS",
        "c2": "canal de commande", "staging": "préparation de données",
        "third_party_access": "accès d'un tiers", "data_access": "accès aux données",
        "threat_intel": "adresse malveillante connue", "severity_change": "gravité",
        "bytes_out_change": "volume sorti", "hosts_change": "machines",
        "destinations_change": "destinations", "detectors_change": "détecteurs",
    },
}  # fmt: skip
_UNITS = {"en": ("B", "kB", "MB", "GB", "TB"), "fr": ("o", "ko", "Mo", "Go", "To")}


@dataclass(frozen=True, slots=True)
class MailSink:
    host: str
    recipients: tuple[str, ...]
    sender: str = "hemostat@localhost"
    port: int = 587
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: Path | None = None
    timeout: float = 5.0
    language: str = "en"

    def __post_init__(self) -> None:
        if self.language not in WORDS:
            raise ConfigError(f"alerting.mail_language {self.language!r}: use en or fr")
        if not self.host:
            raise ConfigError("alerting.mail_to is set but alerting.smtp_host is empty")
        if self.user and not self.password:
            raise ConfigError("alerting.smtp_user is set: set alerting.smtp_password_file too")

    @property
    def name(self) -> str:
        return f"mail:{self.host}:{self.port}"

    def send(self, alerts: Sequence[Alert]) -> None:
        delivered = 0
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                smtp.ehlo()
                if not smtp.has_extn("starttls"):
                    raise DeliveryError(0, f"{self.name}: the server does not offer STARTTLS")
                smtp.starttls(context=ssl.create_default_context(cafile=self.ca_file))
                smtp.ehlo()
                if self.user and self.password:
                    smtp.login(self.user, self.password)
                for alert in alerts:
                    smtp.send_message(self.message(alert))
                    delivered += 1
        except OSError as exc:  # smtplib.SMTPException and ssl.SSLError are OSErrors
            raise DeliveryError(delivered, f"{self.name}: {exc}") from exc

    def message(self, alert: Alert) -> EmailMessage:
        w, inc = WORDS[self.language], alert.incident
        msg = EmailMessage()
        thread = f"<{inc.id}.{int(alert.first_alerted.timestamp())}@hemostat>"
        if alert.kind is AlertKind.NEW:
            msg["Message-ID"] = thread
        else:
            msg["Message-ID"] = make_msgid(inc.id, "hemostat")
            msg["In-Reply-To"] = msg["References"] = thread
        prefix = f"{w['update']}: " if alert.kind is AlertKind.UPDATE else ""
        where = inc.hosts[0] if inc.hosts else "?"
        msg["Subject"] = (
            f"[hemostat] {prefix}{w[inc.severity]} {w.get(inc.kind, inc.kind)} {w['on']} "
            f"{where} ({inc.id})"
        )
        msg["From"], msg["To"] = self.sender, ", ".join(self.recipients)
        msg["Date"] = format_datetime(alert.at)
        msg.set_content(self.body(alert))
        return msg

    def body(self, alert: Alert) -> str:
        w, inc, lang = WORDS[self.language], alert.incident, self.language
        rows = [
            (w["incident"], inc.id),
            (w["severity"], f"{w[inc.severity]} ({w['score']} {inc.score:g})"),
            (w["kind"], w.get(inc.kind, inc.kind)),
            (w["hosts"], ", ".join(inc.hosts)),
            (w["destinations"], ", ".join(inc.destinations)),
            (w["bytes_out"], f"{_size(inc.bytes_out, lang)} ({inc.bytes_out})"),
            (w["period"], f"{_when(inc.start)} {w['to']} {_when(inc.end)}"),
            (w["detectors"], ", ".join(inc.detectors)),
            ("ATT&CK", ", ".join(inc.attack)),
        ]
        if alert.link:
            rows.append((w["console"], alert.link))
        width = max(len(k) for k, _ in rows) + 2
        title = w["update_title"] if alert.kind is AlertKind.UPDATE else w["new_title"]
        lines = [f"{title}: {alert.headline}", ""]
        lines += [f"{k:<{width}}{v}" for k, v in rows]
        lines += ["", f"{w['summary']}:", inc.summary]
        if alert.changes:
            lines += ["", f"{w['changes']}:", *(f"- {self.change(c)}" for c in alert.changes)]
        footer = w["footer"].format(version=hemostat.__version__, at=_when(alert.at))
        return "\n".join([*lines, "", footer, ""])

    def change(self, delta: Delta) -> str:
        w, lang = WORDS[self.language], self.language
        label = w.get(f"{delta.what.name.lower()}_change", str(delta.what))
        if delta.what is Change.BYTES_OUT and delta.before is not None:
            return f"{label}: {_size(int(delta.before), lang)} -> {_size(int(delta.after), lang)}"
        if delta.what is Change.SEVERITY and delta.before is not None:
            return f"{label}: {w[delta.before]} -> {w[delta.after]}"
        if delta.before is None:
            return f"{label} ({w['new']}): {delta.after}"
        return f"{label}: {delta.before} -> {delta.after}"


def _size(value: int, lang: str) -> str:
    n, step, units = float(value), 0, _UNITS[lang]
    while n >= 1000 and step < len(units) - 1:
        n, step = n / 1000, step + 1
    text = f"{n:.0f}" if step == 0 or n >= 10 else f"{n:.1f}"
    return f"{text.replace('.', ',') if lang == 'fr' else text} {units[step]}"


def _when(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")

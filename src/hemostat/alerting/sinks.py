"""The sinks the ``[alerting]`` settings ask for, checked: syslog and webhook URLs, the mail
recipients; secrets are read from their files, relative paths are under HOME."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from hemostat.alerting.alert import Sink
from hemostat.alerting.mail import MailSink
from hemostat.alerting.syslog import SyslogSink
from hemostat.alerting.webhook import WebhookSink
from hemostat.config import Settings
from hemostat.errors import ConfigError


def configured(settings: Settings, home: Path) -> list[Sink]:
    """Every sink of ``settings`` (none when nothing is set)."""
    sinks = _sinks(settings, home)
    names = [s.name for s in sinks]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError(f"[alerting] lists {twice[0]} twice")
    return sinks


def _sinks(settings: Settings, home: Path) -> list[Sink]:
    def get(name: str) -> Any:
        return settings.get("alerting", name)

    timeout = float(get("timeout"))
    if timeout <= 0:
        raise ConfigError(f"alerting.timeout {timeout}: use a number of seconds above 0")
    sinks: list[Sink] = []
    ca_file = _file(home, get("syslog_ca_file"), "syslog_ca_file")
    for url in get("syslog"):
        sinks.append(SyslogSink.parse(url, get("syslog_facility"), timeout, ca_file))
    token_file = _file(home, get("webhook_token_file"), "webhook_token_file")
    token = read_secret(token_file, "webhook_token_file") if token_file else None
    ca_file = _file(home, get("webhook_ca_file"), "webhook_ca_file")
    for url in get("webhook"):
        sinks.append(WebhookSink.parse(url, token, timeout, get("webhook_retries"), ca_file))
    if get("mail_to"):
        sinks.append(_mail(get, home, timeout))
    return sinks


def _mail(get: Callable[[str], Any], home: Path, timeout: float) -> MailSink:
    password_file = _file(home, get("smtp_password_file"), "smtp_password_file")
    password = read_secret(password_file, "smtp_password_file") if password_file else None
    return MailSink(
        host=get("smtp_host"),
        recipients=tuple(get("mail_to")),
        sender=get("mail_from"),
        port=get("smtp_port"),
        user=get("smtp_user") or None,
        password=password,
        ca_file=_file(home, get("smtp_ca_file"), "smtp_ca_file"),
        timeout=timeout,
        language=get("mail_language"),
    )


def read_secret(path: Path, setting: str) -> str:
    """The first line of a secret file (a token, a password)."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"alerting.{setting}: cannot read {path}: {exc.strerror}") from exc
    if not text:
        raise ConfigError(f"alerting.{setting}: {path} is empty")
    return text.splitlines()[0]


def _file(home: Path, value: str, setting: str) -> Path | None:
    """The file a setting names (relative to ``home``), which must exist; None when empty."""
    if not value:
        return None
    path = Path(value).expanduser()
    path = path if path.is_absolute() else home / path
    if not path.is_file():
        raise ConfigError(f"alerting.{setting}: {path} does not exist")
    return path

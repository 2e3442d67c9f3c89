"""Settings: ``hemostat.toml`` in the home directory, then ``HEMOSTAT_*`` environment variables.

Every setting is declared as data with its default and help (``SETTINGS`` below and the
fields of each detector), so ``hemostat config`` and docs/detection.md list them all.

```toml
[detect]
history_days = 28              # baseline look-back
disabled = ["threat_intel"]    # detectors not to run

[detect.egress_volume]         # any detector's thresholds, by field name
min_bytes = 100_000_000

[incidents]
min_score = 50
```

Environment: ``HEMOSTAT_DETECT__HISTORY_DAYS=14``, ``HEMOSTAT_DETECT__EGRESS_VOLUME__MIN_BYTES=…``
(sections and keys joined by double underscores) override the file.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from hemostat.errors import ConfigError

FILE_NAME = "hemostat.toml"

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Setting:
    section: str
    name: str
    default: Any
    help: str


#: every non-detector setting, with its default and meaning
SETTINGS = (
    Setting("detect", "history_days", 28, "Days of history baselines are computed from."),
    Setting("detect", "disabled", [], "Detector ids not to run."),
    Setting("detect", "memory_limit", "3GB",
            "DuckDB's memory limit while detecting (it spills to disk beyond it)."),
    Setting("incidents", "min_score", 50.0,
            "A group of findings becomes an incident when its score reaches this (0-100)."),
    Setting("incidents", "link_gap_hours", 12.0,
            "Findings further apart in time than this are not grouped into one incident."),
    Setting("incidents", "expected_factor", 0.5,
            "Score multiplier for findings matching an inventory expected transfer."),
    Setting("scope", "lead_hours", 6.0,
            "How long before the incident data may have been gathered: lineage and reads are "
            "looked for that far back."),
    Setting("scope", "tail_hours", 1.0,
            "Slices of egress connections still open at the window's end are followed this long."),
    Setting("scope", "max_hops", 4, "Lineage is followed back at most this many hops."),
    Setting("scope", "hop_share", 0.2,
            "An internal transfer is lineage when it carried at least this share of what the "
            "next hop sent on."),
    Setting("scope", "min_hop_bytes", 1_000_000, "Smaller internal transfers are not lineage."),
    Setting("scope", "focus_share", 0.2,
            "A host is followed further back only when at least this share of all it gave "
            "inside the network in the period went to the next hop (a server that feeds "
            "everyone is listed, not followed)."),
    Setting("scope", "max_compression", 4.0,
            "Largest ratio of raw data to bytes that left believed possible (an archive of a "
            "dump is smaller than the dump)."),
    Setting("scope", "bulk_share", 0.005,
            "A read is evidence when it took at least this share of its table (or data store), "
            "or was made by an account the incident's findings name."),
    # alerting (issue 6): sinks, de-duplication, updates; docs/alerting.md. Files are
    # relative to HOME.
    Setting("alerting", "min_severity", "medium",
            "Incidents below this severity (low, medium, high, critical) are not alerted."),
    Setting("alerting", "update_factor", 2.0,
            "An incident already alerted is alerted again (an update) when its bytes out grew "
            "by this factor, or it gained hosts, destinations or detectors."),
    Setting("alerting", "update_minutes", 15.0,
            "An update waits until this many minutes after the last alert about the incident "
            "to the same sink, unless the incident's severity rose."),
    Setting("alerting", "timeout", 5.0,
            "Seconds a sink may take to connect or to answer before it counts as down."),
    Setting("alerting", "console_url", "",
            "Base URL of the hemostat console: alerts then link to URL/incidents/<id> (or to "
            "the URL with '{id}' replaced by the incident id)."),
    Setting("alerting", "syslog", [],
            "Syslog receivers of RFC 5424 lines with a CEF payload: udp://host:514, "
            "tcp://host:601 (octet counting) or tls://host:6514."),
    Setting("alerting", "syslog_facility", "local4",
            "Syslog facility of the alerts: auth, authpriv, daemon, audit, local0 ... local7."),
    Setting("alerting", "syslog_ca_file", "",
            "CA certificate (PEM) tls:// syslog receivers are verified against; empty: the "
            "system's trust store."),
    Setting("alerting", "webhook", [],
            "URLs (https://, or http:// on a trusted network) that receive every alert as an "
            "OCSF Detection Finding in a JSON POST."),
    Setting("alerting", "webhook_token_file", "",
            "File holding a token sent to the webhooks as 'Authorization: Bearer <token>'."),
    Setting("alerting", "webhook_retries", 2,
            "Retries of a webhook POST after a 5xx or 429 answer or a network error (waiting "
            "0.5 s, then 1 s, ...)."),
    Setting("alerting", "webhook_ca_file", "",
            "CA certificate (PEM) https webhooks are verified against; empty: the system's "
            "trust store."),
    Setting("alerting", "mail_to", [], "E-mail addresses that receive every alert."),
    Setting("alerting", "mail_from", "hemostat@localhost", "Sender address of alert mails."),
    Setting("alerting", "mail_language", "en", "Language of alert mails: en or fr."),
    Setting("alerting", "smtp_host", "",
            "SMTP server that relays alert mails; it must offer STARTTLS."),
    Setting("alerting", "smtp_port", 587, "Port of smtp_host (submission)."),
    Setting("alerting", "smtp_user", "", "SMTP login; empty: no login."),
    Setting("alerting", "smtp_password_file", "", "File holding the password of smtp_user."),
    Setting("alerting", "smtp_ca_file", "",
            "CA certificate (PEM) the SMTP server is verified against; empty: the system's "
            "trust store."),
    # collector (issue 6): hemostat serve; docs/collector.md
    Setting("server", "detect_interval", 10.0,
            "Seconds between live detection passes over newly received rows (0: no live "
            "detection)."),
    Setting("server", "max_body_bytes", 8 * 1024 * 1024,
            "Largest compressed ingest request body accepted (larger: 413)."),
    Setting("server", "max_decompressed_bytes", 64 * 1024 * 1024,
            "Largest ingest body once decompressed (larger: 413)."),
    Setting("server", "max_rows", 100_000,
            "Most rows (flows, dns, access and raw lines together) in one batch (more: 413)."),
    Setting("server", "rate", 10.0,
            "Ingest requests per second allowed per agent, on average (more: 429)."),
    Setting("server", "burst", 20, "Ingest requests an agent may send at once above the rate."),
    Setting("server", "queue_rows", 1_000_000,
            "Rows acknowledged but not yet in the store beyond which batches are refused with "
            "503 and Retry-After (the agents keep them in their spool)."),
    Setting("server", "group_rows", 200_000,
            "Most rows the writer appends in one transaction (several batches together)."),
    Setting("server", "agent_interval", 5.0,
            "Sampling interval (seconds) the collector gives agents in their configuration."),
    Setting("server", "batch_days", 14,
            "Days the ids of stored batches are kept to recognise a batch sent again."),
    # agent (issue 6): hemostat agent; read from its --config file ([agent] only) and
    # HEMOSTAT_AGENT__* variables; docs/agent.md
    Setting("agent", "batch_seconds", 5.0,
            "Seconds between two batches put in the agent's spool (sooner when one is full)."),
    Setting("agent", "batch_max_rows", 20_000,
            "Most flow rows and raw log lines in one batch (the collector takes 100,000)."),
    Setting("agent", "heartbeat_seconds", 60.0,
            "With nothing to report, an empty batch (the agent's stats) this often."),
    Setting("agent", "spool_max_bytes", 256 * 1024 * 1024,
            "Disk the spool may use; beyond it the oldest batches are dropped (and counted)."),
    Setting("agent", "spool_max_batches", 20_000,
            "Batches the spool may hold; beyond it the oldest are dropped (and counted)."),
    Setting("agent", "backoff_max_seconds", 60.0,
            "Longest wait between two tries to reach the collector (exponential backoff)."),
    Setting("agent", "config_seconds", 300.0,
            "Seconds between two fetches of the agent's configuration from the collector."),
    Setting("agent", "audit_log", "/var/log/audit/audit.log",
            "auditd's log, followed for the read watches the collector asks for."),
    # containment (issue 7): hemostat contain / release; docs/containment.md
    Setting("contain", "lookback_minutes", 60,
            "The dry-run lists the flows of this many minutes (ending at the newest flow in "
            "the store) that the rules would stop."),
    Setting("contain", "selftest_port", 8443,
            "After --apply, a TCP connection to each management address on this port must "
            "still open, else the rules are rolled back; 0 skips the self-test."),
    Setting("contain", "selftest_timeout", 3.0, "Seconds the self-test waits for the collector."),
    Setting("contain", "name_ttl", 600,
            "Seconds an address of a blocked name stays blocked unless a refresh resolves the "
            "name to it again."),
    # response (issue 7): containment through the collector; docs/containment.md
    Setting("respond", "auto", [],
            "Automatic response rules 'kind:min_severity:action' (e.g. "
            "'exfiltration:critical:host'; kind '*' for any; action 'host' isolates the "
            "incident's internal hosts). Empty: no automatic response."),
    Setting("respond", "auto_ttl", "",
            "Time to live of automatic isolations (e.g. '4h'); empty: until released."),
    Setting("respond", "auto_recent_minutes", 60,
            "Only incidents whose activity ended less than this long ago are acted on."),
    # dashboard (issue 9): the SOC pages hemostat serve shows; docs/dashboard.md
    Setting("dashboard", "session_idle_minutes", 30,
            "A dashboard session unused this long ends (the analyst logs in again)."),
    Setting("dashboard", "session_hours", 12,
            "A dashboard session ends this long after its login, used or not."),
    Setting("dashboard", "language", "",
            "Language of the pages (fr or en) before a user picks one; empty: French for a "
            "French site (inventory timezone), else English."),
)  # fmt: skip


@dataclass(frozen=True)
class Settings:
    path: Path | None = None
    values: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def get(self, section: str, name: str) -> Any:
        setting = next(s for s in SETTINGS if (s.section, s.name) == (section, name))
        return self.values.get(section, {}).get(name, setting.default)

    @property
    def min_score(self) -> float:
        return float(self.get("incidents", "min_score"))

    @property
    def link_gap_hours(self) -> float:
        return float(self.get("incidents", "link_gap_hours"))

    @property
    def expected_factor(self) -> float:
        return float(self.get("incidents", "expected_factor"))

    @property
    def memory_limit(self) -> str:
        value = str(self.get("detect", "memory_limit"))
        if not re.fullmatch(r"\d+(\.\d+)?\s*[KMGT]i?B", value):
            raise ConfigError(f"{self.path or 'settings'}: detect.memory_limit: use e.g. '3GB'")
        return value

    @property
    def history_days(self) -> int:
        return int(self.get("detect", "history_days"))

    def enabled(self) -> list[str]:
        from hemostat.detect import DETECTORS

        disabled = set(self.get("detect", "disabled"))
        return [name for name in DETECTORS if name not in disabled]

    def detector(self, cls: type[T]) -> T:
        """An instance of the detector ``cls`` with this configuration's thresholds."""
        overrides = dict(self.values.get("detect", {}).get(cls.id, {}))  # type: ignore[attr-defined]
        defaults = {f.name: f.default for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        for name, value in overrides.items():
            if isinstance(defaults.get(name), tuple) and isinstance(value, list):
                overrides[name] = tuple(value)
        return cls(**overrides)


def load(home: Path | None, environ: Mapping[str, str] | None = None) -> Settings:
    """Read ``home/hemostat.toml`` (if any) and ``HEMOSTAT_*`` overrides; validate every key."""
    path = None if home is None else Path(home) / FILE_NAME
    values: dict[str, Any] = {}
    if path is not None and path.exists():
        try:
            values = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    for key, text in (os.environ if environ is None else environ).items():
        if key.startswith("HEMOSTAT_") and "__" in key:
            parts = key.removeprefix("HEMOSTAT_").lower().split("__")
            node = values
            for part in parts[:-1]:
                node = node.setdefault(part, {})
            node[parts[-1]] = _from_env(text)
    return Settings(path, _validate(values, str(path or "settings")))


def _from_env(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _validate(values: dict[str, Any], where: str) -> dict[str, Any]:
    from hemostat.detect import DETECTORS

    known = {(s.section, s.name): s for s in SETTINGS}
    for section, table in values.items():
        if section not in {s.section for s in SETTINGS}:
            raise ConfigError(f"{where}: unknown section [{section}]")
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: [{section}] must be a table")
        for name, value in table.items():
            if section == "detect" and name in DETECTORS:
                _check_detector(DETECTORS[name], value, where)
            elif (section, name) not in known:
                raise ConfigError(f"{where}: unknown setting {section}.{name}")
            elif not _same_type(value, known[section, name].default):
                raise ConfigError(
                    f"{where}: {section}.{name} must be like {known[section, name].default!r}"
                )
    disabled = values.get("detect", {}).get("disabled", [])
    unknown = [d for d in disabled if d not in DETECTORS]
    if unknown:
        raise ConfigError(f"{where}: detect.disabled: unknown detector(s) {', '.join(unknown)}")
    return values


def _check_detector(cls: type, value: Any, where: str) -> None:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: [detect.{cls.id}] must be a table")  # type: ignore[attr-defined]
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for name, given in value.items():
        if name not in fields:
            raise ConfigError(
                f"{where}: detect.{cls.id}.{name}: unknown threshold; "  # type: ignore[attr-defined]
                f"known: {', '.join(fields)}"
            )
        default = fields[name].default
        if default is not dataclasses.MISSING and not _same_type(given, default):
            raise ConfigError(
                f"{where}: detect.{cls.id}.{name} must be like {default!r}"  # type: ignore[attr-defined]
            )


def _same_type(value: Any, default: Any) -> bool:
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, int | float) and not isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, list | tuple):
        return isinstance(value, list)
    return default is None or isinstance(value, type(default))

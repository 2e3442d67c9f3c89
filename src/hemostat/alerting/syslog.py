"""Syslog sink: RFC 5424 lines whose MSG is a CEF record, over UDP (RFC 5426, one line per
datagram), TCP (RFC 6587 octet counting: ``<length> <line>``) or TLS (RFC 5425, octet
counting; the server is verified against ``syslog_ca_file`` or the system's trust store).

``<PRI>1 TIMESTAMP HOSTNAME hemostat PROCID incident [hemostat@32473 ...] CEF:0|...``

PRI is the facility times 8 plus the syslog severity of the incident (critical 2, high 3,
medium 4, low 5). The structured data element ``hemostat@32473`` (the enterprise number
RFC 5612 reserves for documentation; hemostat has none of its own) repeats the incident's
id, kind, severity, score and whether the alert is new or an update.
"""

from __future__ import annotations

import enum
import os
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from hemostat.alerting import cef
from hemostat.alerting.alert import Alert, DeliveryError
from hemostat.errors import ConfigError
from hemostat.schema import Severity, utc_text

FACILITIES = {
    "kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6, "news": 7,
    "uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11, "ntp": 12, "audit": 13, "alert": 14,
    "clock": 15, **{f"local{i}": 16 + i for i in range(8)},
}  # fmt: skip
#: RFC 5424 severity of each hemostat severity
SEVERITY = {Severity.CRITICAL: 2, Severity.HIGH: 3, Severity.MEDIUM: 4, Severity.LOW: 5}
SD_ID = "hemostat@32473"


class Transport(enum.StrEnum):
    UDP = "udp"
    TCP = "tcp"
    TLS = "tls"


DEFAULT_PORTS = {Transport.UDP: 514, Transport.TCP: 601, Transport.TLS: 6514}


@dataclass(frozen=True, slots=True)
class SyslogSink:
    url: str
    transport: Transport
    host: str
    port: int
    facility: int = FACILITIES["local4"]
    timeout: float = 5.0
    ca_file: Path | None = None
    hostname: str = socket.gethostname()

    @classmethod
    def parse(cls, url: str, facility: str, timeout: float, ca_file: Path | None) -> SyslogSink:
        """A sink for ``udp://host:port``, ``tcp://host:port`` or ``tls://host:port``."""
        parts = urlsplit(url)
        try:
            transport = Transport(parts.scheme)
            port = parts.port or DEFAULT_PORTS[transport]
        except ValueError:
            raise ConfigError(
                f"alerting.syslog {url!r}: use udp://host:port, tcp://host:port or tls://host:port"
            ) from None
        if not parts.hostname:
            raise ConfigError(f"alerting.syslog {url!r}: no host")
        if facility not in FACILITIES:
            names = ", ".join(FACILITIES)
            raise ConfigError(f"alerting.syslog_facility {facility!r}: use one of {names}")
        return cls(url, transport, parts.hostname, port, FACILITIES[facility], timeout, ca_file)

    @property
    def name(self) -> str:
        return f"syslog:{self.url}"

    def line(self, alert: Alert) -> bytes:
        """The RFC 5424 line of ``alert``."""
        inc = alert.incident
        pri = self.facility * 8 + SEVERITY[inc.severity]
        params = {
            "id": inc.id, "kind": str(inc.kind), "severity": str(inc.severity),
            "score": f"{inc.score:g}", "activity": str(alert.kind),
        }  # fmt: skip
        sd = " ".join(f'{k}="{_sd_escape(v)}"' for k, v in params.items())
        head = f"<{pri}>1 {utc_text(alert.at)} {_token(self.hostname, 255)} hemostat {os.getpid()}"
        return f"{head} incident [{SD_ID} {sd}] {cef.record(alert)}".encode()

    def send(self, alerts: Sequence[Alert]) -> None:
        lines = [self.line(a) for a in alerts]
        delivered = 0
        try:
            if self.transport is Transport.UDP:
                delivered = self._send_udp(lines)
                return
            with self._connect() as sock:
                for line in lines:
                    sock.sendall(b"%d %s" % (len(line), line))
                    delivered += 1
        except OSError as exc:
            raise DeliveryError(delivered, f"{self.name}: {_reason(exc)}") from exc

    def _send_udp(self, lines: list[bytes]) -> int:
        family, kind, proto, _, address = socket.getaddrinfo(
            self.host, self.port, type=socket.SOCK_DGRAM
        )[0]
        with socket.socket(family, kind, proto) as sock:
            for line in lines:
                sock.sendto(line, address)
        return len(lines)

    def _connect(self) -> socket.socket:
        sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        if self.transport is Transport.TCP:
            return sock
        context = ssl.create_default_context(cafile=self.ca_file)
        try:
            return context.wrap_socket(sock, server_hostname=self.host)
        except OSError:
            sock.close()
            raise


def _sd_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def _token(text: str, limit: int) -> str:
    """A header field: printable US-ASCII, no spaces, ``-`` when empty."""
    clean = "".join(c for c in text if 33 <= ord(c) <= 126)[:limit]
    return clean or "-"


def _reason(exc: OSError) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    return exc.strerror or str(exc) or type(exc).__name__

"""Real receivers on 127.0.0.1 for the alert sinks (syslog over UDP, TCP and TLS, an HTTP
webhook, an SMTP server with STARTTLS), a test CA made with ``cryptography``, incidents."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import re
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from hemostat.schema import Incident, Kind

T0 = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)
WAIT = 5.0  # seconds a receiver waits for what the test expects


def make_incident(**changes: Any) -> Incident:
    values: dict[str, Any] = {
        "id": "INC-1a2b3c4d", "kind": Kind.EXFILTRATION, "score": 70.0,
        "hosts": ("10.1.2.3",), "destinations": ("203.0.113.9",),
        "start": T0 - dt.timedelta(minutes=20), "end": T0 - dt.timedelta(minutes=1),
        "bytes_out": 100_000_000, "detectors": ("egress_volume",),
        "attack": ("T1041", "T1048.003"),
        "summary": "10.1.2.3 sent 100 MB to 203.0.113.9, far above its history.",
        "findings": ("F-1",),
    }  # fmt: skip
    values.update(changes)
    return Incident(**values)


# ---- test CA ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    ca: Path
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A CA and a server certificate for 127.0.0.1 and localhost, as PEM files."""
    out = tmp_path_factory.mktemp("pki")
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)

    def name(text: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])

    def builder(subject: str, public: Any) -> x509.CertificateBuilder:
        return (
            x509.CertificateBuilder().subject_name(name(subject)).issuer_name(name("test CA"))
            .public_key(public).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=1))
        )  # fmt: skip

    ca = (
        builder("test CA", ca_key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                       critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    sans = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (
        builder("localhost", key.public_key())
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                       critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    pem = serialization.Encoding.PEM
    (out / "ca.pem").write_bytes(ca.public_bytes(pem))
    (out / "server.pem").write_bytes(cert.public_bytes(pem))
    (out / "server-key.pem").write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return Pki(out / "ca.pem", out / "server.pem", out / "server-key.pem")


# ---- syslog receivers ------------------------------------------------------------------


class UdpSyslog:
    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"udp://127.0.0.1:{self.sock.getsockname()[1]}"

    def lines(self) -> list[str]:
        """Every datagram received so far (loopback delivers before ``sendto`` returns)."""
        out = []
        self.sock.setblocking(False)
        while True:
            try:
                out.append(self.sock.recv(65535).decode())
            except BlockingIOError:
                return out


@dataclass
class StreamSyslog:
    """A TCP (or TLS) syslog server reading RFC 6587 octet-counted frames."""

    context: ssl.SSLContext | None = None
    frames: list[str] = field(default_factory=list)
    tls_versions: list[str] = field(default_factory=list)
    connections: int = 0
    changed: threading.Condition = field(default_factory=threading.Condition)

    def __post_init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        scheme = "tls" if self.context else "tcp"
        self.url = f"{scheme}://127.0.0.1:{self.server.getsockname()[1]}"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self.connections += 1
            try:
                if self.context:
                    conn = self.context.wrap_socket(conn, server_side=True)
                with conn:
                    self._read(conn)
            except (OSError, ValueError):
                conn.close()

    def _read(self, conn: socket.socket) -> None:
        if isinstance(conn, ssl.SSLSocket):
            self.tls_versions.append(str(conn.version()))
        stream = conn.makefile("rb")
        while True:
            length = b""
            while (c := stream.read(1)) not in (b" ", b""):
                length += c
            if not length:
                return
            frame = stream.read(int(length))
            with self.changed:
                self.frames.append(frame.decode())
                self.changed.notify_all()

    def wait(self, count: int) -> list[str]:
        with self.changed:
            self.changed.wait_for(lambda: len(self.frames) >= count, timeout=WAIT)
        return list(self.frames)

    def close(self) -> None:
        self.server.close()


@pytest.fixture
def udp_syslog() -> Iterator[UdpSyslog]:
    receiver = UdpSyslog()
    yield receiver
    receiver.sock.close()


@pytest.fixture
def tcp_syslog() -> Iterator[StreamSyslog]:
    receiver = StreamSyslog()
    yield receiver
    receiver.close()


@pytest.fixture
def tls_syslog(pki: Pki) -> Iterator[StreamSyslog]:
    receiver = StreamSyslog(pki.server_context())
    yield receiver
    receiver.close()


SYSLOG = re.compile(
    r"<(?P<pri>\d{1,3})>1 (?P<ts>\S+) (?P<host>\S+) (?P<app>\S+) (?P<procid>\S+) "
    r"(?P<msgid>\S+) \[(?P<sd>(?:[^\]\\]|\\.)*)\] (?P<msg>.*)",
    re.DOTALL,
)


def parse_syslog(line: str) -> dict[str, Any]:
    """An RFC 5424 line: its header fields, its SD params (unescaped) and its MSG."""
    match = SYSLOG.fullmatch(line)
    assert match, line
    sd_id, _, params = match["sd"].partition(" ")
    sd = {
        k: re.sub(r"\\(.)", r"\1", v) for k, v in re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', params)
    }
    return {**match.groupdict(), "pri": int(match["pri"]), "sd_id": sd_id, "params": sd}


def parse_cef(text: str) -> tuple[list[str], dict[str, str]]:
    """A CEF record: its 7 header fields and its extensions, both unescaped."""
    fields, rest = [], text
    for _ in range(7):
        match = re.match(r"((?:[^|\\]|\\.)*)\|", rest)
        assert match, rest
        fields.append(re.sub(r"\\([\\|])", r"\1", match[1]))
        rest = rest[match.end() :]
    unescape = {"\\\\": "\\", "\\=": "=", "\\n": "\n", "\\r": "\r"}
    ext = {}
    for key, value in re.findall(r"(\w+)=((?:[^\\=]|\\.)*?)(?= \w+=|$)", rest):
        ext[key] = re.sub(r"\\[\\=nr]", lambda m: unescape[m[0]], value)
    return fields, ext


# ---- webhook receiver ------------------------------------------------------------------


@dataclass
class Webhook:
    """An HTTP server that records POSTs and answers with ``statuses`` (then 200)."""

    statuses: list[int] = field(default_factory=list)
    posts: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = hook.statuses.pop(0) if hook.statuses else 200
                hook.posts.append(
                    {
                        "status": status,
                        "path": self.path,
                        "headers": dict(self.headers),
                        "body": json.loads(body),
                    }
                )
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/soc?key=s3cret"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def accepted(self) -> list[dict[str, Any]]:
        return [p["body"] for p in self.posts if p["status"] < 300]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    receiver = Webhook()
    yield receiver
    receiver.close()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections (backlog) and never answers: a hung server."""
    with socket.create_server(("127.0.0.1", 0), backlog=8) as sock:
        yield sock.getsockname()[1]


@pytest.fixture
def closed_port() -> int:
    """A port nobody listens on: connections are refused."""
    with socket.create_server(("127.0.0.1", 0)) as sock:
        return int(sock.getsockname()[1])


def write_settings(home: Path, text: str) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    (home / "hemostat.toml").write_text(text)
    return home


Factory = Callable[..., Incident]

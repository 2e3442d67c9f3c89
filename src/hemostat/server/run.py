"""``hemostat serve``: the collector under uvicorn, one process, the writer thread inside.

The listening socket is bound (and listening) before the store is opened, so an address in
use is said at once; HTTPS uses the site PKI (``pki.server_certificate``), plain HTTP only on
loopback (tests). SIGTERM or SIGINT: uvicorn stops taking requests, then the writer drains
its queue and the store is closed.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from pathlib import Path

import uvicorn

from hemostat import config
from hemostat.errors import ConfigError
from hemostat.server import pki
from hemostat.server.app import create_app
from hemostat.server.collector import Collector

#: seconds open requests (long polls) get to finish once a stop is asked for
GRACE = 3


def parse_bind(bind: str) -> tuple[str, int]:
    """``ADDR:PORT`` (``[::1]:8443`` for IPv6) as (host, port); port 0 picks a free one."""
    host, sep, port = bind.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ConfigError(f"--bind {bind!r}: use ADDR:PORT, e.g. 0.0.0.0:8443 or [::]:8443")
    return host, int(port)


def listen(host: str, port: int) -> socket.socket:
    try:
        family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    return sock


def serve(
    home: Path, bind: str, insecure_http: bool = False, metrics_open: bool = False,
    announce: Callable[[str], None] | None = None,
) -> None:  # fmt: skip
    """Run the collector until SIGTERM/SIGINT; ``announce`` is told where it listens once
    it is ready."""
    host, port = parse_bind(bind)
    if insecure_http and not _loopback(host):
        raise ConfigError("--insecure-http is for tests on loopback only; run hemostat init "
                          "and serve HTTPS")  # fmt: skip
    tls = None if insecure_http else pki.server_certificate(home, host)
    settings = config.load(home)
    sock = listen(host, port)
    port = sock.getsockname()[1]
    collector = Collector(home, settings)
    try:
        collector.start()
    except BaseException:
        sock.close()
        raise
    scheme = "http" if tls is None else "https"
    shown = f"[{host}]" if ":" in host else host
    where = f"{scheme}://{shown}:{port}"

    def ready(_: Collector) -> None:
        if announce:
            announce(where if tls is None else f"{where} (agents pin {tls.ca})")

    app = create_app(home, settings, metrics_open, ready, collector)
    server = uvicorn.Server(uvicorn.Config(
        app, lifespan="on", workers=1, timeout_graceful_shutdown=GRACE, server_header=False,
        ssl_certfile=str(tls.cert) if tls else None, ssl_keyfile=str(tls.key) if tls else None,
        log_level="info",
    ))  # fmt: skip
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"

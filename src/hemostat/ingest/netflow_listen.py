"""Live NetFlow v5/v9 and IPFIX over UDP: the collector behind ``hemostat ingest --listen``.

Routers, firewalls and probes (``softflowd``, ``nprobe``, ``ipt_NETFLOW``) export to it;
templates are kept per exporter (source address, version, source id / observation domain).
A data set that arrives before its template waits ``pending_seconds`` for it (exporters
resend templates every few seconds to minutes) and is counted as ``waiting`` if none comes.
Flows are appended in batches, one transaction each, under one ``ingests`` entry per
listening session (format ``netflow_listen``).

``Collector`` is the network-free part (datagrams in, rows out); ``listen`` adds the socket
and the store.
"""

from __future__ import annotations

import ipaddress
import socket
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from threading import Event

from hemostat.errors import IngestError
from hemostat.ingest import netflow_wire as wire
from hemostat.ingest.netflow import Rows
from hemostat.ingest.reader import Columns
from hemostat.schema import Table
from hemostat.store import Store

FORMAT = "netflow_listen"
DEFAULT_BIND = "udp://127.0.0.1:2055"
MAX_PENDING = 10_000  # data sets waiting for a template, all exporters together
_BATCH = 20_000  # rows that trigger a flush before flush_seconds
_RCVBUF = 4 << 20


@dataclass
class ListenStats:
    """What a listening session has seen so far."""

    packets: int = 0
    flows: int = 0  # rows stored
    undecodable: int = 0  # not an export packet, or a malformed one
    waiting: int = 0  # data sets dropped: their template did not come in time
    implausible: int = 0  # records with impossible values
    batches: int = 0
    exporters: set[str] = field(default_factory=set)
    skipped: Counter[str] = field(default_factory=Counter)

    @property
    def bad(self) -> int:
        return self.undecodable + self.waiting + self.implausible


class Collector:
    """Export datagrams in, canonical flow rows out: template state per exporter, and data
    sets kept until their template arrives (or ``pending_seconds`` pass)."""

    def __init__(
        self, pending_seconds: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.state = wire.Exporters()
        self.rows = Rows()
        self.stats = ListenStats()
        self.pending_seconds = pending_seconds
        self.clock = clock
        self._pending: list[tuple[float, wire.DataSet]] = []

    def receive(self, payload: bytes, exporter: str) -> None:
        self.stats.packets += 1
        self.stats.exporters.add(exporter)
        try:
            decoded = wire.decode(payload, exporter, self.state, self.stats.packets)
        except wire.DecodeError:
            self.stats.undecodable += 1
            return
        self.stats.undecodable += bool(decoded.errors)
        self.stats.implausible += self.rows.add(decoded, exporter, self.state)
        deadline = self.clock() + self.pending_seconds
        self._pending += [(deadline, data) for data in decoded.missing]
        if decoded.templates and self._pending:
            self._retry()
        if len(self._pending) > MAX_PENDING:
            self.stats.waiting += len(self._pending) - MAX_PENDING
            del self._pending[: len(self._pending) - MAX_PENDING]

    def _retry(self) -> None:
        still = []
        for deadline, data in self._pending:
            if self.state.template(data.key, data.template_id) is None:
                still.append((deadline, data))
                continue
            decoded = wire.Decoded(data.header)
            wire.decode_set(data, self.state, decoded)
            self.stats.implausible += self.rows.add(decoded, data.key[0], self.state)
        self._pending = still

    @property
    def pending(self) -> int:
        return len(self._pending)

    def expire(self, everything: bool = False) -> None:
        """Give up on data sets whose template did not come in time."""
        now = self.clock()
        kept = [(d, s) for d, s in self._pending if not everything and d > now]
        self.stats.waiting += len(self._pending) - len(kept)
        self._pending = kept

    def take(self) -> Columns:
        """The rows decoded since the last call."""
        self.stats.skipped.update(self.rows.skipped)
        self.rows.skipped.clear()
        return self.rows.take()


def parse_bind(bind: str) -> tuple[str, int]:
    """``udp://HOST:PORT`` (also ``HOST:PORT``, ``[::1]:PORT``, ``:PORT``) → (host, port)."""
    rest = bind.removeprefix("udp://")
    if "://" in rest:
        raise IngestError(Path(bind), None, "only udp:// is supported, e.g. udp://0.0.0.0:2055")
    host, sep, port = rest.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise IngestError(Path(bind), None, "expected udp://HOST:PORT, e.g. udp://0.0.0.0:2055")
    return host.strip("[]") or "0.0.0.0", int(port)  # noqa: S104 (the user asked for it)


def listen(
    store: Store,
    bind: str = DEFAULT_BIND,
    stop: Event | None = None,
    max_packets: int | None = None,
    flush_seconds: float = 1.0,
    pending_seconds: float = 60.0,
    on_flush: Callable[[ListenStats], None] | None = None,
) -> ListenStats:
    """Receive export packets on ``bind`` and append their flows to ``store`` until ``stop``
    is set, ``max_packets`` were received, or Ctrl-C; returns the session's counts.

    Raises ``IngestError`` when the address cannot be bound.
    """
    host, port = parse_bind(bind)
    sock = _socket(bind, host, port, timeout=min(flush_seconds, 0.25))
    collector = Collector(pending_seconds)
    with store.transaction():
        ingest_id = store.begin_ingest(bind, f"listen:{uuid.uuid4()}", FORMAT)
    last = time.monotonic()
    try:
        while not (stop is not None and stop.is_set()):
            if max_packets is not None and collector.stats.packets >= max_packets:
                break
            _receive(sock, collector)
            now = time.monotonic()
            if now - last >= flush_seconds or len(collector.rows.columns) >= _BATCH:
                collector.expire()
                _flush(store, ingest_id, collector, on_flush)
                last = now
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
        collector.expire(everything=True)
        _flush(store, ingest_id, collector, on_flush)
        _record(store, ingest_id, collector.stats)  # bad packets after the last rows count too
    return collector.stats


def _socket(bind: str, host: str, port: int, timeout: float) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RCVBUF)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise IngestError(Path(bind), None, f"cannot listen on {host}:{port}: {exc.strerror}; "
                          "is another collector using the port?") from exc  # fmt: skip
    sock.settimeout(timeout)
    return sock


def _receive(sock: socket.socket, collector: Collector) -> None:
    try:
        payload, address = sock.recvfrom(65535)
    except TimeoutError:
        return
    collector.receive(payload, _exporter(address[0]))


def _exporter(address: str) -> str:
    """The exporter's address as stored: IPv4-mapped IPv6 as IPv4, no zone index."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


def _flush(
    store: Store,
    ingest_id: int,
    collector: Collector,
    on_flush: Callable[[ListenStats], None] | None,
) -> None:
    columns, stats = collector.take(), collector.stats
    if not len(columns):
        return
    with store.transaction():
        stats.flows += store.append(Table.FLOWS, columns.arrow(), ingest_id)
        _record(store, ingest_id, stats)
    stats.batches += 1
    if on_flush is not None:
        on_flush(stats)


def _record(store: Store, ingest_id: int, stats: ListenStats) -> None:
    store.finish_ingest(
        ingest_id, {Table.FLOWS: stats.flows}, stats.bad, sum(stats.skipped.values())
    )

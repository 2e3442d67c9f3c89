"""NetFlow v5/v9 and IPFIX: flow records mapped to canonical ``flows`` rows, and the readers
of captured export packets — raw UDP payloads back to back (``.dat``) or a pcap of the export
traffic. Live export over UDP is ``netflow_listen``; the wire format is ``netflow_wire``.

Records are unidirectional (one per direction of a connection): ``bytes_out``/``pkts_out``
are what the record's source sent (IN_BYTES / octetDeltaCount: IP packets, headers included)
and ``bytes_in``/``pkts_in`` stay NULL, except where the exporter reports both directions
(ASA NSEL initiator/responder octets, RFC 5103 reverse elements of YAF and biflow probes).
Counters are multiplied by the sampling interval when the exporter announces one.

The templates of a capture may sit in another file (``*_tpl.dat`` beside ``*_data.dat``):
data that no template of its own file explains is decoded with the templates of the other
parts of the same capture in its directory (see ``netflow_capture``). Line numbers in errors
are packet numbers. docs/formats/netflow.md has the field-by-field mapping.
"""

from __future__ import annotations

import ipaddress
import socket
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import duckdb

from hemostat.ingest import netflow_capture as capture
from hemostat.ingest import netflow_wire as wire
from hemostat.ingest.reader import Columns, Log, Reader
from hemostat.schema import PROTO_NAMES, Sample, Table

_NTP_OFFSET = 2_208_988_800  # seconds from 1900 (NTP era 0) to 1970
_REVERSE = 29305  # RFC 5103: the same element ids under this enterprise = reverse direction
_BATCH = 50_000
#: NSEL (ASA) firewall events: 1 = flow created (totals follow at deletion), 3 = denied
_FW_EVENT, _FW_EVENT_OLD, _CREATED, _DELETED, _DENIED = 233, 40005, 1, 2, 3
_TCP_FIN, _TCP_SYN, _TCP_RST, _TCP_ACK = 0x01, 0x02, 0x04, 0x10
_MAX_US = 4_102_444_800_000_000  # 2100-01-01
_MAX_SKEW_US = 3_600_000_000  # a start after the end by more than this is not a clock jitter


def _int(record: wire.Record, eid: int, pen: int = 0) -> int | None:
    raw = record.get((pen, eid))
    return int.from_bytes(raw, "big") if raw else None


def _first(record: wire.Record, *eids: int, pen: int = 0) -> int | None:
    for eid in eids:
        if (value := _int(record, eid, pen)) is not None:
            return value
    return None


def _address(record: wire.Record, v4: int, v6: int) -> str | None:
    """The IPv4 or IPv6 address; a template with both zeroes the one not in use."""
    found = None
    for eid, size in ((v4, 4), (v6, 16)):
        raw = record.get((0, eid))
        if raw is not None and len(raw) == size and (found is None or any(raw)):
            found = socket.inet_ntoa(raw) if size == 4 else str(ipaddress.IPv6Address(raw))
    return found


def _abs_us(record: wire.Record, seconds: int, millis: int, micro: int, nano: int) -> int | None:
    """An absolute time (µs since the epoch) from whichever IPFIX encoding is present."""
    if (ms := _int(record, millis)) is not None:
        return ms * 1000
    if (s := _int(record, seconds)) is not None:
        return s * 1_000_000
    for eid in (micro, nano):  # NTP format: seconds since 1900, 32-bit fraction
        if (ntp := _int(record, eid)) is not None:
            return ((ntp >> 32) - _NTP_OFFSET) * 1_000_000 + ((ntp & 0xFFFFFFFF) * 1_000_000 >> 32)
    return None


def _since_uptime(now_ms: int, uptime_ms: int, at_ms: int) -> int:
    """Epoch µs of sysUptime ``at_ms``, given the uptime at export (32-bit wrap allowed)."""
    ago = (uptime_ms - at_ms) & 0xFFFFFFFF
    if ago >= 1 << 31:  # a record stamped slightly after the export header
        ago -= 1 << 32
    return (now_ms - ago) * 1000


def _stamps(
    record: wire.Record, header: wire.Header, options: wire.Record
) -> tuple[int | None, int | None]:
    """Start and end (µs) as the record states them: absolute, sysUpTime, or before export."""
    start, end = _abs_us(record, 150, 152, 154, 156), _abs_us(record, 151, 153, 155, 157)
    first, last = _int(record, 22), _int(record, 21)
    init = _int(record, 160) or _int(options, 160)
    if start is None and first is not None:
        start = _uptime_us(first, header, init, last)
    if end is None and last is not None:
        end = _uptime_us(last, header, init, last)
    export_us = header.export_ms * 1000
    if start is None and (delta := _int(record, 158)) is not None:
        start = export_us - delta
    if end is None and (delta := _int(record, 159)) is not None:
        end = export_us - delta
    return start, end


def times(record: wire.Record, header: wire.Header, options: wire.Record) -> tuple[int, int]:
    """``(start, end)`` in µs since the epoch, UTC; a missing one from the duration, the
    event time (firewalls), the other one, or the export time."""
    start, end = _stamps(record, header, options)
    millis = _int(record, 161)
    duration = millis * 1000 if millis is not None else _int(record, 162)
    if duration is not None and start is not None and end is None:
        end = start + duration
    elif duration is not None and end is not None and start is None:
        start = end - duration
    observed = _abs_us(record, 322, 323, 324, 325)  # firewalls: the time of the event
    if start is None:
        start = end if end is not None else observed or header.export_ms * 1000
    if end is None:
        end = observed if observed is not None and observed >= start else start
    return start, end


def _uptime_us(at: int, header: wire.Header, init: int | None, last: int | None) -> int:
    """Epoch µs of a sysUpTime stamp: from the v5/v9 header, the IPFIX exporter's init time
    (systemInitTimeMilliseconds) or, lacking both, taking the flow's end as the export time."""
    if header.uptime_ms is not None:
        return _since_uptime(header.export_ms, header.uptime_ms, at)
    if init is not None:  # unsigned 32-bit ms since init: take the wrap nearest the export
        base = init + at
        return (base + round((header.export_ms - base) / (1 << 32)) * (1 << 32)) * 1000
    return (header.export_ms - ((last if last is not None else at) - at)) * 1000


def _sampling(record: wire.Record, header: wire.Header, options: wire.Record) -> int:
    """Packets on the wire per packet counted: v9 samplingInterval, PSAMP interval and space
    (count 1 packet every interval + space), v5's header; from the record or the options."""
    for source in (record, options):
        if interval := _first(source, 34, 50):
            return interval
        if interval := _int(source, 305):
            return (interval + (_int(source, 306) or 0)) // interval
    return header.sampling


def _ports(record: wire.Record, proto: int | None) -> tuple[int | None, int | None]:
    """Source and destination ports; ICMP type and code in their place (as Zeek does)."""
    sport, dport = _int(record, 7), _int(record, 11)
    if proto not in (1, 58):
        return sport, dport
    if (icmp_type := _first(record, 176, 178)) is not None:
        return icmp_type, _first(record, 177, 179)
    type_code = _first(record, 32, 139)
    if type_code is None and not sport and dport:
        type_code = dport  # v5 and many v9 exporters put type << 8 | code in the port
    return (type_code >> 8, type_code & 0xFF) if type_code is not None else (sport, dport)


def _counter(
    record: wire.Record, deltas: tuple[int, ...], total: int, event: int | None
) -> int | None:
    """A delta counter; the flow total instead when a firewall's flow-deleted event reports
    no delta (the bytes since the last update) but a total."""
    delta, overall = _first(record, *deltas), _int(record, total)
    if overall is not None and (delta is None or (not delta and event == _DELETED)):
        return overall
    return delta


def conn_state(proto: int | None, flags: int | None, event: int | None) -> str | None:
    """A rough Zeek ``conn_state`` from the TCP flags seen in one direction."""
    if event == _DENIED:
        return "REJ"
    if proto != 6 or flags is None:
        return None
    syn, ack, fin, rst = (bool(flags & f) for f in (_TCP_SYN, _TCP_ACK, _TCP_FIN, _TCP_RST))
    if syn and rst:
        return "RSTO"
    if syn and fin:
        return "SF"
    if syn:
        return "S1" if ack else "S0"
    return "OTH"  # no SYN: mid-connection (an active-timeout slice) or a stray packet


def flow_row(
    record: wire.Record, header: wire.Header, exporter: str, options: wire.Record
) -> dict[str, Any] | None:
    """The canonical ``flows`` row of one data record; None for a record without
    addresses (layer-2 flows) or a firewall's empty flow-created event (its counts come at
    deletion)."""
    src, dst = _address(record, 8, 27), _address(record, 12, 28)
    event = _first(record, _FW_EVENT, _FW_EVENT_OLD)
    octets = _counter(record, (1, 231, 23), 85, event)
    if src is None or dst is None or (event == _CREATED and not octets):
        return None
    proto = _int(record, 4)
    sport, dport = _ports(record, proto)
    start, end = times(record, header, options)
    scale = _sampling(record, header, options)
    flow_id = _int(record, 148)
    return {
        "ts": start, "end_ts": end, "src_ip": src, "src_port": sport, "dst_ip": dst,
        "dst_port": dport, "proto": None if proto is None else PROTO_NAMES.get(proto, str(proto)),
        "bytes_out": _scaled(scale, octets),
        "pkts_out": _scaled(scale, _counter(record, (2, 298, 24), 86, event)),
        "bytes_in": _scaled(scale, _reverse(record, 232, (1, 85))),
        "pkts_in": _scaled(scale, _reverse(record, 299, (2, 86))),
        "conn_state": conn_state(proto, _int(record, 6), event),
        "conn_id": None if flow_id is None else f"{exporter or 'nf'}:{header.domain}:{flow_id}",
        "host": exporter or None, "source": "netflow" if header.version < 10 else "ipfix",
    }  # fmt: skip


def _reverse(record: wire.Record, responder: int, reverse: tuple[int, ...]) -> int | None:
    """The other direction's counter: NSEL responder octets, or RFC 5103 reverse elements."""
    value = _int(record, responder)
    return value if value is not None else _first(record, *reverse, pen=_REVERSE)


def _scaled(scale: int, value: int | None) -> int | None:
    return None if value is None else value * scale


def plausible(row: dict[str, Any]) -> bool:
    """False for values no real flow has (a record decoded with another exporter's template,
    or an exporter with a broken clock): they would not fit the store's columns either."""
    ports = (row["src_port"], row["dst_port"])
    counters = (row["bytes_out"], row["bytes_in"], row["pkts_out"], row["pkts_in"])
    return (
        all(p is None or 0 <= p <= 0xFFFF for p in ports)
        and all(c is None or 0 <= c < 1 << 62 for c in counters)
        and 0 <= row["ts"] <= row["end_ts"] + _MAX_SKEW_US
        and row["end_ts"] < _MAX_US
    )


class Rows:
    """Canonical rows of decoded packets, with what was left out counted in ``log``-style
    counters (used by the file readers and the listener alike)."""

    def __init__(self) -> None:
        self.columns = Columns(Table.FLOWS)
        self.skipped: Counter[str] = Counter()

    def add(self, decoded: wire.Decoded, exporter: str, state: wire.Exporters) -> int:
        """Add the flows of ``decoded``; returns how many records had implausible values."""
        key = (exporter, decoded.header.version, decoded.header.domain)
        options, implausible = state.options.get(key, {}), 0
        for record in decoded.flows:
            row = flow_row(record, decoded.header, exporter, options)
            if row is None:
                self.skipped["records without IP addresses, or empty flow-created events"] += 1
            elif not plausible(row):
                implausible += 1
            else:
                self.columns.add(**row)
        if decoded.options:
            self.skipped["options records"] += len(decoded.options)
        if decoded.templates:
            self.skipped["templates"] += decoded.templates
        return implausible

    def take(self) -> Columns:
        taken, self.columns = self.columns, Columns(Table.FLOWS)
        return taken


class NetflowCapture(Reader):
    """Raw export packets (UDP payloads) back to back, as a collector or ``nc`` saved them."""

    id: ClassVar[str] = "netflow"
    description: ClassVar[str] = "NetFlow v5/v9 or IPFIX export packets (raw UDP payloads)"
    tables: ClassVar[tuple[Table, ...]] = (Table.FLOWS,)

    def sniff(self, sample: Sample) -> bool:
        return capture.looks_like_export(sample.head)

    @staticmethod
    def packets(path: Path, log: Log) -> Iterator[capture.Datagram]:
        return capture.raw_packets(path, log)

    def read(
        self, path: Path, con: duckdb.DuckDBPyConnection, log: Log
    ) -> Iterator[tuple[Table, Any]]:
        state, rows, missing = wire.Exporters(), Rows(), []
        for number, (exporter, payload) in enumerate(self.packets(path, log), 1):
            try:
                decoded = wire.decode(payload, exporter, state, number)
            except wire.DecodeError as exc:
                log.bad_line(number, str(exc))
                continue
            for error in decoded.errors:
                log.bad_line(number, error)
            _implausible(log, number, rows.add(decoded, exporter, state))
            missing += decoded.missing
            if len(rows.columns) >= _BATCH:
                yield Table.FLOWS, rows.take().arrow()
        for data in self._late(path, missing, state, log):
            decoded = wire.Decoded(data.header)
            wire.decode_set(data, state, decoded)
            _implausible(log, data.packet, rows.add(decoded, data.key[0], state))
        for reason, n in rows.skipped.items():
            log.skip(reason, n)
        if len(rows.columns):
            yield Table.FLOWS, rows.take().arrow()

    def _late(
        self, path: Path, missing: list[wire.DataSet], state: wire.Exporters, log: Log
    ) -> Iterator[wire.DataSet]:
        """Data sets that came before their template: in this file, or in a sibling."""
        waiting = [d for d in missing if state.template(d.key, d.template_id) is None]
        yield from (d for d in missing if state.template(d.key, d.template_id) is not None)
        for sibling in capture.siblings(path, self.sniff) if waiting else ():
            if capture.adopt(state, capture.templates_of(sibling, self.packets), waiting):
                yield from (d for d in waiting if state.template(d.key, d.template_id))
                waiting = [d for d in waiting if state.template(d.key, d.template_id) is None]
            if not waiting:
                return
        for d in waiting:
            who = f"{d.key[0] or 'the exporter'} (domain {d.key[2]})"
            log.bad_line(d.packet, f"data set skipped: no template {d.template_id} from {who} "
                         "in this file or beside it; ingest its template with it")  # fmt: skip


def _implausible(log: Log, packet: int, count: int) -> None:
    if count:
        log.bad_line(packet, f"{count} record(s) with impossible ports, counters or times")


class NetflowPcap(NetflowCapture):
    """A pcap of NetFlow/IPFIX export traffic: each UDP datagram is one export packet and its
    IP source names the exporter. Sniffed before the generic pcap reader: a pcap qualifies
    only when every UDP payload at its start parses as an export packet."""

    id: ClassVar[str] = "netflow_pcap"
    description: ClassVar[str] = "pcap of NetFlow v5/v9 or IPFIX export traffic"

    def sniff(self, sample: Sample) -> bool:
        return capture.looks_like_export_pcap(sample.head)

    @staticmethod
    def packets(path: Path, log: Log) -> Iterator[capture.Datagram]:
        return capture.pcap_packets(path, log)

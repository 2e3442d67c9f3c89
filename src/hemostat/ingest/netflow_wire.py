"""NetFlow v5, v9 and IPFIX export packets on the wire, and the template state of exporters.

A packet decodes into ``Record`` dicts keyed by ``(enterprise number, element id)`` whose
values are the raw field bytes: v9 and IPFIX share the IANA element numbers (v9's 1-127 are
IPFIX's), and v5's fixed record is mapped onto the same numbers, so one mapping serves all.

Templates are kept per exporter: ``(exporter address, version, source id / observation
domain)``. A data set whose template is not known yet is returned as a ``DataSet`` so that
the caller can decode it once the template arrives (a later packet or another file).

The ``netflow`` package on PyPI is not used: it loses unknown v9 field types, cannot read
enterprise, variable-length or reduced-size IPFIX fields, and raises on padded sets.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

FieldKey = tuple[int, int]  # (private enterprise number, element id); 0 = IANA / Cisco
Record = dict[FieldKey, bytes]
ExporterKey = tuple[str, int, int]  # (exporter address or "", version, domain)

VARLEN = 0xFFFF  # IPFIX variable-length field
VERSIONS = (5, 9, 10)
_V5_RECORD = struct.Struct(">4s4s4s2s2s4s4s4s4s2s2sx1s1s1s2s2s1s1s2x")
#: the v5 record's fields, as the element ids v9 and IPFIX give them
_V5_IDS = (8, 12, 15, 10, 14, 2, 1, 22, 21, 7, 11, 6, 4, 5, 16, 17, 9, 13)
_V5_MAX = 30


class DecodeError(ValueError):
    """An export packet that cannot be decoded; the message says what is wrong with it."""


@dataclass(frozen=True, slots=True)
class Header:
    version: int
    export_ms: int  # export time, milliseconds since the epoch
    uptime_ms: int | None  # v5/v9 sysUptime at export time; IPFIX has none
    domain: int  # v9 source id, IPFIX observation domain, v5 engine type/id
    sequence: int
    sampling: int = 1  # v5 header sampling interval (1 = every packet)


@dataclass(frozen=True, slots=True)
class Template:
    id: int
    fields: tuple[tuple[FieldKey, int], ...]  # (key, length); VARLEN for variable
    scope: int = 0  # leading scope fields: > 0 for an options template

    @property
    def min_length(self) -> int:
        return sum(1 if n == VARLEN else n for _, n in self.fields)


@dataclass(frozen=True, slots=True)
class DataSet:
    """A data set kept until the template it refers to is known."""

    key: ExporterKey
    header: Header
    template_id: int
    body: bytes
    packet: int  # ordinal of its packet in the input, for messages


@dataclass
class Decoded:
    """What one export packet holds."""

    header: Header
    flows: list[Record] = field(default_factory=list)
    options: list[Record] = field(default_factory=list)
    templates: int = 0
    missing: list[DataSet] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class Exporters:
    """Template state of every exporter, and the option values it last sent (sampling
    interval, system init time). One instance per file set or per listener."""

    def __init__(self) -> None:
        self.templates: dict[ExporterKey, dict[int, Template]] = {}
        self.options: dict[ExporterKey, Record] = {}

    def template(self, key: ExporterKey, template_id: int) -> Template | None:
        return self.templates.get(key, {}).get(template_id)

    def learn(self, key: ExporterKey, template: Template) -> None:
        known = self.templates.setdefault(key, {})
        if template.fields:
            known[template.id] = template
        else:  # IPFIX template withdrawal
            known.pop(template.id, None)


def split(buffer: bytes) -> Iterator[bytes]:
    """The export packets of a buffer holding one or several back to back."""
    offset = 0
    while offset < len(buffer):
        if buffer[offset : offset + 2] == b"\0\0" and not any(buffer[offset:]):
            return  # zero padding after the last packet
        length = _packet_length(buffer, offset)
        yield buffer[offset : offset + length]
        offset += length


def _packet_length(buf: bytes, off: int) -> int:
    if len(buf) - off < 4:
        raise DecodeError(f"{len(buf) - off} stray byte(s) at offset {off}")
    version, count = (int(v) for v in struct.unpack_from(">HH", buf, off))
    if version == 5:
        return min(24 + 48 * count, len(buf) - off)
    if version == 10:
        if count < 16:
            raise DecodeError(f"IPFIX message length {count} is shorter than its header")
        return count
    if version != 9:
        raise DecodeError(f"not a NetFlow/IPFIX packet at offset {off} (version {version})")
    pos = off + 20
    while pos + 4 <= len(buf):
        set_id, set_len = struct.unpack_from(">HH", buf, pos)
        if set_id in VERSIONS and pos + 20 <= len(buf):
            return pos - off  # a reserved set id: the next packet starts here
        if set_len < 4:
            break  # padding or garbage: decode() reports it
        pos += set_len
    return len(buf) - off


def decode(packet: bytes, exporter: str, state: Exporters, ordinal: int = 0) -> Decoded:
    """Decode one export packet; raises ``DecodeError`` when its header is unusable."""
    if len(packet) < 4:
        raise DecodeError(f"packet of {len(packet)} byte(s) is too short for a header")
    version = struct.unpack_from(">H", packet)[0]
    if version == 5:
        return _decode_v5(packet)
    if version == 9:
        header = _header_v9(packet)
        decoded = Decoded(header)
        _walk(packet[20:], (exporter, 9, header.domain), decoded, state, ordinal)
        return decoded
    if version == 10:
        header = _header_ipfix(packet)
        decoded = Decoded(header)
        _walk(packet[16:], (exporter, 10, header.domain), decoded, state, ordinal)
        return decoded
    raise DecodeError(f"unknown export version {version} (expected 5, 9 or 10)")


def _decode_v5(packet: bytes) -> Decoded:
    if len(packet) < 24:
        raise DecodeError(f"v5 packet of {len(packet)} bytes is shorter than its header")
    _, count, uptime, secs, nsecs, seq, etype, eid, sampling = struct.unpack_from(
        ">HHIIIIBBH", packet
    )
    fits = (len(packet) - 24) // 48
    if not 1 <= count <= _V5_MAX or count > fits:
        raise DecodeError(f"v5 header announces {count} record(s); {fits} fit in the packet")
    export_ms = secs * 1000 + min(nsecs, 999_999_999) // 1_000_000
    header = Header(5, export_ms, uptime, etype << 8 | eid, seq, max(sampling & 0x3FFF, 1))
    records = (_V5_RECORD.unpack_from(packet, 24 + 48 * i) for i in range(count))
    flows = [dict(zip(((0, i) for i in _V5_IDS), values, strict=True)) for values in records]
    return Decoded(header, flows)


def _header_v9(packet: bytes) -> Header:
    if len(packet) < 20:
        raise DecodeError(f"v9 packet of {len(packet)} bytes is shorter than its header")
    _, _, uptime, secs, seq, source = struct.unpack_from(">HHIIII", packet)
    return Header(9, secs * 1000, uptime, source, seq)


def _header_ipfix(packet: bytes) -> Header:
    if len(packet) < 16:
        raise DecodeError(f"IPFIX message of {len(packet)} bytes is shorter than its header")
    _, length, secs, seq, domain = struct.unpack_from(">HHIII", packet)
    if length != len(packet):
        raise DecodeError(f"IPFIX header says {length} bytes, the message has {len(packet)}")
    return Header(10, secs * 1000, None, domain, seq)


def _walk(sets: bytes, key: ExporterKey, out: Decoded, state: Exporters, ordinal: int) -> None:
    """Decode the sets (v9: flowsets) of one packet body into ``out``."""
    version, pos, held = key[1], 0, []
    while pos + 4 <= len(sets):
        set_id, set_len = struct.unpack_from(">HH", sets, pos)
        if set_id == set_len == 0 and not any(sets[pos:]):
            break  # zero-filled rest of the packet
        if set_len < 4 or pos + set_len > len(sets):
            out.errors.append(f"set {set_id} at offset {pos} has bad length {set_len}")
            break
        body = sets[pos + 4 : pos + set_len]
        pos += set_len
        if set_id >= 256:
            held.append(DataSet(key, out.header, set_id, body, ordinal))
        elif (set_id, version) in ((0, 9), (2, 10)):
            out.templates += _learn(state, key, _templates(body, version, options=False), out)
        elif (set_id, version) in ((1, 9), (3, 10)):
            out.templates += _learn(state, key, _templates(body, version, options=True), out)
        else:
            out.errors.append(f"set id {set_id} is reserved (offset {pos - set_len})")
            break
    else:
        if pos < len(sets) and any(sets[pos:]):
            out.errors.append(f"{len(sets) - pos} trailing byte(s) after the last set")
    # templates first, whatever their place in the packet
    for data in held:
        decode_set(data, state, out)


def _learn(state: Exporters, key: ExporterKey, parsed: _Parsed, out: Decoded) -> int:
    if parsed.error:
        out.errors.append(parsed.error)
    for template in parsed.templates:
        state.learn(key, template)
    return len(parsed.templates)


@dataclass
class _Parsed:
    templates: list[Template] = field(default_factory=list)
    error: str | None = None


def _templates(body: bytes, version: int, options: bool) -> _Parsed:
    parsed, pos = _Parsed(), 0
    head = 6 if options else 4
    while len(body) - pos >= head:
        tid, count = struct.unpack_from(">HH", body, pos)
        scope = struct.unpack_from(">H", body, pos + 4)[0] if options else 0
        if tid == 0 and not any(body[pos:]):
            break  # padding
        if tid < 256:
            parsed.error = f"template id {tid} is reserved (must be 256 or more)"
            break
        pos += head
        if version == 9 and options:  # v9 counts scope and option fields in bytes
            count, scope = (count + scope) // 4, count // 4
        fields, pos = _fields(body, pos, count, enterprise=version == 10)
        if fields is None:
            parsed.error = f"template {tid} is truncated"
            break
        parsed.templates.append(Template(tid, fields, scope if options else 0))
    return parsed


def _fields(
    body: bytes, pos: int, count: int, enterprise: bool
) -> tuple[tuple[tuple[FieldKey, int], ...] | None, int]:
    fields = []
    for _ in range(count):
        if pos + 4 > len(body):
            return None, pos
        fid, length = struct.unpack_from(">HH", body, pos)
        pos += 4
        pen = 0
        if enterprise and fid & 0x8000:
            if pos + 4 > len(body):
                return None, pos
            fid, pen = fid & 0x7FFF, struct.unpack_from(">I", body, pos)[0]
            pos += 4
        fields.append(((pen, fid), length))
    return tuple(fields), pos


def decode_set(data: DataSet, state: Exporters, out: Decoded) -> bool:
    """Decode a data set into ``out``; False (and kept in ``out.missing``) when its
    template is still unknown."""
    template = state.template(data.key, data.template_id)
    if template is None:
        out.missing.append(data)
        return False
    if template.min_length == 0:
        out.errors.append(f"template {template.id} describes empty records")
        return True
    records, error = _records(data.body, template)
    if error:
        out.errors.append(f"data set {data.template_id}: {error}")
    if not template.scope:
        out.flows.extend(records)
        return True
    out.options.extend(records)
    for record in records:  # keep the exporter's latest option values (sampling, init time)
        state.options.setdefault(data.key, {}).update(record)
    return True


def _records(body: bytes, template: Template) -> tuple[list[Record], str | None]:
    records: list[Record] = []
    pos, minimum = 0, template.min_length
    while len(body) - pos >= minimum:
        start, record = pos, Record()
        for index, (key, declared) in enumerate(template.fields):
            length = declared
            if declared == VARLEN and pos < len(body):
                length, pos = body[pos], pos + 1
                if length == 255:
                    length, pos = int.from_bytes(body[pos : pos + 2], "big"), pos + 2
            if pos + length > len(body):
                tail = not any(body[start:])
                return records, None if tail else f"record truncated at byte {start}"
            if index >= template.scope:
                record.setdefault(key, body[pos : pos + length])
            pos += length
        records.append(record)
    return records, None

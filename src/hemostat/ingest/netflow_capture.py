"""Export packets out of captures: raw UDP payloads back to back (what ``nc -u -l > x.dat``
or the logstash-codec-netflow test files hold), or the UDP datagrams of a classic pcap of the
export traffic, whose IP source address names the exporter.

A capture may come in parts (``x_tpl.dat`` then ``x_data.dat``; ``template.pcap`` then
``data.pcap``): the templates a part lacks are looked for in the other parts, the files of the
same directory whose names differ only by such words (``data``, ``tpl``, numbers).
"""

from __future__ import annotations

import gzip
import ipaddress
import os
import re
import struct
from collections.abc import Callable, Iterable, Iterator
from difflib import SequenceMatcher
from functools import lru_cache
from pathlib import Path
from typing import IO, cast

from hemostat.errors import IngestError
from hemostat.ingest import netflow_wire as wire
from hemostat.ingest.reader import GZIP_MAGIC, Log, sample
from hemostat.schema import Sample

#: classic pcap magic numbers (microsecond and nanosecond variants) → byte order
PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": "<", b"\xa1\xb2\xc3\xd4": ">",
    b"\x4d\x3c\xb2\xa1": "<", b"\xa1\xb2\x3c\x4d": ">",
}  # fmt: skip
PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"

#: link types whose frames are read: Ethernet, BSD loopback, raw IP, Linux cooked v1/v2
_ETHERNET, _NULL, _RAW, _RAW4, _RAW6, _SLL, _SLL2, _LOOP = 1, 0, 101, 228, 229, 113, 276, 108
_VLAN_TYPES = (0x8100, 0x88A8, 0x9100)

Datagram = tuple[str, bytes]  # (exporter address, UDP payload)
Packets = Callable[[Path, Log], Iterator[Datagram]]  # the export packets of a capture file

SIBLINGS = 200  # at most this many other files of a directory are searched for templates
#: words of a file name that name a part of a capture, not the capture
_PART_WORD = re.compile(r"(data|tpls?|templates?|opttpl|tplopt|tpldata|options?|opt)?[\dx]*")


def looks_like_export(head: bytes) -> bool:
    """A plausible NetFlow v5/v9 or IPFIX header (and first set) at the start of ``head``."""
    if len(head) < 16:
        return False
    version, count = struct.unpack_from(">HH", head)
    if version == 5:
        whole = (len(head) - 24) % 48 == 0  # a single packet with a bad count
        return len(head) >= 72 and (1 <= count <= 30 or whole)
    if version == 9:
        return len(head) >= 24 and _first_set(head, 20, len(head), (0, 1))
    if version == 10:
        return 20 <= count <= len(head) and _first_set(head, 16, count, (2, 3))
    return False


def _first_set(head: bytes, offset: int, end: int, template_ids: tuple[int, int]) -> bool:
    set_id, set_len = (int(v) for v in struct.unpack_from(">HH", head, offset))
    return (set_id in template_ids or set_id >= 256) and 4 <= set_len <= end - offset


def read_bytes(path: Path) -> bytes:
    """The whole content of a (possibly gzipped) raw capture."""
    with path.open("rb") as fh:
        data = fh.read()
    return gzip.decompress(data) if data[:2] == GZIP_MAGIC else data


def open_binary(path: Path) -> IO[bytes]:
    with path.open("rb") as fh:
        gz = fh.read(2) == GZIP_MAGIC
    return cast(IO[bytes], gzip.open(path, "rb")) if gz else path.open("rb")


def looks_like_export_pcap(head: bytes) -> bool:
    """A pcap whose complete UDP datagrams in ``head`` are all export packets (at least one,
    and at least half of the frames): a capture of NetFlow/IPFIX traffic, not of a network."""
    if head[:4] not in PCAP_MAGICS:
        return False
    frames = list(udp_datagrams(head, complete_only=True))
    exports = sum(1 for f in frames if not isinstance(f, str) and looks_like_export(f[1]))
    others = sum(1 for f in frames if not isinstance(f, str) and not looks_like_export(f[1]))
    return exports > 0 and others == 0 and 2 * exports >= len(frames)


def udp_datagrams(data: bytes | IO[bytes], complete_only: bool = False) -> Iterator[Datagram | str]:
    """Each frame of a classic pcap as ``(source address, UDP payload)``, or as the reason it
    is not a whole UDP datagram ("not UDP", "IP fragment", "truncated by the capture")."""
    fh = _Buffer(data) if isinstance(data, bytes) else data
    head = fh.read(24)
    if head[:4] == PCAPNG_MAGIC:
        raise ValueError("pcapng is not read; convert it with: editcap -F pcap IN OUT")
    order = PCAP_MAGICS.get(head[:4])
    if order is None or len(head) < 24:
        raise ValueError("not a pcap file")
    linktype = struct.unpack(order + "I", head[20:24])[0] & 0x0FFFFFFF
    while len(record := fh.read(16)) == 16:
        caplen, length = struct.unpack(order + "8xII", record)
        frame = fh.read(caplen)
        if len(frame) < caplen:
            if not complete_only:
                yield "truncated by the capture"
            return
        yield _datagram(frame, linktype, truncated=caplen < length)


class _Buffer:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def read(self, n: int) -> bytes:
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk


def _datagram(frame: bytes, linktype: int, truncated: bool) -> Datagram | str:
    network = _network(frame, linktype)
    if network is None:
        return "not IP"
    ethertype, ip = network
    if ethertype == 0x0800 and len(ip) >= 20 and ip[0] >> 4 == 4:
        ihl, total = (ip[0] & 15) * 4, struct.unpack_from(">H", ip, 2)[0]
        if struct.unpack_from(">H", ip, 6)[0] & 0x3FFF:
            return "IP fragment"
        if ip[9] != 17:
            return "not UDP"
        source, udp, claimed = _ip4(ip[12:16]), ip[ihl:total], total - ihl
    elif ethertype == 0x86DD and len(ip) >= 40 and ip[0] >> 4 == 6:
        if ip[6] != 17:
            return "not UDP"
        claimed = struct.unpack_from(">H", ip, 4)[0]
        source, udp = _ip6(ip[8:24]), ip[40 : 40 + claimed]
    else:
        return "not IP"
    if len(udp) < 8 or truncated or len(udp) < claimed:
        return "truncated by the capture"
    return source, udp[8 : struct.unpack_from(">H", udp, 4)[0]]


def _network(frame: bytes, linktype: int) -> tuple[int, bytes] | None:
    """(ethertype, IP packet) of a link-layer frame."""
    if linktype == _ETHERNET:
        pos, ethertype = 14, struct.unpack_from(">H", frame, 12)[0] if len(frame) >= 14 else 0
        while ethertype in _VLAN_TYPES and len(frame) >= pos + 4:
            ethertype, pos = struct.unpack_from(">H", frame, pos + 2)[0], pos + 4
        return ethertype, frame[pos:]
    if linktype in (_NULL, _LOOP) and len(frame) > 4:
        return _by_version(frame[4:])
    if linktype in (_RAW, _RAW4, _RAW6) and frame:
        return _by_version(frame)
    if linktype == _SLL and len(frame) >= 16:
        return struct.unpack_from(">H", frame, 14)[0], frame[16:]
    if linktype == _SLL2 and len(frame) >= 20:
        return struct.unpack_from(">H", frame, 0)[0], frame[20:]
    return None


def _by_version(ip: bytes) -> tuple[int, bytes]:
    return (0x0800 if ip[0] >> 4 == 4 else 0x86DD), ip


def _ip4(raw: bytes) -> str:
    return ".".join(str(b) for b in raw)


def _ip6(raw: bytes) -> str:
    return str(ipaddress.IPv6Address(raw))


def raw_packets(path: Path, log: Log) -> Iterator[Datagram]:
    """The export packets of a raw capture (exporter unknown: ``""``)."""
    data = read_bytes(path)
    if not data.strip(b"\0"):
        raise IngestError(path, None, "no export packet: the file is empty or all zeros")
    try:
        for packet in wire.split(data):
            yield "", packet
    except wire.DecodeError as exc:
        log.bad_line(None, f"rest of the file skipped: {exc}")


def pcap_packets(path: Path, log: Log) -> Iterator[Datagram]:
    """The export packets of a pcap, with the address of the exporter that sent each."""
    with open_binary(path) as fh:
        try:
            for frame in udp_datagrams(fh):
                if isinstance(frame, str):
                    log.skip(f"frames {frame}")
                elif looks_like_export(frame[1]):
                    yield frame
                else:
                    log.skip("UDP datagrams that are not export packets")
        except ValueError as exc:
            raise IngestError(path, None, str(exc)) from exc


# ---- templates from the other parts of a capture ----------------------------------------


def _stem(name: str) -> str:
    """What names the capture, without what names the part (``_tpl``, ``-data258``, dates):
    ``ipfix_test_mikrotik_data258.dat`` and ``ipfix_test_mikrotik_tpl.dat`` share a stem."""
    words = re.split(r"[\W_]+", name.lower().split(".")[0])
    return "_".join(w for w in words if not _PART_WORD.fullmatch(w))


def _related(stem: str, other: str) -> bool:
    """Same capture: the same stem, or one stem extends the other by whole words."""
    if stem == other:
        return True
    return bool(stem and other) and (stem.startswith(f"{other}_") or other.startswith(f"{stem}_"))


def siblings(path: Path, sniff: Callable[[Sample], bool]) -> list[Path]:
    """Other parts of the same capture in ``path``'s directory (related name stems): the
    same stem first, then the longest common name prefix, then the most similar name."""
    stem = _stem(path.name)
    try:
        entries = [e for e in os.scandir(path.parent) if e.is_file() and e.name != path.name]
    except OSError:
        return []
    names = [e for e in entries if _related(stem, _stem(e.name))]
    names.sort(key=lambda e: (_stem(e.name) != stem, _likeness(e.name, path.name)))
    found = []
    for entry in names[:SIBLINGS]:
        try:
            if sniff(sample(Path(entry.path))):
                found.append(Path(entry.path))
        except (OSError, IngestError):
            continue
    return found


def _likeness(name: str, other: str) -> tuple[int, float, str]:
    """Sort key: the longest common prefix first, then the most similar name."""
    same = [a == b for a, b in zip(name, other, strict=False)] + [False]
    return -same.index(False), -SequenceMatcher(None, name, other).ratio(), name


def templates_of(path: Path, packets: Packets) -> wire.Exporters:
    """The template state a capture leaves behind (cached while the file is unchanged)."""
    stat = path.stat()
    return _templates_of(path, packets, stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=64)
def _templates_of(path: Path, packets: Packets, size: int, mtime: int) -> wire.Exporters:
    state, log = wire.Exporters(), Log(path)
    try:
        for exporter, payload in packets(path, log):
            try:
                wire.decode(payload, exporter, state)
            except wire.DecodeError:
                continue
    except (OSError, IngestError):
        pass
    return state


def adopt(state: wire.Exporters, other: wire.Exporters, waiting: Iterable[wire.DataSet]) -> bool:
    """Take from ``other`` the templates (and option values) ``waiting`` data sets need, when
    they decode those sets cleanly (a sibling may hold another exporter's template 256)."""
    adopted = False
    for data in waiting:
        template = other.template(data.key, data.template_id)
        if template is None or state.template(data.key, data.template_id) is not None:
            continue
        trial = wire.Exporters()
        trial.learn(data.key, template)
        decoded = wire.Decoded(data.header)
        wire.decode_set(data, trial, decoded)
        if decoded.errors or not (decoded.flows or decoded.options):
            continue
        state.learn(data.key, template)
        state.options.setdefault(data.key, {}).update(other.options.get(data.key, {}))
        adopted = True
    return adopted

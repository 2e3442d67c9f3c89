"""Flows as columns: the batch every generator returns and the writer turns into ``conn.log``.

A batch holds numpy arrays only (addresses are indices into the simulation's address table,
times are integer microseconds since the epoch), so generating, merging and slicing never
loop over flows in Python. Long connections are cut into active-timeout slices that share
their ``uid``, as a flow agent or NetFlow exporter reports them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from hemostat.simulate import columns

I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]
U8 = npt.NDArray[np.uint8]
U64 = npt.NDArray[np.uint64]

SECOND = 1_000_000  # microseconds
#: the active timeout: a connection longer than this is written as several rows
ACTIVE_TIMEOUT = 300 * SECOND

PROTOS = ("tcp", "udp", "icmp")
TCP, UDP, ICMP = 0, 1, 2

#: Zeek service names (index 0: unset)
SERVICES = (
    "-",
    "ssl",
    "http",
    "dns",
    "smb",
    "krb",
    "ldap",
    "dce_rpc",
    "ntp",
    "smtp",
    "rdp",
    "ssh",
    "snmp",
    "dhcp",
    "smtp,ssl",
    "imap,ssl",
    "xmpp",
)
SERVICE = {name: i for i, name in enumerate(SERVICES)}

#: Zeek connection states with the history a TCP and a UDP connection in that state shows
STATES = ("SF", "S0", "REJ", "RSTO", "S1")
STATE = {name: i for i, name in enumerate(STATES)}
HISTORY_TCP = ("ShADadFf", "S", "Sr", "ShADadR", "ShADad")
HISTORY_UDP = ("Dd", "D", "D", "Dd", "Dd")
#: packets without payload on each side (handshake, ACKs, FIN) per state, TCP only
EXTRA_PKTS_ORIG = (3, 1, 1, 3, 2)
EXTRA_PKTS_RESP = (2, 0, 1, 1, 1)


@dataclass(frozen=True, slots=True)
class Flows:
    """Rows of ``conn.log``; every field one array of the same length."""

    ts: I64  # start, µs since the epoch (UTC)
    dur: I64  # µs
    src: I32  # index into the address table
    sport: I32
    dst: I32
    dport: I32
    proto: U8  # index into PROTOS
    service: U8  # index into SERVICES
    state: U8  # index into STATES
    ob: I64  # payload bytes sent by the originator
    rb: I64  # payload bytes sent by the responder
    uid: U64  # connection id before encoding; shared by the slices of one connection

    def __len__(self) -> int:
        return len(self.ts)


_DTYPES = {
    "ts": np.int64,
    "dur": np.int64,
    "src": np.int32,
    "sport": np.int32,
    "dst": np.int32,
    "dport": np.int32,
    "proto": np.uint8,
    "service": np.uint8,
    "state": np.uint8,
    "ob": np.int64,
    "rb": np.int64,
    "uid": np.uint64,
}


def make(n: int, **values: Any) -> Flows:
    """A batch of ``n`` rows; scalar values are repeated (``state`` defaults to SF)."""
    values.setdefault("state", STATE["SF"])
    values.setdefault("service", 0)
    out = {}
    for name, dtype in _DTYPES.items():
        value = np.asarray(values[name])
        out[name] = np.broadcast_to(value, (n,)).astype(dtype, copy=True)
    return Flows(**out)


def empty() -> Flows:
    return make(0, **dict.fromkeys(_DTYPES, 0))


def sliced(batch: Flows, timeout: int = ACTIVE_TIMEOUT) -> Flows:
    """Cut connections longer than ``timeout`` into consecutive slices sharing their uid.

    Each slice carries its share of the bytes (integer shares that add up exactly); every
    slice but the last is in state ``S1`` (established, still open).
    """
    counts = np.maximum(1, -(-batch.dur // timeout))
    if int(counts.max(initial=1)) == 1:
        return batch
    row = np.repeat(np.arange(len(batch)), counts)
    first = np.repeat(np.cumsum(counts) - counts, counts)
    j = np.arange(len(row)) - first
    out = columns.take(batch, row)
    dur = out.dur
    done = np.minimum(1.0, j * timeout / np.maximum(dur, 1))
    upto = np.minimum(1.0, (j + 1) * timeout / np.maximum(dur, 1))
    last = j == counts[row] - 1
    ob = _share(out.ob, done, upto)
    rb = _share(out.rb, done, upto)
    state = np.where(last, out.state, np.uint8(STATE["S1"])).astype(np.uint8)
    slice_dur = np.minimum(timeout, dur - j * timeout)
    return Flows(
        out.ts + j * timeout,
        slice_dur,
        out.src,
        out.sport,
        out.dst,
        out.dport,
        out.proto,
        out.service,
        state,
        ob,
        rb,
        out.uid,
    )


def _share(total: I64, done: npt.NDArray[np.float64], upto: npt.NDArray[np.float64]) -> I64:
    """Bytes of one slice: the floor of the cumulative share, differenced (exact sums)."""
    hi = np.floor(total * upto).astype(np.int64)
    lo = np.floor(total * done).astype(np.int64)
    return np.where(upto >= 1.0, total, hi) - lo


def packets(batch: Flows) -> tuple[I64, I64]:
    """Packet counts per side, from the payload (1448-byte segments) and the state."""
    tcp = batch.proto == TCP
    data_o = -(-batch.ob // 1448)
    data_r = -(-batch.rb // 1448)
    extra_o = np.asarray(EXTRA_PKTS_ORIG, np.int64)[batch.state]
    extra_r = np.asarray(EXTRA_PKTS_RESP, np.int64)[batch.state]
    orig = np.where(tcp, data_o + extra_o + data_r // 2, np.maximum(1, data_o))
    resp = np.where(tcp, data_r + extra_r + data_o // 2, data_r)
    return orig.astype(np.int64), resp.astype(np.int64)


class Uids:
    """Allocates connection ids: unique per (stream, counter), scrambled by the seed."""

    def __init__(self, seed: int, stream: int) -> None:
        self.key = np.uint64((seed * 0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019) % (1 << 64))
        self.base = stream << 40
        self.next = 0

    def take(self, n: int) -> U64:
        counter = np.arange(self.base + self.next, self.base + self.next + n, dtype=np.uint64)
        self.next += n
        return mix(counter ^ self.key)


def mix(x: U64) -> U64:
    """splitmix64's finaliser: a bijection on 64-bit integers (distinct in, distinct out)."""
    z = x + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))

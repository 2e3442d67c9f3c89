"""What the kernel says about sockets: TCP counters from sock_diag, owners from /proc.

The socket collector's only inputs, read with the standard library:

- ``SockDiag``: two netlink sockets of family NETLINK_SOCK_DIAG (what ``ss`` reads). One dumps
  every TCP socket of this network namespace with its ``tcp_info`` (byte and segment counters);
  the other is subscribed to the socket-destroy multicast groups (what ``ss -E`` shows) and
  receives the final ``tcp_info`` of each TCP socket as it is freed.
- ``ProcMap``: socket inode -> owning process. ``ss -p`` walks every ``/proc/<pid>/fd/*`` on
  each call; here only inodes not seen before are looked up, first among the processes that
  owned sockets before (a server's accepted connections belong to its listener's process), then
  among processes born since the last look, and only then in every other process, at most once
  per ``rescan`` seconds. Inodes that a full walk could not place are not looked for again.
"""

from __future__ import annotations

import errno
import functools
import os
import socket
import struct
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import NamedTuple, TypeVar

from hemostat.errors import HemostatError

V = TypeVar("V")

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST_DUMP = 0x1 | 0x300
SOL_NETLINK, NETLINK_ADD_MEMBERSHIP = 270, 1
SKNLGRP_INET_TCP_DESTROY, SKNLGRP_INET6_TCP_DESTROY = 1, 3
INET_DIAG_INFO = 2
SO_RCVBUFFORCE = 33
EVENT_BUFFER = 8 << 20  # room for the destroy events between two samples (60,000 measured)
HOT_PIDS = 256  # pids that owned sockets recently, scanned first

LISTEN, CLOSED, TIME_WAIT, SYN_RECV = 10, 7, 6, 3
#: every TCP state but TIME_WAIT and SYN_RECV (mini-sockets without counters)
STATES = ((1 << 12) - 1) & ~((1 << TIME_WAIT) | (1 << SYN_RECV))

HEADER = struct.Struct("=IHHII")  # nlmsghdr: len, type, flags, seq, pid
HEAD = struct.Struct("=IH")  # its length and type
MESSAGE = struct.Struct("=BB6x16s16s4xQ12xII")  # inet_diag_msg, less ports, timers, queues
PORTS = struct.Struct(">HH")
ATTR = struct.Struct("=HH")
COUNTERS = struct.Struct("=QQII")  # tcp_info at 120: bytes_acked, bytes_received, segs out/in
SENT = struct.Struct("=QQ")  # tcp_info at 200 (Linux >= 4.19): bytes_sent, bytes_retrans
MAPPED = b"\0" * 10 + b"\xff\xff"


class Sock(NamedTuple):
    """One TCP socket as the kernel reports it (``uid``/``inode`` are 0 in destroy events).

    A named tuple rather than a dataclass: thousands are built per sample.
    """

    state: int
    local: str
    lport: int
    remote: str
    rport: int
    cookie: int
    uid: int
    inode: int
    sent: int
    received: int
    segs_out: int
    segs_in: int


@functools.lru_cache(maxsize=4096)
def _address(family: int, raw: bytes) -> str:
    if family == socket.AF_INET:
        return socket.inet_ntop(socket.AF_INET, raw[:4])
    if raw[:12] == MAPPED:
        return socket.inet_ntop(socket.AF_INET, raw[12:])
    return socket.inet_ntop(socket.AF_INET6, raw)


def parse(buf: bytes | bytearray, size: int, out: list[Sock]) -> int | None:
    """Appends the sockets of one netlink datagram to ``out``.

    Returns 0 at the end of a dump, an errno when the kernel answered an error, else None.
    """
    off = 0
    while off + HEADER.size <= size:
        length, kind = HEAD.unpack_from(buf, off)
        if length < HEADER.size:
            return None
        body, end = off + HEADER.size, min(off + length, size)
        off += (length + 3) & ~3
        if kind == SOCK_DIAG_BY_FAMILY:
            out.append(_sock(buf, body, end))
        elif kind == NLMSG_DONE:
            return 0
        elif kind == NLMSG_ERROR:
            return -int(struct.unpack_from("=i", buf, body)[0])
    return None


def _sock(buf: bytes | bytearray, body: int, end: int) -> Sock:
    family, state, src, dst, cookie, uid, inode = MESSAGE.unpack_from(buf, body)
    lport, rport = PORTS.unpack_from(buf, body + 4)
    acked = received = segs_out = segs_in = sent = retrans = 0
    at = body + MESSAGE.size
    while at + 4 <= end:
        length, kind = ATTR.unpack_from(buf, at)
        if kind & 0x3FFF == INET_DIAG_INFO:
            if length >= 4 + 144:
                acked, received, segs_out, segs_in = COUNTERS.unpack_from(buf, at + 4 + 120)
            sent, retrans = SENT.unpack_from(buf, at + 4 + 200) if length >= 4 + 216 else (acked, 0)
            break
        if length < 4:
            break
        at += (length + 3) & ~3
    return Sock(state, _address(family, src), lport, _address(family, dst), rport, cookie, uid,
                inode, sent - retrans, received, segs_out, segs_in)  # fmt: skip


class SockDiag:
    """The two netlink sockets: one for dumps, one subscribed to socket-destroy events."""

    def __init__(self) -> None:
        self.lost_events = 0
        self._buf = bytearray(1 << 16)
        self._seq = 0
        self._dump = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_SOCK_DIAG)
        self._events = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_SOCK_DIAG)
        try:
            self._dump.settimeout(5.0)
            self._events.setblocking(False)
            self._events.bind((0, 0))  # the kernel counts destroy listeners at bind time
            for group in (SKNLGRP_INET_TCP_DESTROY, SKNLGRP_INET6_TCP_DESTROY):
                self._events.setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, group)
            self._grow_buffer()
        except PermissionError as e:
            self.close()
            raise HemostatError(
                "the socket collector is not permitted to receive the kernel's socket-destroy "
                "events (CAP_NET_ADMIN); run hemostat agent as root (the systemd unit does)"
            ) from e

    def _grow_buffer(self) -> None:
        try:
            self._events.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, EVENT_BUFFER)
        except PermissionError:
            self._events.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, EVENT_BUFFER)

    def dump(self) -> list[Sock]:
        """Every TCP socket of this network namespace but TIME_WAIT and SYN_RECV ones."""
        socks: list[Sock] = []
        for family in (socket.AF_INET, socket.AF_INET6):
            self._seq += 1
            request = HEADER.pack(72, SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST_DUMP, self._seq, 0)
            request += struct.pack("=BBBxI", family, socket.IPPROTO_TCP, 1 << (INET_DIAG_INFO - 1),
                                   STATES) + bytes(48)  # fmt: skip
            try:
                self._dump.send(request)
                self._receive(socks, family)
            except OSError as e:
                raise HemostatError(f"sock_diag dump of TCP sockets failed: {e}") from e
        return socks

    def _receive(self, socks: list[Sock], family: int) -> None:
        while True:
            status = parse(self._buf, self._dump.recv_into(self._buf), socks)
            if status is None:
                continue
            if status and not (family == socket.AF_INET6 and status == errno.ENOENT):
                raise OSError(status, f"kernel answered {errno.errorcode.get(status, status)}")
            return

    def destroyed(self) -> list[Sock]:
        """The TCP sockets freed since the last call, with their final counters."""
        socks: list[Sock] = []
        while True:
            try:
                size = self._events.recv_into(self._buf)
            except BlockingIOError:
                return socks
            except OSError as e:
                if e.errno != errno.ENOBUFS:
                    raise HemostatError(f"reading socket-destroy events failed: {e}") from e
                self.lost_events += 1
                continue
            parse(self._buf, size, socks)

    def close(self) -> None:
        self._dump.close()
        self._events.close()


@dataclass(frozen=True, slots=True)
class Owner:
    """The process holding a socket."""

    pid: int
    process: str


class ProcMap:
    """Socket inode -> owning process, built incrementally and bounded in size."""

    def __init__(
        self,
        proc: str = "/proc",
        rescan: float = 5.0,
        limit: int = 65_536,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._proc = proc
        self._clock = clock
        self._rescan = rescan
        self._limit = limit
        self._owners: dict[int, Owner] = {}
        self._unplaced: dict[int, None] = {}
        self._hot: dict[int, None] = {}  # insertion order = least recently useful first
        self._pids: set[int] = set()
        self._last_full = -float("inf")
        self.full_scans = 0
        self.scanned_pids = 0

    def owners(self, inodes: Iterable[int]) -> dict[int, Owner]:
        """The owners of those ``inodes`` that can be found (never inode 0)."""
        wanted = {i for i in inodes if i}
        missing = {i for i in wanted if i not in self._owners and i not in self._unplaced}
        if missing:
            self._place(missing)
        return {i: self._owners[i] for i in wanted if i in self._owners}

    def keep(self, live: Collection[int]) -> None:
        """Forget inodes of sockets that no longer exist."""
        for table in (self._owners, self._unplaced):
            for inode in [i for i in table if i not in live]:
                del table[inode]

    def _place(self, missing: set[int]) -> None:
        pids = self._list_pids()
        born = pids - self._pids
        self._pids = pids
        hot = [p for p in reversed(self._hot) if p in pids]
        first = [*hot, *sorted(born.difference(hot))]
        self._scan(first, missing)
        if missing and self._clock() - self._last_full >= self._rescan:
            self._last_full = self._clock()
            self.full_scans += 1
            self._scan(sorted(pids.difference(first)), missing)
            for inode in missing:
                self._remember(self._unplaced, inode, None)

    def _scan(self, pids: Iterable[int], missing: set[int]) -> None:
        for pid in pids:
            if not missing:
                return
            found = missing.intersection(self._sockets_of(pid))
            if not found:
                continue
            owner = Owner(pid, self._name_of(pid))
            for inode in found:
                self._remember(self._owners, inode, owner)
            missing.difference_update(found)
            self._hot.pop(pid, None)
            self._hot[pid] = None
            if len(self._hot) > HOT_PIDS:
                del self._hot[next(iter(self._hot))]

    def _sockets_of(self, pid: int) -> set[int]:
        self.scanned_pids += 1
        inodes: set[int] = set()
        try:
            fd = os.open(f"{self._proc}/{pid}/fd", os.O_RDONLY | os.O_DIRECTORY)
        except OSError:  # gone, or not ours to read
            return inodes
        try:
            for name in os.listdir(fd):
                try:
                    link = os.readlink(name, dir_fd=fd)
                except OSError:
                    continue
                if link.startswith("socket:["):
                    inodes.add(int(link[8:-1]))
        except OSError:
            pass
        finally:
            os.close(fd)
        return inodes

    def _name_of(self, pid: int) -> str:
        try:
            with open(f"{self._proc}/{pid}/comm", encoding="utf-8", errors="replace") as f:
                return f.read().rstrip("\n")
        except OSError:
            return ""

    def _list_pids(self) -> set[int]:
        return {int(n) for n in os.listdir(self._proc) if n.isdigit()}

    def _remember(self, table: dict[int, V], inode: int, value: V) -> None:
        table[inode] = value
        if len(table) > self._limit:
            del table[next(iter(table))]

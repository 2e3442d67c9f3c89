"""The socket collector: every TCP connection of this network namespace, as flow slices.

Each ``sample()`` reads the kernel (``agent.kernel``: a sock_diag dump plus the socket-destroy
events since the last sample) and yields flow rows per contract section 3, ``source`` "agent":
one per connection whose bytes moved since the previous sample (an active-timeout slice: sums
over a connection's rows are its totals), and one when a connection is first seen or ends,
even without bytes; idle connections yield nothing. A connection that opened and closed
between two samples is known from its destroy event alone: it has its bytes, and the
listener's process and user when it was accepted, but no owner when this host opened it.

The originator (``src_*``) is the end that connected: an accepted connection (its local
address and port match a listener) has the remote end as originator, and bytes out are what
that end sent. Bytes are TCP payload (``bytes_sent - bytes_retrans``; received bytes count the
peer's FIN as one), packets are all segments. Loopback and this namespace's own connections
to itself are skipped. UDP is not sampled: sock_diag has no byte counters for UDP sockets.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hemostat.agent.kernel import CLOSED, LISTEN, Owner, ProcMap, Sock, SockDiag
from hemostat.agent.spool import iso
from hemostat.errors import HemostatError

CAP_SYS_PTRACE = 19
#: samples a connection may be missing from the dump before it is forgotten (lost destroy event)
MISSING_LIMIT = 3
STATE_NAMES = ("UNKNOWN", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2",
               "TIME_WAIT", "CLOSED", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING")  # fmt: skip
WILDCARDS = ("0.0.0.0", "::")  # noqa: S104 (compared with, never bound)


@dataclass(slots=True)
class _Conn:
    """What the collector remembers of one connection between samples."""

    conn_id: str
    outbound: bool  # this host opened it (its local end is the originator)
    sent: int  # counters up to the last row (or up to the baseline)
    received: int
    segs_out: int
    segs_in: int
    uid: int | None
    inode: int
    listener: Sock | None
    owner: Owner | None = None
    missing: int = 0


def _is_flow(s: Sock) -> bool:
    return s.rport != 0 and not s.remote.startswith("127.") and s.remote != "::1"


class SocketCollector:
    """Samples this namespace's TCP connections; ``sample()`` returns the slices since the last.

    Connections already open when the collector starts are baselined: only the bytes they move
    afterwards are reported (an agent restart does not count them twice). ``interval`` is the
    sampling period the caller keeps; it also spaces out full walks of /proc.
    """

    def __init__(self, host: str, interval: float = 5.0) -> None:
        self.host = host
        self.interval = interval
        _check_privileges()
        self._boot = _boot_id()
        self._diag = SockDiag()
        self._procs = ProcMap(rescan=interval)
        self._users: dict[int, str | None] = {}
        self._conns: dict[int, _Conn] = {}
        self._last = time.time()
        live = self._diag.dump()
        listeners = _listeners(live)
        flows = [s for s in live if _is_flow(s)]
        internal = _internal(flows)
        for s in flows:
            if s.cookie not in internal:
                self._conns[s.cookie] = self._track(s, listeners, baseline=True)

    @property
    def lost_events(self) -> int:
        """Socket-destroy notifications the kernel dropped (receive buffer overrun)."""
        return self._diag.lost_events

    def sample(self, now: float | None = None) -> list[dict[str, Any]]:
        """One flow row per connection that moved bytes, appeared or ended since the last sample."""
        now = time.time() if now is None else now
        destroyed = self._diag.destroyed()
        live = self._diag.dump()
        moved: list[tuple[_Conn, Sock, bool]] = []
        seen: set[int] = set()
        opened: list[Sock] = []
        for s in live:  # the hot loop: most connections are known and idle
            conn = self._conns.get(s.cookie)
            if conn is None:
                if _is_flow(s):
                    opened.append(s)
                continue
            seen.add(s.cookie)
            conn.missing = 0
            if s.sent > conn.sent or s.received > conn.received:
                moved.append((conn, s, False))
        closed: list[Sock] = []
        for s in destroyed:
            if s.cookie in seen or not _is_flow(s):
                continue
            conn = self._conns.pop(s.cookie, None)
            if conn is None:
                closed.append(s)
            else:  # a closing row even without bytes: it tells the connection ended
                moved.append((conn, s, True))
        self._age(seen)
        if opened or closed:
            self._open(opened, closed, _listeners(live, destroyed), moved)
        self._attribute(moved)
        self._procs.keep({s.inode for s in live})
        start, end, self._last = iso(self._last), iso(now), now
        return [self._row(c, s, gone, start, end) for c, s, gone in moved]

    def _open(
        self,
        opened: list[Sock],
        closed: list[Sock],
        listeners: dict[tuple[str, int], Sock],
        moved: list[tuple[_Conn, Sock, bool]],
    ) -> None:
        """Track connections seen for the first time, still open or already destroyed."""
        internal = _internal([*opened, *closed])
        for s in opened:
            if s.cookie not in internal:
                conn = self._conns[s.cookie] = self._track(s, listeners, baseline=False)
                moved.append((conn, s, False))
        for s in closed:
            if s.cookie not in internal:
                moved.append((self._track(s, listeners, baseline=False), s, True))

    def close(self) -> None:
        self._diag.close()

    def __enter__(self) -> SocketCollector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _track(self, s: Sock, listeners: dict[tuple[str, int], Sock], baseline: bool) -> _Conn:
        listener = listeners.get((s.local, s.lport)) or listeners.get(("*", s.lport))
        key = f"{self._boot}|{s.cookie}|{s.local}|{s.lport}|{s.remote}|{s.rport}"
        counters = (s.sent, s.received, s.segs_out, s.segs_in) if baseline else (0, 0, 0, 0)
        uid = s.uid if s.inode else None  # destroy events carry no owner
        conn_id = hashlib.blake2b(key.encode(), digest_size=10).hexdigest()
        return _Conn(conn_id, listener is None, *counters, uid, s.inode, listener)

    def _age(self, seen: set[int]) -> None:
        for cookie in [c for c in self._conns if c not in seen]:
            conn = self._conns[cookie]
            conn.missing += 1
            if conn.missing > MISSING_LIMIT:
                del self._conns[cookie]

    def _attribute(self, moved: list[tuple[_Conn, Sock, bool]]) -> None:
        """Owners for connections about to be reported; accepted ones fall back on the listener."""
        todo = [c for c, _, _ in moved if c.owner is None]
        if not todo:
            return
        inodes = {c.inode for c in todo} | {c.listener.inode for c in todo if c.listener}
        owners = self._procs.owners(inodes)
        for c in todo:
            c.owner = owners.get(c.inode) or (c.listener and owners.get(c.listener.inode)) or None
            if c.uid is None and c.listener is not None:
                c.uid = c.listener.uid

    def _row(self, c: _Conn, s: Sock, closed: bool, start: str, end: str) -> dict[str, Any]:
        sent, received = max(s.sent - c.sent, 0), max(s.received - c.received, 0)
        segs_out, segs_in = (
            (s.segs_out - c.segs_out) & 0xFFFFFFFF,
            (s.segs_in - c.segs_in) & 0xFFFFFFFF,
        )
        c.sent, c.received = max(s.sent, c.sent), max(s.received, c.received)
        c.segs_out, c.segs_in = s.segs_out, s.segs_in
        mine, theirs = (s.local, s.lport), (s.remote, s.rport)
        (src_ip, src_port), (dst_ip, dst_port) = (mine, theirs) if c.outbound else (theirs, mine)
        out, in_, pkts_out, pkts_in = (
            (sent, received, segs_out, segs_in)
            if c.outbound
            else (received, sent, segs_in, segs_out)
        )
        return {
            "ts": start, "end_ts": end, "src_ip": src_ip, "src_port": src_port,
            "dst_ip": dst_ip, "dst_port": dst_port, "proto": "tcp",
            "bytes_out": out, "bytes_in": in_, "pkts_out": pkts_out, "pkts_in": pkts_in,
            "conn_state": _state_name(CLOSED if closed else s.state),
            "conn_id": c.conn_id, "host": self.host,
            "process": c.owner.process if c.owner else None, "user": self._user(c.uid),
            "source": "agent",
        }  # fmt: skip

    def _user(self, uid: int | None) -> str | None:
        if uid is None:
            return None
        if uid not in self._users:
            try:
                self._users[uid] = pwd.getpwuid(uid).pw_name
            except KeyError:
                self._users[uid] = str(uid)
        return self._users[uid]


def _listeners(live: Sequence[Sock], gone: Sequence[Sock] = ()) -> dict[tuple[str, int], Sock]:
    """Listening sockets by (address, port), wildcard addresses as "*"; closed ones last."""
    found: dict[tuple[str, int], Sock] = {}
    for s in (*gone, *live):
        if s.state == LISTEN or (s.rport == 0 and s.inode == 0):
            found[("*" if s.local in WILDCARDS else s.local, s.lport)] = s
    return found


def _internal(new: list[Sock]) -> set[int]:
    """Cookies of connections both of whose ends are sockets of this namespace."""
    ends = {(s.local, s.lport, s.remote, s.rport): s.cookie for s in new}
    return {c for (a, ap, b, bp), c in ends.items() if (b, bp, a, ap) in ends}


def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
            return f.read().strip()
    except OSError:
        return socket.gethostname()


def _state_name(state: int) -> str:
    return STATE_NAMES[state] if 0 <= state < len(STATE_NAMES) else "UNKNOWN"


def _check_privileges() -> None:
    """Root, or CAP_SYS_PTRACE: needed to read other users' /proc/<pid>/fd (socket owners)."""
    if os.geteuid() == 0:
        return
    with open("/proc/self/status", encoding="ascii") as f:
        caps = next((int(x.split()[1], 16) for x in f if x.startswith("CapEff:")), 0)
    if not caps & (1 << CAP_SYS_PTRACE):
        raise HemostatError(
            "the socket collector must run as root: it reads every process's /proc/<pid>/fd to "
            "name the owner of each connection; run hemostat agent as root (the systemd unit does)"
        )

"""Socket owners from a fake /proc (how much gets scanned), and sock_diag message decoding."""

from __future__ import annotations

import socket
import struct
from pathlib import Path

from hemostat.agent.kernel import HEADER, MESSAGE, SOCK_DIAG_BY_FAMILY, Owner, ProcMap, Sock, parse


def process(proc: Path, pid: int, name: str, links: list[str]) -> None:
    (proc / str(pid) / "fd").mkdir(parents=True)
    (proc / str(pid) / "comm").write_text(name + "\n")
    add_fds(proc, pid, links)


def add_fds(proc: Path, pid: int, links: list[str]) -> None:
    fd = proc / str(pid) / "fd"
    start = len(list(fd.iterdir()))
    for n, link in enumerate(links, start):
        (fd / str(n)).symlink_to(link)


def test_owners_are_found_without_rescanning_every_process(tmp_path: Path) -> None:
    process(tmp_path, 100, "nginx", ["socket:[1001]", "pipe:[7]", "/dev/null"])
    process(tmp_path, 200, "postgres", ["socket:[2001]"])
    process(tmp_path, 300, "cron", ["/var/log/cron"])
    procs = ProcMap(proc=str(tmp_path), rescan=3600)

    assert procs.owners([1001, 0]) == {1001: Owner(100, "nginx")}
    first = procs.scanned_pids
    assert procs.owners([1001]) == {1001: Owner(100, "nginx")}
    assert procs.scanned_pids == first  # cached

    add_fds(tmp_path, 100, ["socket:[1002]"])  # an owner seen before is looked at first
    assert procs.owners([1002]) == {1002: Owner(100, "nginx")}
    assert procs.scanned_pids == first + 1

    process(tmp_path, 400, "curl", ["socket:[4001]"])  # so is a process born since
    assert procs.owners([4001]) == {4001: Owner(400, "curl")}
    assert procs.scanned_pids == first + 3  # nginx (hot), then curl (new)
    assert procs.full_scans == 0

    assert procs.owners([9999]) == {}  # nowhere: one full walk, then never again
    assert procs.full_scans == 1
    walked = procs.scanned_pids
    assert procs.owners([9999]) == {}
    assert (procs.full_scans, procs.scanned_pids) == (1, walked)


def test_owners_of_a_late_socket_in_an_old_process_wait_for_the_rescan_period(
    tmp_path: Path,
) -> None:
    process(tmp_path, 100, "nginx", ["socket:[1001]"])
    process(tmp_path, 200, "postgres", [])
    clock = [0.0]
    procs = ProcMap(proc=str(tmp_path), rescan=60, clock=lambda: clock[0])
    procs.owners([1001])
    procs.owners([5])  # a full walk that finds nothing
    add_fds(tmp_path, 200, ["socket:[2001]"])  # postgres never owned a socket before
    clock[0] = 59.0
    assert procs.owners([2001]) == {}  # no second full walk within the period
    clock[0] = 60.0
    assert procs.owners([2001]) == {2001: Owner(200, "postgres")}
    assert procs.full_scans == 2


def test_forgotten_inodes_leave_the_map(tmp_path: Path) -> None:
    process(tmp_path, 100, "nginx", ["socket:[1001]", "socket:[1002]"])
    procs = ProcMap(proc=str(tmp_path), rescan=3600)
    assert len(procs.owners([1001, 1002])) == 2
    procs.keep({1002})
    (tmp_path / "100" / "fd" / "0").unlink()
    assert procs.owners([1001, 1002]) == {1002: Owner(100, "nginx")}


def diag_message(family: int, src: bytes, dst: bytes, info: bytes) -> bytes:
    body = bytearray(
        MESSAGE.pack(family, 1, src.ljust(16, b"\0"), dst.ljust(16, b"\0"), 77, 33, 4242)
    )
    struct.pack_into(">HH", body, 4, 51000, 443)
    body += struct.pack("=HH", 4 + len(info), 2) + info + b"\0" * (-len(info) % 4)
    return HEADER.pack(HEADER.size + len(body), SOCK_DIAG_BY_FAMILY, 2, 1, 0) + body


def tcp_info(acked: int, received: int, sent: int | None, retrans: int = 0) -> bytes:
    info = bytearray(232 if sent is not None else 160)
    struct.pack_into("=QQII", info, 120, acked, received, 10, 20)
    if sent is not None:
        struct.pack_into("=QQ", info, 200, sent, retrans)
    return bytes(info)


def test_messages_decode_mapped_addresses_and_unique_bytes_sent() -> None:
    mapped = b"\0" * 10 + b"\xff\xff" + socket.inet_aton("10.1.2.3")
    v6 = socket.inet_pton(socket.AF_INET6, "2001:db8::9")
    datagram = diag_message(socket.AF_INET6, mapped, v6, tcp_info(5001, 300, 6000, 1000))
    datagram += diag_message(socket.AF_INET, socket.inet_aton("10.0.0.1"), b"\x01\x02\x03\x04",
                             tcp_info(5001, 300, None))  # fmt: skip
    datagram += HEADER.pack(20, 3, 2, 1, 0) + b"\0" * 4  # NLMSG_DONE

    socks: list[Sock] = []
    assert parse(datagram, len(datagram), socks) == 0  # the end of the dump
    first, second = socks
    assert first == Sock(1, "10.1.2.3", 51000, "2001:db8::9", 443, 77, 33, 4242, 5000, 300, 10, 20)
    assert (second.local, second.remote, second.sent) == ("10.0.0.1", "1.2.3.4", 5001)
    error = HEADER.pack(20, 2, 0, 1, 0) + struct.pack("=i", -1)  # NLMSG_ERROR, EPERM
    assert parse(error, len(error), socks) == 1

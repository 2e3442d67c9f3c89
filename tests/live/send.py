"""Send exactly BYTES to HOST:PORT over one TCP connection, then close it cleanly:
``ip netns exec NS python send.py HOST PORT BYTES``. Standard library only."""

from __future__ import annotations

import socket
import sys


def main() -> None:
    host, port, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    with socket.create_connection((host, port), timeout=5) as sock:
        sock.recv(64)  # the sink's greeting
        sock.sendall(b"x" * size)
        sock.shutdown(socket.SHUT_WR)
        while sock.recv(65536):  # until the sink closes its side
            pass


if __name__ == "__main__":
    main()

"""Lab peers for the network-namespace tests, started with ``ip netns exec NS python peer.py``.

    sink STATUS PORT...           accept on each port, greet with "220", count bytes per peer
                                  IP; STATUS (JSON) is rewritten every 50 ms
    upload HOST PORT RATE SECONDS stream RATE bytes/s until SECONDS pass; exit 3 on a socket error
    probe HOST PORT TIMEOUT       exit 0 when a connection opens and greets with "220"

Standard library only; every loop is bounded.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time

CHUNK = 16384


def sink(status: str, ports: list[int]) -> None:
    counts: dict[str, int] = {}
    last: dict[str, float] = {}
    lock = threading.Lock()

    def serve(conn: socket.socket, peer: str) -> None:
        with conn:
            conn.sendall(b"220 hemostat-lab\r\n")
            while data := conn.recv(65536):
                with lock:
                    counts[peer] = counts.get(peer, 0) + len(data)
                    last[peer] = time.time()

    def accept(server: socket.socket) -> None:
        while True:
            conn, (peer, *_) = server.accept()
            threading.Thread(target=serve, args=(conn, peer), daemon=True).start()

    for port in ports:
        server = socket.create_server(("0.0.0.0", port), backlog=64, reuse_port=False)
        threading.Thread(target=accept, args=(server,), daemon=True).start()
    tmp = f"{status}.tmp"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        with lock:
            text = json.dumps({"t": time.time(), "bytes": counts, "last": last})
        with open(tmp, "w") as fh:
            fh.write(text)
        os.replace(tmp, status)
        time.sleep(0.05)


def upload(host: str, port: int, rate: int, seconds: float) -> int:
    sock = socket.create_connection((host, port), timeout=2)
    sock.settimeout(0.5)
    payload = b"x" * CHUNK
    start = time.monotonic()
    sent = 0
    while (now := time.monotonic()) - start < seconds:
        if sent > rate * (now - start):
            time.sleep(CHUNK / rate)
            continue
        try:
            sent += sock.send(payload)
        except TimeoutError:
            continue
        except OSError as exc:
            print(f"upload stopped: {exc}", file=sys.stderr)  # noqa: T201
            return 3
    return 0


def probe(host: str, port: int, timeout: float) -> int:
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            ok = sock.recv(3) == b"220"
            sock.sendall(b"QUIT\r\n")
    except OSError:
        return 1
    return 0 if ok else 1


if __name__ == "__main__":
    mode, *args = sys.argv[1:]
    if mode == "sink":
        sink(args[0], [int(p) for p in args[1:]])
    elif mode == "upload":
        sys.exit(upload(args[0], int(args[1]), int(args[2]), float(args[3])))
    else:
        sys.exit(probe(args[0], int(args[1]), float(args[2])))

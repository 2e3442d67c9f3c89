"""Alert receivers for the live-path tests, started inside a test namespace with
``ip netns exec NS python receivers.py OUT SYSLOG_PORT WEBHOOK_PORT``.

Listens on 127.0.0.1: UDP syslog on SYSLOG_PORT and an HTTP webhook on WEBHOOK_PORT. Every
message is appended to OUT as one JSON line ``{"sink", "t" (receipt time), "body"}``.
Standard library only; runs until killed.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

LOCK = threading.Lock()


def record(out: Path, sink: str, body: str) -> None:
    line = json.dumps({"sink": sink, "t": time.time(), "body": body})
    with LOCK, out.open("a") as f:
        f.write(line + "\n")


def syslog(out: Path, port: int) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", port))
    while True:
        data, _ = sock.recvfrom(65535)
        record(out, "syslog", data.decode("utf-8", "replace"))


def webhook(out: Path, port: int) -> ThreadingHTTPServer:
    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            size = int(self.headers.get("Content-Length", "0"))
            record(out, "webhook", self.rfile.read(size).decode("utf-8", "replace"))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    return ThreadingHTTPServer(("127.0.0.1", port), Hook)


def main() -> None:
    out, syslog_port, webhook_port = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    server = webhook(out, webhook_port)
    threading.Thread(target=syslog, args=(out, syslog_port), daemon=True).start()
    out.touch()
    server.serve_forever()


if __name__ == "__main__":
    main()

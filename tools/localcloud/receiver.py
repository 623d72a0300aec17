"""The local cloud's webhook receiver: a tiny HTTP server that keeps what it receives (newest last), as a tenant's
endpoint would, so that `make webhooks` and the tests can read what was delivered.

POST any path: stored (headers and body) and answered 204; POST /status/<code>/...: stored and answered <code>
(a failing endpoint, for trying retries). GET /received: everything stored, as JSON. DELETE /received: forget it.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MAX_BODY_BYTES = 1024 * 1024
KEPT = 500
STATUS_PATH = re.compile(r"^/status/(\d{3})(/|$)")


@dataclass(frozen=True)
class Received:
    at: float
    path: str
    headers: dict[str, str]
    body: str
    status: int


class Receiver:
    """Starts on 127.0.0.1:<port> (0, or the port taken: a free port) in a daemon thread; `url` is its base."""

    def __init__(self, port: int = 0) -> None:
        self._lock = threading.Lock()
        self._received: list[Received] = []
        try:
            self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        except OSError:  # the port is taken (another local cloud): any free port, printed at start-up
            self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="webhook-receiver", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Receiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def received(self) -> list[Received]:
        with self._lock:
            return list(self._received)

    def clear(self) -> None:
        with self._lock:
            self._received.clear()

    def _keep(self, item: Received) -> None:
        with self._lock:
            self._received.append(item)
            del self._received[:-KEPT]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = min(int(self.headers.get("content-length") or 0), MAX_BODY_BYTES)
                body = self.rfile.read(length).decode("utf-8", errors="replace")
                match = STATUS_PATH.match(self.path)
                status = int(match.group(1)) if match else 204
                headers = {k.lower(): v for k, v in self.headers.items()}
                receiver._keep(Received(time.time(), self.path, headers, body, status))
                self._answer(status, b"")

            def do_GET(self) -> None:
                if self.path.rstrip("/") != "/received":
                    self._answer(404, b"")
                    return
                data = json.dumps([asdict(r) for r in receiver.received()]).encode()
                self._answer(200, data, "application/json")

            def do_DELETE(self) -> None:
                receiver.clear()
                self._answer(204, b"")

            def _answer(self, status: int, body: bytes, content_type: str = "text/plain") -> None:
                self.send_response(status)
                self.send_header("content-type", content_type)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

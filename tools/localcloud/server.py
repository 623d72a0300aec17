"""`make run`: moto server on 127.0.0.1:$MOTO_PORT and the HTTP API on 127.0.0.1:$PORT in one process;
each function's handler runs in up to $LOCALCLOUD_INSTANCES worker processes (default 3), as Lambda runs
concurrent requests in separate execution environments."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import boto3

from localcloud.cloud import LOCAL_ENVIRONMENT, REGION, LocalCloud, start
from localcloud.demo import DemoBackend
from localcloud.gateway import MAX_PAYLOAD_BYTES, Gateway
from localcloud.outbox import state_file
from localcloud.pool import instances_from_env


class GatewayServer(ThreadingHTTPServer):
    """The HTTP API's server: a thread per connection, and a listen backlog that takes a burst. With
    http.server's backlog of 5 the kernel reset connections of a burst of concurrent requests with bodies
    once its accept queue was full (API Gateway accepts them); the kernel caps this at net.core.somaxconn."""

    daemon_threads = True
    request_queue_size = 1024


def make_handler(gateway: Gateway, demo: DemoBackend | None = None) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "facegate-localcloud"

        def _serve(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            if length > MAX_PAYLOAD_BYTES:
                self._reply(413, {"content-type": "application/json"}, b'{"message":"Request Entity Too Large"}')
                self.close_connection = True
                return
            body = self.rfile.read(length) if length else b""
            url = urlsplit(self.path)
            if demo is not None and demo.handles(url.path):  # the demo page and its tenant backend (demo.py)
                reply = demo.handle(self.command, url.path, body)
                self._reply(reply.status, reply.headers, reply.body)
                return
            try:
                response = gateway.handle(self.command, url.path, url.query, dict(self.headers.items()), body)
            except Exception as error:  # the runtime's own failure, as Lambda reports it
                sys.stderr.write(f"handler crashed: {error!r}\n")
                self._reply(500, {"content-type": "application/json"}, b'{"message":"Internal Server Error"}')
                return
            self._reply(response.status, response.headers, response.body)

        def _reply(self, status: int, headers: dict[str, str], body: bytes) -> None:
            self.send_response(status)
            for key, value in headers.items():
                if key.lower() != "content-length":
                    self.send_header(key, value)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def __getattr__(self, name: str) -> Any:
            # Every method goes to the gateway, which answers 404 for one without a route, as API
            # Gateway does (http.server would answer 501 with an HTML page).
            if name.startswith("do_"):
                return self._serve
            raise AttributeError(name)

        def log_message(self, format: str, *args: object) -> None:
            sys.stderr.write("http %s\n" % (format % args))

    return Handler


def demo_backend(cloud: LocalCloud, port: int, emulator_endpoint: str) -> DemoBackend:
    """The demo page's tenant backend: the demo tenant's token (scope verify), the outbox's e-mails."""
    from localcloud.outbox import collect, fetch

    def outbox() -> list[dict[str, str]]:
        sent = collect(fetch(emulator_endpoint))
        return [{"to": m.to, "subject": m.subject, "text": m.text} for m in sent if m.kind == "email"][:5]

    return DemoBackend(f"http://127.0.0.1:{port}", lambda: cloud.token("demo", ("verify",), 600), outbox)


def main(instances: int | None = None, env_vars: dict[str, dict[str, str]] | None = None) -> None:
    instances = instances_from_env() if instances is None else instances
    moto_port = int(os.environ.get("MOTO_PORT", "4566"))
    port = int(os.environ.get("PORT", "3000"))
    endpoint = f"http://127.0.0.1:{moto_port}"

    from localcloud.emulator import AtomicMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # the emulator's per-request lines

    emulator = AtomicMotoServer(ip_address="127.0.0.1", port=moto_port, verbose=False)
    emulator.start()
    os.environ.update(LOCAL_ENVIRONMENT)
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    session = boto3.session.Session(region_name=REGION)
    cloud: LocalCloud = start(session, emulator_endpoint=endpoint, instances=instances, env_vars=env_vars)
    # -- webhooks: the local receiver tenants' endpoints can point at (`make webhooks` prints what it got)
    from localcloud.receiver import Receiver

    receiver = Receiver(int(os.environ.get("WEBHOOK_RECEIVER_PORT", "3001"))).start()
    # -- end webhooks
    state = state_file()
    with open(state, "w", encoding="utf-8") as handle:
        json.dump(
            {
                "moto_endpoint": endpoint,
                "pool_id": cloud.pool_id,
                "client_ids": cloud.client_ids,
                "webhook_receiver": receiver.url,
            },
            handle,
        )

    httpd = GatewayServer(("127.0.0.1", port), make_handler(cloud.gateway, demo_backend(cloud, port, endpoint)))
    stopping = threading.Event()

    def deliver() -> None:
        while not stopping.wait(0.5):
            try:
                cloud.deliver_events()
            except Exception as error:  # keep delivering; a failed invocation is logged like Lambda's
                sys.stderr.write(f"event delivery failed: {error!r}\n")

    threading.Thread(target=deliver, name="event-sources", daemon=True).start()

    def stop(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    # Ctrl-C stops it even when it was started with SIGINT ignored (a background job of a script inherits that, and
    # Python then leaves SIGINT ignored)
    signal.signal(signal.SIGINT, stop)
    print(f"facegate local cloud: API http://127.0.0.1:{port}  AWS emulator {endpoint}", flush=True)
    if instances:
        print(f"each function runs in up to {instances} instances (LOCALCLOUD_INSTANCES)", flush=True)
    else:
        print("every handler runs in this process, one invocation at a time per function", flush=True)
    print(f"demo checkout page: http://127.0.0.1:{port}/demo/ (build it with `make sdk-js`)", flush=True)
    print("tenants: demo, other; get a token with `make token` (TENANT=other); Ctrl-C stops", flush=True)
    print(
        f"webhook receiver: {receiver.url} (register e.g. {receiver.url}/demo; `make webhooks` shows deliveries)",
        flush=True,
    )
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        stopping.set()
        httpd.server_close()
        cloud.gateway.close()
        receiver.stop()
        emulator.stop()
        if os.path.exists(state):
            os.remove(state)
        print("stopped", flush=True)

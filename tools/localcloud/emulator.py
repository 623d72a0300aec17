"""The AWS emulator of `make run`: moto's threaded server, with DynamoDB's atomicity restored.

moto's DynamoDB backend has no locking: under its threaded server the condition of a conditional write
and the write itself are separate steps, so two concurrent writers can both pass the same condition
(measured on moto 5.2.5 with 8 writers per trial: a conditional UpdateItem let two through in 2 of 50
trials, TransactWriteItems in 2 of 50). On AWS each conditional write and each transaction is atomic.
Since the local cloud runs functions in parallel worker processes, this server handles one DynamoDB
request at a time, which makes every DynamoDB request atomic (and stronger than DynamoDB: serialisable);
everything else (S3, SQS, KMS, ...) stays concurrent. Races between separate requests of our own code
(read, then write without a condition) still happen, as on AWS.

The in-process mode (`mock_aws`, the integration tests) does not use this server: tests there that run
threads against moto must drive the interleaving themselves and not rely on moto's atomicity.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

DYNAMODB_TARGET_PREFIX = "DynamoDB_"  # X-Amz-Target of DynamoDB's JSON protocol, e.g. DynamoDB_20120810.PutItem

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class SerialiseDynamoDB:
    """WSGI middleware: DynamoDB requests one at a time (the whole request and its answer), others as they come."""

    def __init__(self, app: WsgiApp) -> None:
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not str(environ.get("HTTP_X_AMZ_TARGET", "")).startswith(DYNAMODB_TARGET_PREFIX):
            return self.app(environ, start_response)
        with self.lock:  # the answer is complete before the next DynamoDB request starts
            answer = self.app(environ, start_response)
            try:
                return list(answer)
            finally:
                close = getattr(answer, "close", None)
                if close is not None:
                    close()


class AtomicMotoServer(ThreadedMotoServer):
    """ThreadedMotoServer whose DynamoDB requests are atomic (see the module's docstring)."""

    def _server_entry(self) -> None:
        app = SerialiseDynamoDB(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(self._ip_address, self._port, app, True, request_handler=MotoRequestHandler)
        self._server_ready_event.set()
        self._server.serve_forever()

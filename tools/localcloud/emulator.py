"""The AWS emulator of `make run`: moto's threaded server, with DynamoDB's atomicity restored.

moto's DynamoDB backend has no locking: the condition of a conditional write and the write itself are
separate Python steps, so two concurrent writers can both pass the same condition (measured on moto 5.2.5
with 8 writers per trial against its threaded server: a conditional UpdateItem let two through in 2 of 50
trials, TransactWriteItems in 2 of 50; in-process, with sys.setswitchinterval(1e-5), 35 of 100 trials of
16 threads passed a conditional limit of 5). On AWS each conditional write and each transaction is atomic.

One mechanism restores that wherever moto runs: `dynamodb_requests_one_at_a_time()` holds one lock
around moto's handling of each DynamoDB request (`DynamoHandler.call_action`, which evaluates the
condition and applies the write), so every DynamoDB request is atomic (stronger than DynamoDB: serialisable).
Everything else (S3, SQS, KMS, ...) stays concurrent, and races between separate requests of our own code
(read, then write without a condition) still happen, as on AWS.

- The emulator of `make run` (`AtomicMotoServer`) turns it on while it runs: the local cloud runs
  functions in parallel worker processes, whose requests reach moto's server concurrently.
- Tests that run threads against moto's in-process mock (`mock_aws`) turn it on with the `atomic_dynamodb`
  fixture (tests/conftest.py) when they race conditional writes; they must still drive the interleaving of
  our own code themselves (barriers, events), and never rely on moto to arbitrate two writers otherwise.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from moto.dynamodb.responses import DynamoHandler
from moto.moto_server.threaded_moto_server import ThreadedMotoServer

DYNAMODB_LOCK = threading.RLock()  # held while moto handles one DynamoDB request

_unserialised: Callable[..., Any] = DynamoHandler.call_action
_users = 0  # how many `dynamodb_requests_one_at_a_time()` blocks are open (a server and a test may overlap)
_users_lock = threading.Lock()


def _call_action_serialised(self: DynamoHandler) -> Any:
    with DYNAMODB_LOCK:
        return _unserialised(self)


@contextmanager
def dynamodb_requests_one_at_a_time() -> Iterator[None]:
    """While the block runs, moto handles one DynamoDB request at a time in this process (its server's
    and its in-process mock's alike); other services are not affected. Blocks may nest and overlap."""
    global _users
    with _users_lock:
        if _users == 0:
            DynamoHandler.call_action = _call_action_serialised  # type: ignore[method-assign]
        _users += 1
    try:
        yield
    finally:
        with _users_lock:
            _users -= 1
            if _users == 0:
                DynamoHandler.call_action = _unserialised  # type: ignore[method-assign]


class AtomicMotoServer(ThreadedMotoServer):
    """moto's threaded server whose DynamoDB requests are atomic while it runs (see the module's docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._atomic = ExitStack()

    def start(self) -> None:
        self._atomic.enter_context(dynamodb_requests_one_at_a_time())
        try:
            super().start()
        except BaseException:
            self._atomic.close()
            raise

    def stop(self) -> None:
        try:
            super().stop()
        finally:
            self._atomic.close()

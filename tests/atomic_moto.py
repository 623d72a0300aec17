"""DynamoDB's single-item atomicity for moto's in-process backend, for tests that race conditional writes.

DynamoDB applies a write to one item atomically: a ConditionExpression is evaluated and the write applied
as one step. moto 5's in-process backend does both in plain Python without a lock, so a thread switch
between them can let two conditional writers through (seen here with sys.setswitchinterval(1e-5): 35 of
100 trials of 16 threads exceeded a conditional limit of 5; none with this lock). A race test on moto
alone would therefore be flaky or prove nothing. This serialises moto's single-item writes (PutItem,
UpdateItem, DeleteItem) with one lock; moto still evaluates every condition and update itself. It does
not make TransactWriteItems atomic across items.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

import pytest
from moto.dynamodb.models import DynamoDBBackend

SINGLE_ITEM_WRITES = ("put_item", "update_item", "delete_item")
_LOCK = threading.RLock()


def _serialised(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def write(*args: Any, **kwargs: Any) -> Any:
        with _LOCK:
            return method(*args, **kwargs)

    return write


def make_single_item_writes_atomic(monkeypatch: pytest.MonkeyPatch) -> None:
    """Until the test ends (monkeypatch undoes it), one single-item write at a time, as DynamoDB applies them."""
    for name in SINGLE_ITEM_WRITES:
        monkeypatch.setattr(DynamoDBBackend, name, _serialised(getattr(DynamoDBBackend, name)))

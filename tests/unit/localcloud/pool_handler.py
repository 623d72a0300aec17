"""A handler for the pool's own tests: it rendezvouses at a barrier, crashes, raises or hangs on request."""

from __future__ import annotations

import os
import threading
from typing import Any

COLD_START_PID = os.getpid()  # set once, when the execution environment imports the handler


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    action = event.get("action")
    if action == "barrier":
        # Returns only once every party is inside an invocation at the same time; a pool that runs
        # invocations one after another breaks the barrier (after its timeout) instead.
        try:
            event["barrier"].wait(timeout=event["timeout"])
            met = True
        except threading.BrokenBarrierError:
            met = False
        return {"pid": os.getpid(), "met": met}
    if action == "crash":
        os._exit(1)  # the runtime dies mid-invocation
    if action == "raise":
        raise ValueError("the handler failed")
    if action == "hang":
        threading.Event().wait()  # a frozen dependency: never returns
    return {"pid": os.getpid(), "cold_start_pid": COLD_START_PID, "env": os.environ.get("POOL_TEST_VALUE")}

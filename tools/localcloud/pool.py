"""Lambda's execution environments, emulated: each function runs in a pool of worker processes.

On AWS, concurrent requests to one function run in separate execution environments, each of which
imports the handler once (the cold start) and then serves one invocation at a time. `make run` does
the same: every function gets up to `instances` worker processes, started on demand when a request
finds no idle one, kept warm afterwards, and replaced when one crashes or overruns the function's
Timeout. Workers reach the AWS emulator over HTTP (AWS_ENDPOINT_URL), so races between invocations
happen here as they do on AWS. The in-process mode of the integration tests (moto's in-process mock)
does not use this module.
"""

from __future__ import annotations

import contextlib
import importlib.util
import itertools
import multiprocessing
import os
import signal
import sys
import threading
import time
import traceback
import uuid
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

DEFAULT_INSTANCES = 3
INSTANCES_ENV = "LOCALCLOUD_INSTANCES"
# Lambda gives a cold start 10 s; a shared 2-core machine importing onnxruntime and the models in
# several new workers at once can take longer, so locally the limit is generous.
INIT_TIMEOUT_S = 120.0


def instances_from_env(default: int = DEFAULT_INSTANCES) -> int:
    """Instances per function from LOCALCLOUD_INSTANCES (0 runs every handler inside the gateway's own
    process, one invocation at a time per function: the integration tests' mode, handy for a debugger)."""
    raw = os.environ.get(INSTANCES_ENV, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SystemExit(f"{INSTANCES_ENV} must be a whole number, not {raw!r}") from None
    if value < 0:
        raise SystemExit(f"{INSTANCES_ENV} must be 0 or more, not {value}")
    return value


class LambdaContext:
    """The runtime's context object as a handler sees it."""

    def __init__(self, function_name: str, memory_mb: int, timeout_s: int) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = memory_mb
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@dataclass(frozen=True)
class FunctionSpec:
    """What a worker needs to become an execution environment of one function (picklable)."""

    logical: str
    code_path: str  # functions/<name>/app.py
    module_name: str
    environment: dict[str, str]
    memory_mb: int
    timeout_s: int

    @property
    def function_name(self) -> str:
        return f"facegate-local-{self.logical}"


def load_handler_module(code_path: str | Path, module_name: str) -> Any:
    """Import functions/<name>/app.py by path (every function's module is called app)."""
    spec = importlib.util.spec_from_file_location(module_name, code_path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


@dataclass(frozen=True)
class Invocation:
    """One invocation as the pool saw it; times are the gateway process's monotonic clock (ns)."""

    function: str
    instance: str
    pid: int
    started_ns: int
    finished_ns: int
    cold_start: bool

    def overlaps(self, other: Invocation) -> bool:
        return self.started_ns < other.finished_ns and other.started_ns < self.finished_ns


class FunctionError(Exception):
    """The handler raised (Lambda reports an unhandled error; the HTTP API answers 500)."""


class RuntimeExitedError(FunctionError):
    """The execution environment died or overran its timeout mid-invocation, and was discarded."""


def _worker_main(spec: FunctionSpec, conn: Connection) -> None:
    """A worker process: import the handler once, then serve invocations until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group; the gateway stops us
    os.environ.update(spec.environment)
    # The runtime's own variables, as Lambda sets them: with LAMBDA_TASK_ROOT the X-Ray SDK (imported by
    # Powertools' Tracer) knows it is in Lambda and does not build X-Ray clients at import (measured 170-520 ms
    # per cold start without it, by tools/bench_coldstart.py).
    os.environ.setdefault("LAMBDA_TASK_ROOT", str(Path(spec.code_path).resolve().parent))
    os.environ.setdefault("AWS_LAMBDA_FUNCTION_NAME", spec.function_name)
    os.environ.setdefault("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", str(spec.memory_mb))
    try:
        module = load_handler_module(spec.code_path, spec.module_name)
    except BaseException:
        conn.send(("init_error", traceback.format_exc()))
        return
    conn.send(("ready", os.getpid()))
    while True:
        try:
            event = conn.recv()
        except (EOFError, OSError):  # the gateway is gone
            return
        if event is None:
            return
        context = LambdaContext(spec.function_name, spec.memory_mb, spec.timeout_s)
        try:
            result = module.lambda_handler(event, context)
        except Exception as error:
            traceback.print_exc()  # as the Lambda runtime logs an unhandled error
            conn.send(("error", f"{type(error).__name__}: {error}"))
            continue
        conn.send(("ok", result))


class Instance:
    """One execution environment: a worker process and the gateway's end of its pipe."""

    def __init__(self, context: Any, spec: FunctionSpec, number: int) -> None:
        self.spec = spec
        self.name = f"{spec.logical}-{number}"
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_worker_main, args=(spec, child), name=self.name, daemon=True)
        self.process.start()
        child.close()
        self.pid: int = self.process.pid
        self.initialised = False

    def alive(self) -> bool:
        return self.process.is_alive()

    def _wait_ready(self) -> None:
        if not self.conn.poll(INIT_TIMEOUT_S):
            raise RuntimeExitedError(f"{self.name} did not finish its cold start within {INIT_TIMEOUT_S:.0f} s")
        kind, payload = self.conn.recv()
        if kind != "ready":
            raise RuntimeExitedError(f"{self.name} failed to initialise:\n{payload}")
        self.initialised = True

    def invoke(self, event: dict[str, Any]) -> Any:
        try:
            if not self.initialised:
                self._wait_ready()
            self.conn.send(event)
            if not self.conn.poll(self.spec.timeout_s):
                raise RuntimeExitedError(f"{self.name} timed out after {self.spec.timeout_s} s")
            kind, payload = self.conn.recv()
        except (EOFError, OSError) as error:
            raise RuntimeExitedError(f"{self.name} exited mid-invocation") from error
        if kind == "error":
            raise FunctionError(payload)
        return payload


def stop_instances(instances: list[Instance], grace_s: float = 3.0) -> None:
    """Ask every instance to exit at once, give them `grace_s` together, then kill the rest (busy, frozen
    or still starting): stopping the local cloud takes seconds however many instances it has."""
    for instance in instances:
        with contextlib.suppress(OSError):
            instance.conn.send(None)
    deadline = time.monotonic() + grace_s
    for instance in instances:
        instance.process.join(max(0.0, deadline - time.monotonic()))
    for instance in instances:
        if instance.process.is_alive():
            instance.process.kill()
            instance.process.join(5)
        instance.conn.close()


class FunctionPool:
    """Up to `size` execution environments of one function; an invocation takes an idle one, else
    starts a new one (cold start) while under the limit, else waits for one to become idle."""

    def __init__(self, context: Any, spec: FunctionSpec, size: int) -> None:
        if size < 1:
            raise ValueError("a pool needs at least one instance")
        self.spec = spec
        self.size = size
        self._context = context
        self._numbers = itertools.count(1)
        self._idle: list[Instance] = []
        self._all: list[Instance] = []
        self._changed = threading.Condition()
        self._closed = False
        self.log: deque[Invocation] = deque(maxlen=1000)

    def _acquire(self) -> tuple[Instance, int]:
        """An instance for one invocation, and when it was taken (under the lock, so that the order of
        the start times is the order in which invocations took their instances)."""
        with self._changed:
            while True:
                if self._closed:
                    raise FunctionError("the local cloud is stopping")
                while self._idle:
                    instance = self._idle.pop()  # the most recently used: warmest, as Lambda reuses
                    if instance.alive():
                        return instance, time.monotonic_ns()
                    self._all.remove(instance)  # died while idle (for example killed by hand)
                if len(self._all) < self.size:
                    instance = Instance(self._context, self.spec, next(self._numbers))
                    self._all.append(instance)
                    return instance, time.monotonic_ns()
                self._changed.wait()

    def _release(self, instance: Instance, healthy: bool) -> None:
        with self._changed:
            if healthy and not self._closed:
                self._idle.append(instance)
            elif instance in self._all:  # after close() the pool no longer lists it (close stops it)
                self._all.remove(instance)
            self._changed.notify()
        if not healthy:
            instance.process.kill()
            instance.process.join(5)
            instance.conn.close()

    def invoke(self, event: dict[str, Any]) -> tuple[Any, Invocation]:
        instance, started = self._acquire()
        cold = not instance.initialised
        healthy = True  # a handler error leaves the environment warm; a crash or a timeout does not
        try:
            result = instance.invoke(event)
        except RuntimeExitedError:
            healthy = False
            raise
        finally:
            invocation = Invocation(self.spec.logical, instance.name, instance.pid, started, time.monotonic_ns(), cold)
            self.log.append(invocation)
            self._release(instance, healthy)
        return result, invocation

    def instances(self) -> list[tuple[str, int]]:
        with self._changed:
            return [(i.name, i.pid) for i in self._all]

    def close(self) -> list[Instance]:
        """Refuse new invocations; the instances to stop (see stop_instances)."""
        with self._changed:
            self._closed = True
            everyone = list(self._all)
            self._all.clear()
            self._idle.clear()
            self._changed.notify_all()
        return everyone


class Pools:
    """One pool per function, created on first use."""

    def __init__(self, specs: dict[str, FunctionSpec], size: int) -> None:
        self.size = size
        self._specs = specs
        self._context = multiprocessing.get_context("spawn")  # no fork of a threaded process
        self._pools: dict[str, FunctionPool] = {}
        self._lock = threading.Lock()

    def pool(self, logical: str) -> FunctionPool:
        with self._lock:
            if logical not in self._pools:
                self._pools[logical] = FunctionPool(self._context, self._specs[logical], self.size)
            return self._pools[logical]

    def invoke(self, logical: str, event: dict[str, Any]) -> tuple[Any, Invocation]:
        return self.pool(logical).invoke(event)

    def close(self) -> None:
        with self._lock:
            pools = list(self._pools.values())
        stop_instances([instance for pool in pools for instance in pool.close()])

"""The local cloud's execution environments (localcloud.pool): concurrent invocations of one function
run in separate worker processes at the same time, as on Lambda (hardening item 9).

Concurrency is proven with a barrier, not with timing: each invocation waits at a barrier that opens
only when every party is inside an invocation at once, which a serialising runner can never achieve.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from localcloud.pool import (
    FunctionError,
    FunctionPool,
    FunctionSpec,
    Invocation,
    RuntimeExitedError,
    instances_from_env,
    stop_instances,
)

HANDLER = Path(__file__).with_name("pool_handler.py")


def spec(timeout_s: int = 60) -> FunctionSpec:
    return FunctionSpec(
        logical="PoolTestFunction",
        code_path=str(HANDLER),
        module_name="pool_test_handler",
        environment={"POOL_TEST_VALUE": "from-the-template"},
        memory_mb=128,
        timeout_s=timeout_s,
    )


@pytest.fixture
def manager() -> Iterator[Any]:
    with multiprocessing.get_context("spawn").Manager() as shared:
        yield shared


def make_pool(size: int, timeout_s: int = 60) -> FunctionPool:
    return FunctionPool(multiprocessing.get_context("spawn"), spec(timeout_s), size)


def invoke_all(pool: FunctionPool, events: list[dict[str, Any]]) -> list[tuple[Any, Invocation]]:
    with ThreadPoolExecutor(len(events)) as executor:
        return list(executor.map(pool.invoke, events))


def test_concurrent_invocations_run_in_separate_instances_at_the_same_time(manager: Any) -> None:
    pool = make_pool(size=3)
    try:
        barrier = manager.Barrier(3)
        answers = invoke_all(pool, [{"action": "barrier", "barrier": barrier, "timeout": 120}] * 3)
    finally:
        stop_instances(pool.close())
    assert [result["met"] for result, _ in answers] == [True, True, True]
    assert len({result["pid"] for result, _ in answers}) == 3
    assert len({invocation.instance for _, invocation in answers}) == 3
    assert all(os.getpid() != result["pid"] for result, _ in answers)
    first, second, third = (invocation for _, invocation in answers)
    assert first.overlaps(second) and second.overlaps(third) and first.overlaps(third)
    assert all(invocation.cold_start for _, invocation in answers)


def test_one_instance_serialises_and_cannot_meet_the_barrier(manager: Any) -> None:
    """The control: with one instance (as `make run` behaved before), two invocations never overlap."""
    pool = make_pool(size=1)
    try:
        barrier = manager.Barrier(2)
        answers = invoke_all(pool, [{"action": "barrier", "barrier": barrier, "timeout": 2}] * 2)
    finally:
        stop_instances(pool.close())
    assert [result["met"] for result, _ in answers] == [False, False]
    (_, first), (_, second) = answers
    assert first.instance == second.instance and not first.overlaps(second)


def test_an_instance_imports_the_handler_once_and_stays_warm() -> None:
    pool = make_pool(size=2)
    try:
        (first, cold), (second, warm) = pool.invoke({}), pool.invoke({})
    finally:
        stop_instances(pool.close())
    assert first["pid"] == second["pid"] == first["cold_start_pid"] == second["cold_start_pid"]
    assert cold.cold_start and not warm.cold_start
    assert first["env"] == "from-the-template"  # the function's environment, set before the import


def test_a_handler_error_keeps_the_instance() -> None:
    pool = make_pool(size=1)
    try:
        before, _ = pool.invoke({})
        with pytest.raises(FunctionError, match="ValueError: the handler failed"):
            pool.invoke({"action": "raise"})
        after, _ = pool.invoke({})
    finally:
        stop_instances(pool.close())
    assert before["pid"] == after["pid"]


def test_an_instance_that_dies_mid_invocation_is_replaced() -> None:
    pool = make_pool(size=1)
    try:
        before, _ = pool.invoke({})
        with pytest.raises(RuntimeExitedError, match="exited mid-invocation"):
            pool.invoke({"action": "crash"})
        after, invocation = pool.invoke({})
    finally:
        stop_instances(pool.close())
    assert after["pid"] != before["pid"] and invocation.cold_start


def test_an_instance_that_overruns_the_timeout_is_stopped_and_replaced() -> None:
    pool = make_pool(size=1, timeout_s=1)
    try:
        before, _ = pool.invoke({})
        with pytest.raises(RuntimeExitedError, match="timed out after 1 s"):
            pool.invoke({"action": "hang"})
        after, _ = pool.invoke({})
    finally:
        stop_instances(pool.close())
    assert after["pid"] != before["pid"]


def test_no_more_instances_than_the_limit(manager: Any) -> None:
    """Four invocations at once against two instances: two meet at a two-party barrier, the other two
    wait for a free instance (they cannot start a third) and then meet at theirs."""
    pool = make_pool(size=2)
    try:
        gate = manager.Barrier(2)
        answers = invoke_all(pool, [{"action": "barrier", "barrier": gate, "timeout": 120}] * 4)
        instances = pool.instances()
    finally:
        stop_instances(pool.close())
    assert all(result["met"] for result, _ in answers)
    assert len(instances) == 2 and len({invocation.instance for _, invocation in answers}) == 2


def test_instances_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOCALCLOUD_INSTANCES", raising=False)
    assert instances_from_env() == 3
    monkeypatch.setenv("LOCALCLOUD_INSTANCES", "5")
    assert instances_from_env() == 5
    monkeypatch.setenv("LOCALCLOUD_INSTANCES", "0")
    assert instances_from_env() == 0
    for bad in ("many", "-1"):
        monkeypatch.setenv("LOCALCLOUD_INSTANCES", bad)
        with pytest.raises(SystemExit, match="LOCALCLOUD_INSTANCES"):
            instances_from_env()


def test_a_closed_pool_refuses_new_invocations() -> None:
    pool = make_pool(size=1)
    pool.invoke({})
    stopped = pool.close()
    stop_instances(stopped)
    with pytest.raises(FunctionError, match="stopping"):
        pool.invoke({})
    assert pool.instances() == []
    assert len(stopped) == 1 and not stopped[0].process.is_alive()

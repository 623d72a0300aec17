"""The face lockout's attempt reservations (hardening item 5), on the SessionsTable's key schema from
template.yaml in moto's in-process DynamoDB. Times are given explicitly: nothing sleeps."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from moto import mock_aws

from facegate.matching.dynamo import AttemptRepository, AttemptsItem
from facegate.matching.entities import Reservation
from localcloud.template import load_template

pytestmark = pytest.mark.integration  # the repository on a moto table: not in the fast unit tier

REGION = "us-east-1"
LIMIT = 5
WINDOW = timedelta(minutes=15)
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def attempts(monkeypatch: pytest.MonkeyPatch) -> Iterator[AttemptRepository]:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    # The item class is bound to a table globally: give it back as it was (the integration cloud uses it too).
    for name in ("table_name", "region"):
        monkeypatch.setattr(AttemptsItem.Meta, name, getattr(AttemptsItem.Meta, name, None), raising=False)
    monkeypatch.setattr(AttemptsItem, "_connection", None)
    props = load_template()["Resources"]["SessionsTable"]["Properties"]
    table = f"sessions-{uuid.uuid4().hex[:8]}"  # moto's state is shared when another mock is active
    with mock_aws():
        boto3.client("dynamodb", region_name=REGION).create_table(
            TableName=table,
            KeySchema=props["KeySchema"],
            AttributeDefinitions=props["AttributeDefinitions"],
            BillingMode="PAY_PER_REQUEST",
        )
        yield AttemptRepository(table, REGION)


def reserve(attempts: AttemptRepository, at: datetime, subject: str = "ref-a") -> Reservation | None:
    return attempts.reserve("demo", subject, "checkout", at, LIMIT, WINDOW)


def counted(attempts: AttemptRepository, at: datetime, subject: str = "ref-a") -> int:
    return attempts.recent_failures("demo", subject, "checkout", at - WINDOW)


def test_five_attempts_per_window_then_locked(attempts: AttemptRepository) -> None:
    # Given five attempts reserved within the window
    made = [reserve(attempts, T0 + timedelta(minutes=i)) for i in range(LIMIT)]
    assert all(made) and counted(attempts, T0 + timedelta(minutes=5)) == LIMIT
    # Then the sixth is refused until the window (opened by the first) ends
    assert reserve(attempts, T0 + timedelta(minutes=14, seconds=59)) is None
    # And another subject, or another purpose, has a window of its own
    assert reserve(attempts, T0, subject="ref-b") is not None
    assert attempts.reserve("demo", "ref-a", "exam_proctoring", T0, LIMIT, WINDOW) is not None


def test_a_new_window_opens_when_the_last_one_ended(attempts: AttemptRepository) -> None:
    for _ in range(LIMIT):
        assert reserve(attempts, T0)
    assert reserve(attempts, T0 + WINDOW) is not None
    assert counted(attempts, T0 + WINDOW) == 1


def test_a_release_gives_the_attempt_back_once(attempts: AttemptRepository) -> None:
    # Given a full window
    made = [reserve(attempts, T0) for _ in range(LIMIT)]
    # When one attempt ends before a decision (say no face was found) and gives its reservation back
    attempts.release(made[0])  # type: ignore[arg-type]
    # Then exactly one more attempt can be made
    assert counted(attempts, T0) == LIMIT - 1
    assert reserve(attempts, T0) is not None
    assert reserve(attempts, T0) is None


def test_a_late_release_never_touches_a_newer_window(attempts: AttemptRepository) -> None:
    # Given a reservation of a window that has since ended and been replaced by a new one
    old = reserve(attempts, T0)
    assert old is not None
    for _ in range(LIMIT):
        assert reserve(attempts, T0 + WINDOW)
    # When the old attempt releases late, Then the new window still counts all its attempts
    attempts.release(old)
    assert counted(attempts, T0 + WINDOW) == LIMIT
    assert reserve(attempts, T0 + WINDOW) is None


def test_a_match_clears_the_window_and_stale_releases_do_nothing(attempts: AttemptRepository) -> None:
    made = [reserve(attempts, T0) for _ in range(LIMIT)]
    attempts.clear("demo", "ref-a", "checkout")
    assert counted(attempts, T0) == 0
    fresh = reserve(attempts, T0)
    assert fresh is not None
    for reservation in made:
        attempts.release(reservation)  # type: ignore[arg-type]
    assert counted(attempts, T0) == 1


def test_concurrent_reservations_never_exceed_the_limit(attempts: AttemptRepository, atomic_dynamodb: None) -> None:
    """15 threads released together by a barrier reserve at once: exactly five get through. DynamoDB applies
    each conditional UpdateItem atomically; moto's in-process backend does not lock, so the test restores that
    guarantee (the `atomic_dynamodb` fixture) and then proves that our conditions alone hold the limit."""
    threads_count = 15
    barrier = threading.Barrier(threads_count)
    results: list[Reservation | None] = []
    lock = threading.Lock()

    def attempt() -> None:
        barrier.wait()
        made = reserve(attempts, T0)
        with lock:
            results.append(made)

    threads = [threading.Thread(target=attempt) for _ in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == threads_count
    assert sum(r is not None for r in results) == LIMIT
    assert counted(attempts, T0) == LIMIT

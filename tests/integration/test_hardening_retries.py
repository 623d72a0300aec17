"""Hardening item 7 (retries and crashes): a retry while the first request with the same Idempotency-Key
runs, or after the instance running it crashed, is told to come back (409 `request_in_progress` with
Retry-After) instead of a 500; the lock of a crashed request ends with the function's timeout; an
enrolment orphaned in `pending` ends within a bounded time.

Interleavings are driven explicitly: a threading.Event holds the first request inside the service it
calls (our own code, wrapped; AWS stays moto), and a crash is an exception that no handler catches, as
when Lambda kills an instance. Time moves through the services' injected clock, never by sleeping.
"""

from __future__ import annotations

import base64
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests

from facegate.core.clock import utcnow
from facegate.core.config import ClientLimits
from facegate.enrolment.entities import PROCESSING_SECONDS, UPLOAD_SECONDS
from facegate.wiring import container, fallback
from localcloud.cloud import LocalCloud
from localcloud.gateway import LambdaContext, build_event, to_http
from tests.integration.conftest import Api, Reply
from tests.integration.test_consent_api import consent_body, current_notice
from tests.integration.test_enrolment_api import grant, inline, uploads_bucket_keys

pytestmark = pytest.mark.integration


class InstanceCrashed(BaseException):
    """The instance dies mid-request: no handler catches it and no clean-up meant for errors runs
    (Powertools releases an idempotency lock only on `Exception`), as when Lambda kills a timed-out or
    out-of-memory instance. (`finally` blocks still run; where that matters the test makes them crash too.)"""


def function_timeout(cloud: LocalCloud, function: str) -> int:
    template = cloud.stack.template
    globals_timeout = template["Globals"]["Function"]["Timeout"]
    return int(template["Resources"][function]["Properties"].get("Timeout", globals_timeout))


def invoke(
    cloud: LocalCloud,
    method: str,
    path: str,
    body: dict[str, Any],
    headers: dict[str, str] | None = None,
    context: LambdaContext | None = None,
) -> Reply:
    """One request as the gateway makes it (route, JWT authorizer, payload 2.0 event, the real handler),
    but without the local gateway's one-at-a-time lock per function: on AWS, concurrent requests run in
    concurrent instances. Both run in this process, so that the test can hold one of them."""
    gateway = cloud.gateway
    route, match = next(
        (r, m) for r in gateway.routes if r.method == method and (m := r.pattern.match(path)) is not None
    )
    all_headers = {"content-type": "application/json", "authorization": f"Bearer {cloud.token('demo')}"}
    all_headers.update({k.lower(): v for k, v in (headers or {}).items()})
    claims, scopes = gateway.authorizer.authorize(all_headers["authorization"], list(route.scopes))
    jwt_context = {"claims": {k: str(v) for k, v in claims.items()}, "scopes": scopes}
    event = build_event(route, match.groupdict(), method, path, "", all_headers, json.dumps(body).encode(), jwt_context)
    module = gateway.handler_module(route.function)
    context = context or LambdaContext(
        f"facegate-local-{route.function}", 1024, function_timeout(cloud, route.function)
    )
    response = to_http(module.lambda_handler(event, context))
    return Reply(response.status, response.headers, response.body)


def assert_in_progress(reply: Reply) -> None:
    assert reply.status == 409, reply.body
    assert reply.headers["content-type"] == "application/problem+json"
    assert reply.json["code"] == "request_in_progress"
    retry_after = int(reply.headers["retry-after"])
    assert retry_after >= 1 and reply.json["retry_after"] == retry_after


def idempotency_records(aws: boto3.session.Session, cloud: LocalCloud, subject_id: str) -> list[dict[str, Any]]:
    ref = container().hasher.ref("demo", subject_id)
    table = cloud.stack.ref("IdempotencyTable")
    return aws.client("dynamodb").query(
        TableName=table,
        KeyConditionExpression="id = :p",
        ExpressionAttributeValues={":p": {"S": f"idempotency#T#demo#S#{ref}"}},
    )["Items"]


# --- a retry while the first request runs


def test_a_parallel_retry_is_answered_409_with_retry_after_then_gets_the_first_answer(
    api: Api, cloud: LocalCloud, subject_id: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Given the first request held inside the consent service, its idempotency record INPROGRESS
    service = container().consents
    record = service.record
    entered, release = threading.Event(), threading.Event()
    calls: list[str] = []

    def held(*args: Any, **kwargs: Any) -> Any:
        calls.append(subject_id)
        entered.set()
        assert release.wait(60), "the test never released the first request"
        return record(*args, **kwargs)

    monkeypatch.setattr(service, "record", held)
    path = f"/v1/subjects/{subject_id}/consents"
    body = consent_body(current_notice(api, "checkout", "en"))
    headers = {"Idempotency-Key": "mobile-retry-parallel-0001"}
    caplog.set_level(logging.INFO)

    with ThreadPoolExecutor(max_workers=1) as pool:
        first = pool.submit(invoke, cloud, "POST", path, body, headers)
        try:
            assert entered.wait(60), "the first request never reached the service"
            # When the mobile client retries while the first request still runs
            retry = invoke(cloud, "POST", path, body, headers)
        finally:
            release.set()
        answered = first.result(timeout=60)

    # Then the retry is told to come back, the first request completes, and the service ran once
    assert_in_progress(retry)
    assert answered.status == 201, answered.body
    assert calls == [subject_id]
    # And it was logged as the expected event it is, not as an error with a stack trace
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert any(r.getMessage() == "request in progress" and r.levelno == logging.INFO for r in caplog.records)
    # And the retry after the first finished gets the first answer
    again = invoke(cloud, "POST", path, body, headers)
    assert again.status == 201 and again.json["record_id"] == answered.json["record_id"]
    assert calls == [subject_id]


# --- a retry after the instance crashed mid-request


@dataclass
class Route:
    function: str
    service: Callable[[], Any]  # the service object the handler calls
    method: str  # the method of it that the crash interrupts
    path: Callable[[str], str]
    body: Callable[[Api, str], dict[str, Any]]
    proceeds: int  # the status of the retry once the lock has ended: the real service's answer


def _consent(api: Api, subject_id: str) -> dict[str, Any]:
    return consent_body(current_notice(api, "checkout", "en"))


def _enrolment(api: Api, subject_id: str) -> dict[str, Any]:
    grant(api, subject_id)
    return {"purpose": "checkout"}  # a presigned upload: no engine work needed to prove the point


def _verification(api: Api, subject_id: str) -> dict[str, Any]:
    probe = base64.b64encode(b"\xff\xd8\xff not really a photo").decode()
    return {"subject_id": subject_id, "purpose": "checkout", "image": probe, "security_level": "standard"}


def _session(api: Api, subject_id: str) -> dict[str, Any]:
    return {"subject_id": subject_id, "purpose": "checkout", "email": f"{subject_id}@example.com", "locale": "en"}


def _challenge(api: Api, subject_id: str) -> dict[str, Any]:
    started = api.call("POST", "/v1/verification-sessions", _session(api, subject_id))
    assert started.status == 201, started.body
    return {"session_id": started.json["session_id"], "method": "email_otp"}


ROUTES = {
    "consent": Route(
        "ConsentFunction", lambda: container().consents, "record", lambda s: f"/v1/subjects/{s}/consents", _consent, 201
    ),
    "enrolment": Route(
        "EmbeddingFunction",
        lambda: container().enrolments,
        "start",
        lambda s: f"/v1/subjects/{s}/enrolments",
        _enrolment,
        202,
    ),
    # Without consent the real verification refuses: 403 shows the retry reached the service.
    "verification": Route(
        "MatchingFunction",
        lambda: container().verifications,
        "verify",
        lambda s: "/v1/verifications",
        _verification,
        403,
    ),
    "session": Route(
        "FallbackFunction", lambda: fallback().sessions, "start", lambda s: "/v1/verification-sessions", _session, 201
    ),
    "challenge": Route(
        "FallbackFunction", lambda: fallback().challenges, "start", lambda s: "/v1/fallback/challenges", _challenge, 201
    ),
}


@pytest.fixture(scope="module", autouse=True)
def _sender_verified(cloud: LocalCloud) -> None:
    """E-mail OTP challenges need the SES sender the local cloud verifies at start-up."""
    from localcloud.cloud import REGION
    from localcloud.outbox import verify_senders

    verify_senders(boto3.session.Session(region_name=REGION), cloud.stack)


@pytest.mark.parametrize("name", list(ROUTES))
def test_after_a_crash_the_lock_lasts_until_the_function_timeout_then_the_retry_proceeds(
    name: str,
    api: Api,
    cloud: LocalCloud,
    aws: boto3.session.Session,
    subject_id: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    route = ROUTES[name]
    body = route.body(api, subject_id)
    cloud.gateway.handler_module(route.function)  # builds the handler's services as a cold start would
    service = route.service()
    real = getattr(service, route.method)
    calls: list[int] = []

    def crashes_first(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise InstanceCrashed()
        return real(*args, **kwargs)

    monkeypatch.setattr(service, route.method, crashes_first)
    path, headers = route.path(subject_id), {"Idempotency-Key": f"crash-{name}-0001"}
    timeout = function_timeout(cloud, route.function)

    # Given an instance that crashed mid-request, with the function's timeout as its deadline
    started_ms = int(time.time() * 1000)
    with pytest.raises(InstanceCrashed):
        invoke(cloud, "POST", path, body, headers)

    ended_ms = int(time.time() * 1000)

    # Then its lock ends when the crashed invocation's time would have run out (its context's deadline),
    # not when the record expires (24 hours)
    [record] = idempotency_records(aws, cloud, subject_id)
    assert record["status"]["S"] == "INPROGRESS"
    lock_ends_ms = int(record["in_progress_expiration"]["N"])
    assert started_ms + timeout * 1000 - 1 <= lock_ends_ms <= ended_ms + timeout * 1000

    # When the client retries before that: 409 with Retry-After, logged below ERROR. (The deadline is pinned an
    # hour ahead first, so that "before that" does not depend on how fast a loaded machine runs the retry.)
    table = cloud.stack.ref("IdempotencyTable")
    ddb = aws.client("dynamodb")
    pinned = {":t": {"N": str(int(time.time() * 1000) + 3_600_000)}}
    key = {"id": record["id"], "sk": record["sk"]}
    ddb.update_item(
        TableName=table, Key=key, UpdateExpression="SET in_progress_expiration = :t", ExpressionAttributeValues=pinned
    )
    caplog.set_level(logging.INFO)
    caplog.clear()
    assert_in_progress(invoke(cloud, "POST", path, body, headers))
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert len(calls) == 1

    # When the function's timeout has passed (moving the stored deadline back by the timeout is waiting that long)
    ddb.update_item(
        TableName=table,
        Key=key,
        UpdateExpression="SET in_progress_expiration = :t",
        ExpressionAttributeValues={":t": {"N": str(lock_ends_ms - timeout * 1000 - 1000)}},
    )
    # Then the retry proceeds to the service and gets its real answer
    retried = invoke(cloud, "POST", path, body, headers)
    assert retried.status == route.proceeds, retried.body
    assert len(calls) == 2


# --- enrolments orphaned in pending


class Clock:
    """The clock of the running handlers' enrolment and deletion services, frozen: it moves only when the
    test moves it, so that deadlines are crossed exactly where the test says."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock(cloud: LocalCloud) -> Iterator[Clock]:
    shared, frozen = container(), Clock()
    saved, shared.clock = shared.clock, frozen
    yield frozen
    shared.clock = saved


def test_a_processing_deadline_outlasts_any_invocation_that_could_still_be_processing(cloud: LocalCloud) -> None:
    """Why ending a job past its deadline is safe: a processing run lives in one embedding invocation,
    which Lambda ends at the function's Timeout, well before the deadline (the margin covers clocks)."""
    assert function_timeout(cloud, "EmbeddingFunction") * 2 <= PROCESSING_SECONDS


@pytest.fixture(scope="module")
def photo(enrollable_people: list[list[Path]]) -> Path:
    return enrollable_people[1][0]


def job_item(aws: boto3.session.Session, cloud: LocalCloud, subject_id: str, enrolment_id: str) -> dict[str, Any]:
    """The stored job, read without going through the API (a GET would itself end an overdue job)."""
    ref = container().hasher.ref("demo", subject_id)
    return aws.client("dynamodb").get_item(
        TableName=cloud.stack.ref("JobsTable"),
        Key={"pk": {"S": f"T#demo#S#{ref}"}, "sk": {"S": f"ENROLMENT#{enrolment_id}"}},
        ConsistentRead=True,
    )["Item"]


def crash_inline_enrolment(
    api: Api, cloud: LocalCloud, subject_id: str, photo: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    """An inline enrolment whose instance dies inside the face engine: the job stays pending."""
    grant(api, subject_id)

    def crash(image: bytes) -> Any:
        raise InstanceCrashed()

    with monkeypatch.context() as patch:
        patch.setattr(container().biometrics, "enrol", crash)
        with pytest.raises(InstanceCrashed):
            invoke(cloud, "POST", f"/v1/subjects/{subject_id}/enrolments", inline(photo))
    # The job is the only trace of the crashed request.
    [job] = [item for item in all_jobs(cloud, subject_id) if item["status"]["S"] == "pending"]
    return job["sk"]["S"].removeprefix("ENROLMENT#")


def all_jobs(cloud: LocalCloud, subject_id: str) -> list[dict[str, Any]]:
    ref = container().hasher.ref("demo", subject_id)
    return cloud.session.client("dynamodb").query(
        TableName=cloud.stack.ref("JobsTable"),
        KeyConditionExpression="pk = :p AND begins_with(sk, :e)",
        ExpressionAttributeValues={":p": {"S": f"T#demo#S#{ref}"}, ":e": {"S": "ENROLMENT#"}},
    )["Items"]


@pytest.mark.slow
def test_an_inline_enrolment_orphaned_by_a_crash_fails_processing_interrupted_once_its_deadline_passed(
    api: Api, cloud: LocalCloud, subject_id: str, photo: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an inline enrolment whose instance crashed while processing
    enrolment_id = crash_inline_enrolment(api, cloud, subject_id, photo, monkeypatch)
    status = f"/v1/subjects/{subject_id}/enrolments/{enrolment_id}"

    # Then, while the crashed run could still be alive, it is pending
    assert api.call("GET", status).json["status"] == "pending"
    clock.advance(seconds=PROCESSING_SECONDS - 5)
    assert api.call("GET", status).json["status"] == "pending"

    # When its processing deadline has passed, it has ended with a stable reason
    clock.advance(seconds=10)
    reply = api.call("GET", status)
    assert reply.status == 200 and reply.json["status"] == "failed", reply.body
    assert reply.json["reason"] == "processing_interrupted" and reply.json["detail"]
    # And a new enrolment works
    again = api.call("POST", f"/v1/subjects/{subject_id}/enrolments", inline(photo))
    assert again.status == 201 and again.json["status"] == "completed", again.body


def test_a_presigned_enrolment_whose_upload_never_came_fails_upload_not_received(
    api: Api, cloud: LocalCloud, aws: boto3.session.Session, subject_id: str, clock: Clock
) -> None:
    # Given a presigned enrolment whose upload never comes
    grant(api, subject_id)
    started = api.call("POST", f"/v1/subjects/{subject_id}/enrolments", {"purpose": "checkout"})
    assert started.status == 202, started.body
    expires_in = started.json["upload"]["expires_in"]
    status = f"/v1/subjects/{subject_id}/enrolments/{started.json['enrolment_id']}"

    # Then it is pending while an upload can still come (the URL's lifetime plus the grace for S3's event)
    clock.advance(seconds=UPLOAD_SECONDS - 1)
    assert expires_in < UPLOAD_SECONDS
    assert api.call("GET", status).json["status"] == "pending"

    # When that time has passed, it has ended
    clock.advance(seconds=2)
    reply = api.call("GET", status)
    assert reply.json["status"] == "failed" and reply.json["reason"] == "upload_not_received", reply.body
    item = job_item(aws, cloud, subject_id, started.json["enrolment_id"])
    assert item["status"]["S"] == "failed"


@pytest.mark.slow
def test_the_hourly_sweep_ends_orphaned_enrolments_without_anyone_asking(
    api: Api,
    cloud: LocalCloud,
    aws: boto3.session.Session,
    subject_id: str,
    photo: Path,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a crashed inline enrolment and a presigned one whose upload never came
    crashed = crash_inline_enrolment(api, cloud, subject_id, photo, monkeypatch)
    started = api.call("POST", f"/v1/subjects/{subject_id}/enrolments", {"purpose": "checkout"})
    assert started.status == 202, started.body
    waiting = started.json["enrolment_id"]

    # When the scheduled sweep runs before their deadlines, they stay pending
    assert cloud.gateway.invoke("DeletionFunction", {})["swept"]["enrolments_ended"] >= 0
    assert job_item(aws, cloud, subject_id, crashed)["status"]["S"] == "pending"
    assert job_item(aws, cloud, subject_id, waiting)["status"]["S"] == "pending"

    # When it runs after both deadlines (EventBridge Scheduler sends the deletion function an empty event)
    clock.advance(seconds=max(PROCESSING_SECONDS, UPLOAD_SECONDS) + 1)
    swept = cloud.gateway.invoke("DeletionFunction", {})["swept"]

    # Then both have ended, each with its reason, and the sweep says how many it ended
    assert swept["enrolments_ended"] >= 2
    first, second = job_item(aws, cloud, subject_id, crashed), job_item(aws, cloud, subject_id, waiting)
    assert (first["status"]["S"], first["reason"]["S"]) == ("failed", "processing_interrupted")
    assert (second["status"]["S"], second["reason"]["S"]) == ("failed", "upload_not_received")


@pytest.mark.slow
def test_an_upload_whose_processing_crashed_is_deleted_when_its_job_ends(
    api: Api, cloud: LocalCloud, aws: boto3.session.Session, subject_id: str, photo: Path, clock: Clock
) -> None:
    # Given a presigned upload that arrived, and an instance that crashed while enrolling it
    grant(api, subject_id)
    started = api.call("POST", f"/v1/subjects/{subject_id}/enrolments", {"purpose": "checkout"})
    form = started.json["upload"]
    posted = requests.post(form["url"], data=form["fields"], files={"file": ("selfie", photo.read_bytes())}, timeout=30)
    assert posted.status_code in (200, 201, 204)
    [event] = take_upload_events(cloud)

    def crash(image: bytes) -> Any:
        raise InstanceCrashed()

    with pytest.MonkeyPatch.context() as patch:
        # The instance dies inside the engine and does nothing after that: not even `finally` clean-up.
        patch.setattr(container().biometrics, "enrol", crash)
        patch.setattr(container().uploads, "delete", crash)
        with pytest.raises(InstanceCrashed):
            cloud.gateway.invoke("EmbeddingFunction", event)
    enrolment_id = started.json["enrolment_id"]
    assert any(enrolment_id in key for key in uploads_bucket_keys(aws, api))  # a crash runs no clean-up

    # When Lambda retries the event while the crashed run could still be alive, nothing runs twice
    assert cloud.gateway.invoke("EmbeddingFunction", event)["outcomes"] == ["pending"]

    # When its processing deadline has passed
    clock.advance(seconds=PROCESSING_SECONDS + 1)
    reply = api.call("GET", f"/v1/subjects/{subject_id}/enrolments/{enrolment_id}")

    # Then the job has ended and the raw image is gone
    assert reply.json["status"] == "failed" and reply.json["reason"] == "processing_interrupted", reply.body
    assert not any(enrolment_id in key for key in uploads_bucket_keys(aws, api))


def take_upload_events(cloud: LocalCloud) -> list[dict[str, Any]]:
    """The S3 events waiting for the embedding function, taken off its queue as Lambda's poller takes them."""
    sqs = cloud.session.client("sqs")
    trigger = next(t for t in cloud.triggers if t.function == "EmbeddingFunction" and t.kind == "s3")
    messages = sqs.receive_message(QueueUrl=trigger.queue_url, MaxNumberOfMessages=10).get("Messages", [])
    for message in messages:
        sqs.delete_message(QueueUrl=trigger.queue_url, ReceiptHandle=message["ReceiptHandle"])
    return [event for m in messages if (event := json.loads(m["Body"])).get("Records")]


# --- a frozen dependency


def test_a_dependency_that_does_not_answer_in_time_is_a_503_with_retry_after_and_a_retry_works_once_back(
    api: Api, cloud: LocalCloud, subject_id: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Given KMS frozen: it accepts connections and never answers (a real endpoint, no fake of KMS)
    server = socket.create_server(("127.0.0.1", 0))
    limits = ClientLimits(connect_timeout=0.3, read_timeout=0.3, max_attempts=2)
    frozen = boto3.session.Session(region_name="us-east-1").client(
        "kms", endpoint_url=f"http://127.0.0.1:{server.getsockname()[1]}", config=limits.botocore_config()
    )
    signer = container().signer
    monkeypatch.setattr(signer, "_kms", frozen)
    path = f"/v1/subjects/{subject_id}/consents"
    body, headers = consent_body(current_notice(api, "checkout", "en")), {"Idempotency-Key": "frozen-kms-0001"}
    caplog.set_level(logging.INFO)

    # When a consent is recorded, which signs a receipt with KMS
    try:
        reply = invoke(cloud, "POST", path, body, headers)
    finally:
        server.close()

    # Then the answer is a 503 with Retry-After (not a 500 with a stack trace), and nothing was recorded
    assert reply.status == 503, reply.body
    assert reply.json["code"] == "service_unavailable" and int(reply.headers["retry-after"]) >= 1
    assert not any(r.levelno >= logging.ERROR and r.exc_info for r in caplog.records)
    assert api.call("GET", f"{path}/history").json["records"] == []

    # When KMS is back, the client's retry with the same key is processed (the lock was released)
    monkeypatch.undo()
    again = invoke(cloud, "POST", path, body, headers)
    assert again.status == 201, again.body

"""Webhooks through the real handlers on moto: a domain event goes EventBridge -> rule -> SQS -> the webhooks
function, which POSTs it signed to a real local HTTP receiver (a thread); a failing receiver is retried with the
same webhook-id until the dead-letter queue takes the delivery; a rotated secret signs next to the new one."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from facegate import wiring
from facegate.core.clock import utcnow
from facegate_sdk.webhooks import WebhookVerificationError, verify_webhook
from localcloud.cloud import LocalCloud
from localcloud.receiver import Receiver
from tests.integration.conftest import Api, event_bus_outage
from tests.integration.test_enrolment_api import grant
from tests.integration.test_fallback_api import (  # noqa: F401
    code_in,
    emails_to,
    refuse,
    sender_verified,
    start_challenge,
    start_session,
)
from tests.integration.test_fallback_api import verify as verify_code

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    local = Receiver().start()
    yield local
    local.stop()


@pytest.fixture
def endpoints(api: Api) -> Iterator[list[str]]:
    """Endpoints a test registers; deleted afterwards so that other tests' events are not delivered to them. Events
    that earlier tests left queued are delivered first (to no endpoint of this test: fan-out reads the endpoints
    when it runs)."""
    deliver(api.cloud, 2)
    made: list[str] = []
    yield made
    for endpoint_id in made:
        api.call("DELETE", f"/v1/webhooks/endpoints/{endpoint_id}")


def register(api: Api, endpoints: list[str], url: str, events: list[str], tenant: str = "demo") -> dict[str, Any]:
    reply = api.call("POST", "/v1/webhooks/endpoints", {"url": url, "events": events}, tenant=tenant)
    assert reply.status == 201, reply.body
    assert reply.headers.get("cache-control") == "no-store"
    if tenant == "demo":
        endpoints.append(reply.json["endpoint_id"])
    return reply.json


def received(receiver: Receiver, path: str) -> list[Any]:
    return [r for r in receiver.received() if r.path == path]


def deliver(cloud: LocalCloud, times: int = 1) -> None:
    for _ in range(times):
        cloud.deliver_events()


def email_otp_verified(api: Api, subject_id: str) -> dict[str, Any]:
    """A fallback verification (no face): the person refused face, an e-mail code verifies them."""
    refuse(api, subject_id)
    address = f"{subject_id}@example.com"
    session = start_session(api, subject_id, email=address, locale="en")
    challenge = start_challenge(api, session["session_id"], "email_otp")
    _, body = emails_to(address)[-1]
    reply = verify_code(api, challenge["challenge_id"], code_in(body))
    assert reply.status == 200, reply.body
    return reply.json


def queue_url(cloud: LocalCloud, logical: str) -> str:
    return str(cloud.stack.ref(logical))


# ---------------------------------------------------------------- endpoints


def test_endpoints_are_admin_tenant_scoped_and_their_urls_checked(api: Api, endpoints: list[str]) -> None:
    made = register(api, endpoints, "http://127.0.0.1:9/demo", ["verification.decided"])
    assert made["secret"].startswith("whsec_") and made["endpoint_id"].startswith("we_")
    listed = api.call("GET", "/v1/webhooks/endpoints").json["endpoints"]
    assert made["endpoint_id"] in [e["endpoint_id"] for e in listed]
    assert all("secret" not in e for e in listed)  # shown once, at creation
    assert api.call("GET", f"/v1/webhooks/endpoints/{made['endpoint_id']}", tenant="other").status == 404
    assert api.call("DELETE", f"/v1/webhooks/endpoints/{made['endpoint_id']}", tenant="other").status == 404

    # A rotation with the default window: the old secret signs for 24 more hours
    rotated = api.call("POST", f"/v1/webhooks/endpoints/{made['endpoint_id']}/rotate-secret", {})
    assert rotated.status == 200 and rotated.json["secret"] != made["secret"], rotated.body
    ends = datetime.fromisoformat(rotated.json["rotation_ends_at"].replace("Z", "+00:00"))
    assert timedelta(hours=23) < ends - utcnow() <= timedelta(hours=24)
    assert rotated.headers.get("cache-control") == "no-store"
    too_long = {"window_seconds": 8 * 24 * 3600}
    assert api.call("POST", f"/v1/webhooks/endpoints/{made['endpoint_id']}/rotate-secret", too_long).status == 422

    # Without the admin scope the gateway refuses
    token = api.cloud.token("demo", scopes=("verify",))
    assert api.call("GET", "/v1/webhooks/endpoints", token=token).status == 403

    # SSRF: private networks, the metadata service, and non-https public hosts are refused with a stable code
    for url in (
        "https://10.0.0.8/x",
        "https://169.254.169.254/latest",
        "http://example.com/x",
        "https://[::ffff:10.0.0.1]/",
    ):
        reply = api.call("POST", "/v1/webhooks/endpoints", {"url": url, "events": ["erasure.completed"]})
        assert reply.status == 422 and reply.json["code"] == "webhook_url_not_allowed", (url, reply.body)
    reply = api.call("POST", "/v1/webhooks/endpoints", {"url": "http://127.0.0.1:9/x", "events": ["nope"]})
    assert reply.status == 422 and reply.json["code"] == "invalid_request"


def test_the_secret_is_stored_sealed_never_in_clear(api: Api, aws: boto3.session.Session, endpoints: list[str]) -> None:
    made = register(api, endpoints, "http://127.0.0.1:9/demo", ["erasure.completed"])
    items = aws.client("dynamodb").scan(TableName=api.cloud.stack.ref("WebhooksTable"))["Items"]
    text = json.dumps(items)
    raw = made["secret"].removeprefix("whsec_")
    assert made["endpoint_id"] in text
    assert made["secret"] not in text and raw not in text
    for item in items:  # nor inside the base64 of the sealed blobs
        if "secrets" in item:
            for s in json.loads(item["secrets"]["S"]):
                assert base64.b64decode(raw) not in base64.b64decode(s["sealed"])


# ---------------------------------------------------------------- delivery


def test_a_fallback_verification_arrives_signed_and_verifies_with_the_sdk(
    api: Api, aws: boto3.session.Session, receiver: Receiver, subject_id: str, endpoints: list[str]
) -> None:
    # Given a tenant endpoint for verification decisions and erasures
    made = register(api, endpoints, f"{receiver.url}/signed", ["verification.decided", "erasure.completed"])

    # When a person verifies by e-mail code and the event sources run
    result = email_otp_verified(api, subject_id)
    deliver(api.cloud)

    # Then the receiver got one signed verification.decided that the SDK verifies
    (got,) = received(receiver, "/signed")
    event = verify_webhook(got.body.encode(), got.headers, made["secret"])
    assert event["type"] == "verification.decided"
    data = event["data"]
    assert data["subject_id"] == subject_id and data["decision"] == "match" and data["method"] == "email_otp"
    assert data["verification_id"] == result["verification_id"] and data["purpose"] == "checkout"
    assert not {"score", "threshold", "image", "tenant_id", "subject_ref"} & data.keys()
    with pytest.raises(WebhookVerificationError):
        verify_webhook(got.body.encode(), got.headers, "whsec_" + base64.b64encode(b"x" * 32).decode())

    # And the delivery log names the event, endpoint and status, never the subject
    attempts = api.call("GET", f"/v1/webhooks/endpoints/{made['endpoint_id']}/attempts").json["attempts"]
    assert attempts[0]["outcome"] == "delivered" and attempts[0]["status_code"] == 204
    assert attempts[0]["message_id"] == got.headers["webhook-id"]

    # When the subject is erased, erasure.completed arrives too, naming the deletion, not the subject
    erased = api.call("DELETE", f"/v1/subjects/{subject_id}")
    deliver(api.cloud, 2)
    erasure = [verify_webhook(r.body.encode(), r.headers, made["secret"]) for r in received(receiver, "/signed")[1:]]
    assert [e["type"] for e in erasure] == ["erasure.completed"]
    assert erasure[0]["data"]["deletion_id"] == erased.json["deletion_id"] and erasure[0]["data"]["scope"] == "subject"
    assert subject_id not in received(receiver, "/signed")[1].body

    # And nothing of webhooks' tables names the subject (delivery logs are subject-free)
    ref = wiring.container().hasher.ref("demo", subject_id)
    for item in aws.client("dynamodb").scan(TableName=api.cloud.stack.ref("WebhooksTable"))["Items"]:
        assert subject_id not in json.dumps(item) and ref not in json.dumps(item)


def test_a_verification_event_arrives_when_the_event_bus_fails(
    api: Api, receiver: Receiver, subject_id: str, endpoints: list[str]
) -> None:
    """Webhook events go straight onto the webhook queue (the bus rule's target, in the rule's envelope) when
    EventBridge refuses them, so a bus outage does not cost the tenant its webhook."""
    made = register(api, endpoints, f"{receiver.url}/outage", ["verification.decided"])
    # Given an event bus that fails every PutEvents of the domain events
    with event_bus_outage(wiring.container().events_client) as calls:
        # When a person verifies by e-mail code
        result = email_otp_verified(api, subject_id)
    deliver(api.cloud)
    # Then the bus was tried, and the signed verification.decided arrived all the same
    assert calls["n"] >= 1
    (got,) = received(receiver, "/outage")
    event = verify_webhook(got.body.encode(), got.headers, made["secret"])
    assert event["type"] == "verification.decided"
    assert event["data"]["verification_id"] == result["verification_id"]


def test_a_failing_receiver_is_retried_with_one_webhook_id_then_dead_lettered(
    api: Api,
    aws: boto3.session.Session,
    receiver: Receiver,
    subject_id: str,
    endpoints: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given an endpoint that answers 500, and no wait between attempts (the schedule itself is a unit test)
    container = wiring.container()
    monkeypatch.setattr(container, "settings", container.settings.model_copy(update={"webhook_retry_seconds": "0"}))
    made = register(api, endpoints, f"{receiver.url}/status/500/failing", ["verification.decided"])
    sqs = aws.client("sqs")
    dlq = queue_url(api.cloud, "WebhookDeadLetterQueue")
    sqs.purge_queue(QueueUrl=dlq)

    # When a verification is decided and the event sources run until the queue is empty
    email_otp_verified(api, subject_id)
    deliver(api.cloud, 12)

    # Then every attempt carried the same webhook-id and body, with its own valid signature
    got = received(receiver, "/status/500/failing")
    max_receive = api.cloud.stack.template["Resources"]["WebhookQueue"]["Properties"]["RedrivePolicy"][
        "maxReceiveCount"
    ]
    assert len(got) == max_receive == 8
    assert len({r.headers["webhook-id"] for r in got}) == 1 and len({r.body for r in got}) == 1
    for r in got:
        assert verify_webhook(r.body.encode(), r.headers, made["secret"])["type"] == "verification.decided"

    # And the attempts are logged 1..8 as failed with the status code
    attempts = api.call("GET", f"/v1/webhooks/endpoints/{made['endpoint_id']}/attempts").json["attempts"]
    assert sorted(a["attempt"] for a in attempts) == list(range(1, 9))
    assert {(a["outcome"], a["status_code"]) for a in attempts} == {("failed", 500)}

    # And the delivery now waits in the dead-letter queue, for inspection and redrive
    messages = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10).get("Messages", [])
    dead = [json.loads(m["Body"]) for m in messages]
    assert [d["message_id"] for d in dead if d.get("endpoint_id") == made["endpoint_id"]] == [
        got[0].headers["webhook-id"]
    ]


def test_the_backoff_is_applied_to_a_failed_delivery(
    api: Api, aws: boto3.session.Session, receiver: Receiver, subject_id: str, endpoints: list[str]
) -> None:
    """With the template's schedule a failed delivery stays away (5 s after the first attempt): running the
    event sources again at once does not call the endpoint again."""
    register(api, endpoints, f"{receiver.url}/status/503/backoff", ["verification.decided"])
    email_otp_verified(api, subject_id)
    deliver(api.cloud, 3)
    assert len(received(receiver, "/status/503/backoff")) == 1
    attributes = aws.client("sqs").get_queue_attributes(
        QueueUrl=queue_url(api.cloud, "WebhookQueue"), AttributeNames=["ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    assert int(attributes["ApproximateNumberOfMessagesNotVisible"]) >= 1
    # Tidy up: the endpoint is deleted by the fixture; its delivery ends as endpoint_gone when it comes back


def test_during_a_rotation_both_secrets_verify_and_after_it_only_the_new_one(
    api: Api, receiver: Receiver, subject_id: str, endpoints: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    made = register(api, endpoints, f"{receiver.url}/rotation", ["verification.decided"])
    first = made["secret"]
    endpoint_id = made["endpoint_id"]

    # A rotation now, with a one-hour window: both secrets sign
    rotated = api.call("POST", f"/v1/webhooks/endpoints/{endpoint_id}/rotate-secret", {"window_seconds": 3600})
    assert rotated.status == 200 and rotated.json["secret"] != first and rotated.json["rotation_ends_at"]
    second = rotated.json["secret"]
    email_otp_verified(api, subject_id)
    deliver(api.cloud)
    (during,) = received(receiver, "/rotation")
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    for secret in (first, second):
        assert verify_webhook(during.body.encode(), during.headers, secret)["type"] == "verification.decided"

    # A rotation made two hours ago with a one-hour window has ended: only the newest secret signs
    container = wiring.container()
    monkeypatch.setattr(container, "clock", lambda: utcnow() - timedelta(hours=2))
    again = api.call("POST", f"/v1/webhooks/endpoints/{endpoint_id}/rotate-secret", {"window_seconds": 3600})
    assert again.status == 200
    third = again.json["secret"]
    monkeypatch.undo()
    assert api.call("GET", f"/v1/webhooks/endpoints/{endpoint_id}").json["rotation_ends_at"] is None
    email_otp_verified(api, subject_id + "-b")
    deliver(api.cloud)
    after = received(receiver, "/rotation")[-1]
    assert len(after.headers["webhook-signature"].split(" ")) == 1
    assert verify_webhook(after.body.encode(), after.headers, third)["type"] == "verification.decided"
    for old in (first, second):
        with pytest.raises(WebhookVerificationError):
            verify_webhook(after.body.encode(), after.headers, old)


# ---------------------------------------------------------------- face: verification decided, liveness failed


@pytest.mark.slow
def test_a_face_verification_and_a_failed_liveness_arrive_signed(
    api: Api,
    receiver: Receiver,
    subject_id: str,
    endpoints: list[str],
    enrollable_people: list[list[Path]],
    shared_dir: Path,
) -> None:
    made = register(api, endpoints, f"{receiver.url}/face", ["verification.decided", "liveness.failed"])
    photos = enrollable_people[5]
    grant(api, subject_id)
    enrolled = api.call(
        "POST",
        f"/v1/subjects/{subject_id}/enrolments",
        {"purpose": "checkout", "image": base64.b64encode(photos[0].read_bytes()).decode()},
    )
    assert enrolled.status == 201, enrolled.body

    # A face match (a single photo: the seeded checkout purpose's liveness is optional in these tests)
    probe = {
        "subject_id": subject_id,
        "purpose": "checkout",
        "image": base64.b64encode(photos[1].read_bytes()).decode(),
    }
    verified = api.call("POST", "/v1/verifications", probe)
    assert verified.status == 200 and verified.json["decision"] == "match", verified.body

    # A burst of one still photo: not live
    still = sorted((shared_dir / "clips" / "turns_a").glob("*.jpg"))[180].read_bytes()
    session = api.call("POST", "/v1/liveness/sessions", {"subject_id": subject_id, "purpose": "checkout"}).json
    burst = {
        "session_id": session["session_id"],
        "frames": [base64.b64encode(still).decode()] * 20,
        "timestamps_ms": [k * 100.0 for k in range(20)],
    }
    refused = api.call(
        "POST", "/v1/verifications", {"subject_id": subject_id, "purpose": "checkout", "liveness": burst}
    )
    assert refused.status == 200 and refused.json["liveness"]["decision"] != "live", refused.body
    deliver(api.cloud)

    events = [verify_webhook(r.body.encode(), r.headers, made["secret"]) for r in received(receiver, "/face")]
    by_type: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        by_type.setdefault(event["type"], []).append(event["data"])
    face = [d for d in by_type["verification.decided"] if d["verification_id"] == verified.json["verification_id"]]
    assert (
        face and face[0]["method"] == "face" and face[0]["decision"] == "match" and face[0]["subject_id"] == subject_id
    )
    (failed,) = by_type["liveness.failed"]
    assert failed["liveness_session_id"] == session["session_id"] and failed["subject_id"] == subject_id
    assert failed["decision"] == refused.json["liveness"]["decision"] and failed["reasons"]
    # The refused verification is decided too (a no_match, with the liveness decision), and no event has a score
    decided = [d for d in by_type["verification.decided"] if d["verification_id"] == refused.json["verification_id"]]
    assert decided and decided[0]["decision"] == "no_match" and decided[0]["liveness"] == failed["decision"]
    assert not any({"score", "threshold"} & d.keys() for ds in by_type.values() for d in ds)

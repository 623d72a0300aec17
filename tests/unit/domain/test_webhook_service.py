"""Webhooks' rules without AWS: signing, the retry schedule, secret rotation, fan-out, delivery outcomes, which URLs
may be called, and what a domain event may carry. Storage, queue and HTTP are in-memory fakes of facegate's own
ports (facegate.webhooks.ports); tests/integration/test_webhooks_api.py runs the real ones on moto."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from facegate.core.audit import Auditor
from facegate.core.clock import utcnow
from facegate.core.errors import (
    WebhookDeliveryError,
    WebhookEndpointLimitError,
    WebhookEndpointNotFoundError,
    WebhookUrlNotAllowedError,
)
from facegate.core.events import DomainEvents
from facegate.core.tenancy import CallerContext
from facegate.webhooks import signing
from facegate.webhooks.entities import (
    MAX_ATTEMPTS,
    MAX_ENDPOINTS_PER_TENANT,
    RETRY_SECONDS,
    AttemptRecord,
    Delivery,
    Endpoint,
    backoff_seconds,
)
from facegate.webhooks.service import WebhookService, message_id
from facegate.webhooks.urls import PublicUrlPolicy
from facegate_sdk.webhooks import WebhookVerificationError, verify_webhook
from localcloud.template import load_template
from tests.unit.domain.fakes import Clock, ContextCipher, InMemoryAuditLog, RecordingPublisher

pytestmark = pytest.mark.unit

DEMO = CallerContext("demo", "client-demo", frozenset({"admin"}))
OTHER = CallerContext("other", "client-other", frozenset({"admin"}))
URL = "https://hooks.shop.example/facegate"
PUBLIC = {"hooks.shop.example": ["93.184.215.14"]}


# ---------------------------------------------------------------- fakes of the webhook ports


@dataclass
class InMemoryEndpoints:
    items: dict[tuple[str, str], Endpoint] = field(default_factory=dict)

    def create(self, endpoint: Endpoint, limit: int) -> bool:
        if sum(1 for (t, _) in self.items if t == endpoint.tenant_id) >= limit:
            return False
        self.items[(endpoint.tenant_id, endpoint.endpoint_id)] = replace(endpoint)
        return True

    def get(self, tenant_id: str, endpoint_id: str) -> Endpoint | None:
        found = self.items.get((tenant_id, endpoint_id))
        return replace(found, secrets=list(found.secrets)) if found else None

    def all_for_tenant(self, tenant_id: str) -> list[Endpoint]:
        return [replace(e, secrets=list(e.secrets)) for (t, _), e in self.items.items() if t == tenant_id]

    def delete(self, tenant_id: str, endpoint_id: str) -> bool:
        return self.items.pop((tenant_id, endpoint_id), None) is not None

    def replace_secrets(self, endpoint: Endpoint, expected_version: int) -> bool:
        stored = self.items.get((endpoint.tenant_id, endpoint.endpoint_id))
        if stored is None or stored.version != expected_version:
            return False
        self.items[(endpoint.tenant_id, endpoint.endpoint_id)] = replace(endpoint, secrets=list(endpoint.secrets))
        return True


@dataclass
class InMemoryLog:
    records: list[AttemptRecord] = field(default_factory=list)

    def record(self, attempt: AttemptRecord) -> None:
        self.records.append(attempt)

    def for_endpoint(self, tenant_id: str, endpoint_id: str, limit: int) -> list[AttemptRecord]:
        mine = [r for r in self.records if (r.tenant_id, r.endpoint_id) == (tenant_id, endpoint_id)]
        return list(reversed(mine))[:limit]


@dataclass
class InMemoryQueue:
    queued: list[Delivery] = field(default_factory=list)

    def enqueue(self, delivery: Delivery) -> None:
        self.queued.append(delivery)


@dataclass
class RecordingSender:
    """The tenant's endpoint: answers `status` (or raises, as a dead host would) and keeps what it was sent."""

    status: int = 204
    dead: bool = False
    sent: list[tuple[str, bytes, dict[str, str]]] = field(default_factory=list)

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        self.sent.append((url, body, headers))
        if self.dead:
            raise WebhookDeliveryError("connection")
        return self.status


def resolver(table: dict[str, list[str]]):
    return lambda host, port: table.get(host, [])


@dataclass
class World:
    service: WebhookService
    endpoints: InMemoryEndpoints
    log: InMemoryLog
    queue: InMemoryQueue
    sender: RecordingSender
    clock: Clock
    audit: InMemoryAuditLog


@pytest.fixture
def world() -> World:
    endpoints, log, queue, sender = InMemoryEndpoints(), InMemoryLog(), InMemoryQueue(), RecordingSender()
    clock, audit = Clock(utcnow()), InMemoryAuditLog()
    service = WebhookService(
        endpoints=endpoints,
        log=log,
        queue=queue,
        sender=sender,
        urls=PublicUrlPolicy(resolver=resolver(PUBLIC)),
        cipher=ContextCipher(),
        auditor=Auditor(audit),
        clock=clock,
    )
    return World(service, endpoints, log, queue, sender, clock, audit)


def event(detail_type: str = "VerificationDecided", tenant: str = "demo", **detail: Any) -> dict[str, Any]:
    return {
        "id": "eb-1",
        "detail-type": detail_type,
        "source": "facegate.fallback",
        "time": "2026-11-30T12:00:00Z",
        "detail": {
            "event_id": "verification-abc",
            "tenant_id": tenant,
            "subject_id": "shop-user-1",
            "decision": "match",
            "method": "email_otp",
            **detail,
        },
    }


def signatures_by(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """Whether `secret` made one of the header's signatures (the library's own signing, at the header's time)."""
    from datetime import UTC, datetime

    at = datetime.fromtimestamp(int(headers["webhook-timestamp"]), tz=UTC)
    mine = Webhook(secret).sign(headers["webhook-id"], at, body.decode())
    return mine in headers["webhook-signature"].split(" ")


# ---------------------------------------------------------------- signing and the schedule


def test_headers_follow_standard_webhooks_and_verify_with_the_library() -> None:
    secret = signing.new_secret()
    assert secret.startswith("whsec_") and len(secret) > 40
    now = int(utcnow().timestamp())
    headers = signing.headers([secret], "msg_1", now, '{"a":1}')
    assert headers["webhook-id"] == "msg_1" and headers["webhook-timestamp"] == str(now)
    assert headers["webhook-signature"].startswith("v1,")
    assert Webhook(secret).verify('{"a":1}', headers) == {"a": 1}
    two = signing.headers([secret, signing.new_secret()], "msg_1", now, '{"a":1}')
    assert len(two["webhook-signature"].split(" ")) == 2


def test_the_backoff_grows_then_hands_over_to_the_dead_letter_queue() -> None:
    waits = [backoff_seconds(n) for n in range(1, MAX_ATTEMPTS + 1)]
    assert waits[:-1] == list(RETRY_SECONDS) and waits == [*sorted(waits[:-1]), 0]
    assert waits[-1] == 0  # after the last attempt: straight to the dead-letter queue
    assert all(w < 12 * 3600 for w in waits)  # SQS's visibility limit
    assert backoff_seconds(3, (0, 0, 0)) == 0 and backoff_seconds(1, (7,)) == 7
    with pytest.raises(ValueError):
        backoff_seconds(0)


def test_the_template_keeps_the_schedule_and_the_queues_attempts_in_step() -> None:
    resources = load_template()["Resources"]
    env = resources["WebhooksFunction"]["Properties"]["Environment"]["Variables"]
    assert tuple(int(s) for s in env["WEBHOOK_RETRY_SECONDS"].split(",")) == RETRY_SECONDS
    assert resources["WebhookQueue"]["Properties"]["RedrivePolicy"]["maxReceiveCount"] == MAX_ATTEMPTS
    assert env["WEBHOOK_ALLOW_LOCAL_HTTP"] == "false"  # deployed: https to public hosts only
    # Every retry fits in the queue's retention
    assert sum(RETRY_SECONDS) < resources["WebhookQueue"]["Properties"]["MessageRetentionPeriod"]


# ---------------------------------------------------------------- endpoints and rotation


def test_a_registered_secret_is_stored_sealed_and_shown_once(world: World) -> None:
    endpoint, secret = world.service.register(DEMO, URL, ["verification.decided"])
    stored = world.endpoints.get("demo", endpoint.endpoint_id)
    assert stored is not None and len(stored.secrets) == 1
    # Sealed under this endpoint's context: it opens there and nowhere else (tests/integration checks, with KMS on
    # moto, that the table never holds it in clear)
    from facegate.core.envelope import unpack_sealed
    from facegate.webhooks.service import secret_context

    cipher, sealed = ContextCipher(), unpack_sealed(stored.secrets[0].sealed)
    assert cipher.open(sealed, secret_context("demo", endpoint.endpoint_id)).decode() == secret
    with pytest.raises(ValueError):
        cipher.open(sealed, secret_context("demo", "we_" + "0" * 32))
    assert "webhook.endpoint_created" in world.audit.actions()
    assert secret not in json.dumps([e.details for e in world.audit.events], default=str)
    with pytest.raises(WebhookEndpointNotFoundError):
        world.service.get(OTHER, endpoint.endpoint_id)  # another tenant's endpoint does not exist for it


def test_an_endpoint_limit_per_tenant(world: World) -> None:
    for _ in range(MAX_ENDPOINTS_PER_TENANT):
        world.service.register(DEMO, URL, ["erasure.completed"])
    with pytest.raises(WebhookEndpointLimitError):
        world.service.register(DEMO, URL, ["erasure.completed"])
    world.service.register(OTHER, URL, ["erasure.completed"])  # per tenant


def test_during_a_rotation_both_secrets_sign_and_after_it_only_the_new_one(world: World) -> None:
    # Given an endpoint whose secret is rotated two hours ago with a one-hour window
    world.clock.now = utcnow() - timedelta(hours=2)
    endpoint, old = world.service.register(DEMO, URL, ["verification.decided"])
    rotated, new = world.service.rotate(DEMO, endpoint.endpoint_id, window_seconds=3600)
    assert rotated.rotating_until(int(world.clock.now.timestamp())) is not None
    world.service.fan_out(event())
    delivery = world.queue.queued[-1]

    # During the window both sign
    world.service.deliver(delivery, attempt=1)
    _, body, headers = world.sender.sent[-1]
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert signatures_by(old, headers, body) and signatures_by(new, headers, body)

    # After it only the new one: a tenant still on the old secret is refused
    world.clock.now = utcnow()
    world.service.deliver(delivery, attempt=2)
    _, body, headers = world.sender.sent[-1]
    assert len(headers["webhook-signature"].split(" ")) == 1
    assert verify_webhook(body, headers, new)["type"] == "verification.decided"
    with pytest.raises(WebhookVerificationError):
        verify_webhook(body, headers, old)
    # The retired secret is dropped from storage at the next rotation
    _, newest = world.service.rotate(DEMO, endpoint.endpoint_id, window_seconds=0)
    stored = world.endpoints.get("demo", endpoint.endpoint_id)
    assert stored is not None and len(stored.secrets) == 1
    world.service.deliver(delivery, attempt=3)
    _, body, headers = world.sender.sent[-1]
    assert verify_webhook(body, headers, newest) and not signatures_by(new, headers, body)


def test_rotations_in_quick_succession_keep_at_most_three_signing_secrets(world: World) -> None:
    endpoint, first = world.service.register(DEMO, URL, ["verification.decided"])
    secrets = [first] + [world.service.rotate(DEMO, endpoint.endpoint_id)[1] for _ in range(4)]
    world.service.fan_out(event())
    world.service.deliver(world.queue.queued[-1], attempt=1)
    _, body, headers = world.sender.sent[-1]
    assert len(headers["webhook-signature"].split(" ")) == 3
    assert [signatures_by(s, headers, body) for s in secrets] == [False, False, True, True, True]


def test_a_rotation_that_lost_a_race_is_a_conflict(world: World) -> None:
    endpoint, _ = world.service.register(DEMO, URL, ["verification.decided"])
    stale = world.endpoints.get("demo", endpoint.endpoint_id)
    assert stale is not None
    world.service.rotate(DEMO, endpoint.endpoint_id)
    assert world.endpoints.replace_secrets(replace(stale, version=stale.version + 1), stale.version) is False


# ---------------------------------------------------------------- fan-out and delivery


def test_fan_out_reaches_the_tenants_endpoints_that_want_the_type_only(world: World) -> None:
    wants, _ = world.service.register(DEMO, URL, ["verification.decided"])
    world.service.register(DEMO, URL, ["erasure.completed"])  # another type
    world.service.register(OTHER, URL, ["verification.decided"])  # another tenant
    assert world.service.fan_out(event()) == 1
    (delivery,) = world.queue.queued
    assert delivery.endpoint_id == wants.endpoint_id and delivery.event_type == "verification.decided"
    body = json.loads(delivery.body)
    assert body["type"] == "verification.decided" and body["timestamp"] == "2026-11-30T12:00:00Z"
    assert body["data"]["subject_id"] == "shop-user-1"  # the tenant's own id, back to the tenant
    assert "tenant_id" not in body["data"] and "event_id" not in body["data"]
    # The same event again (a republished event) is the same message: receivers deduplicate on webhook-id
    world.service.fan_out(event())
    assert world.queue.queued[1].message_id == delivery.message_id == message_id("verification-abc")
    # A publisher without event_id (proctoring): the same content published twice is one message, another is not
    world.service.register(DEMO, URL, ["proctoring.incident_opened"])
    incident = {"tenant_id": "demo", "session_id": "s1", "incident_id": "face_absent-30", "type": "face_absent"}
    for eb_id in ("eb-7", "eb-8"):
        world.service.fan_out({"id": eb_id, "detail-type": "ProctoringIncidentOpened", "detail": incident})
    world.service.fan_out(
        {"id": "eb-9", "detail-type": "ProctoringIncidentOpened", "detail": {**incident, "incident_id": "x-1"}}
    )
    a, b, c = (d.message_id for d in world.queue.queued[-3:])
    assert a == b != c
    assert world.service.fan_out(event("SomethingElse")) == 0
    assert world.service.fan_out(event(tenant="nobody")) == 0


def test_every_attempt_has_the_same_id_and_body_and_a_fresh_timestamp(world: World) -> None:
    endpoint, _ = world.service.register(DEMO, URL, ["verification.decided"])
    world.service.fan_out(event())
    delivery = world.queue.queued[0]
    world.sender.status = 500
    with pytest.raises(WebhookDeliveryError):
        world.service.deliver(delivery, attempt=1)
    world.clock.advance(seconds=5)
    world.sender.status = 200
    record = world.service.deliver(delivery, attempt=2)
    assert record.outcome == "delivered" and record.status_code == 200
    (_, b1, h1), (_, b2, h2) = world.sender.sent
    assert b1 == b2 and h1["webhook-id"] == h2["webhook-id"]
    assert int(h2["webhook-timestamp"]) == int(h1["webhook-timestamp"]) + 5
    logged = world.service.attempts(DEMO, endpoint.endpoint_id)
    assert [(r.attempt, r.outcome, r.status_code) for r in logged] == [(2, "delivered", 200), (1, "failed", 500)]
    # The log names the event and the endpoint, never the subject or the body
    assert "shop-user-1" not in repr(world.log.records)


def test_a_dead_endpoint_raises_for_a_retry_and_a_deleted_one_ends_the_delivery(world: World) -> None:
    endpoint, _ = world.service.register(DEMO, URL, ["verification.decided"])
    world.service.fan_out(event())
    delivery = world.queue.queued[0]
    world.sender.dead = True
    with pytest.raises(WebhookDeliveryError):
        world.service.deliver(delivery, attempt=1)
    assert world.log.records[-1].outcome == "failed" and world.log.records[-1].error == "connection"
    world.service.delete(DEMO, endpoint.endpoint_id)
    assert world.service.deliver(delivery, attempt=2).outcome == "endpoint_gone"
    with pytest.raises(WebhookEndpointNotFoundError):
        world.service.delete(DEMO, endpoint.endpoint_id)


def test_an_endpoint_whose_host_now_resolves_privately_is_not_called(world: World) -> None:
    world.service.register(DEMO, URL, ["verification.decided"])
    world.service.fan_out(event())
    public_before = dict(PUBLIC)
    try:
        PUBLIC["hooks.shop.example"] = ["10.0.0.7"]  # DNS changed after registration
        record = world.service.deliver(world.queue.queued[0], attempt=1)
    finally:
        PUBLIC.clear()
        PUBLIC.update(public_before)
    assert record.outcome == "refused" and record.error == "url_not_allowed"
    assert world.sender.sent == []


# ---------------------------------------------------------------- URLs (SSRF)


@pytest.mark.parametrize(
    ("url", "addresses"),
    [
        ("http://hooks.shop.example/x", ["93.184.215.14"]),  # not https
        ("https://10.1.2.3/x", ["10.1.2.3"]),
        ("https://192.168.0.10/x", ["192.168.0.10"]),
        ("https://169.254.169.254/latest/meta-data", ["169.254.169.254"]),  # instance metadata
        ("https://127.0.0.1:3001/x", ["127.0.0.1"]),
        ("https://localhost/x", ["127.0.0.1"]),
        ("https://[::1]/x", ["::1"]),
        ("https://[fd00::1]/x", ["fd00::1"]),
        ("https://internal.shop.example/x", ["172.16.5.4"]),  # a public name resolving privately
        ("https://mixed.shop.example/x", ["93.184.215.14", "10.0.0.1"]),  # any private address refuses
        ("https://unknown.shop.example/x", []),  # does not resolve
        ("https://user:pass@hooks.shop.example/x", ["93.184.215.14"]),  # credentials in the URL
        ("https:///x", []),
        ("ftp://hooks.shop.example/x", ["93.184.215.14"]),
    ],
)
def test_urls_that_are_refused(url: str, addresses: list[str]) -> None:
    from urllib.parse import urlsplit

    host = urlsplit(url).hostname or ""
    policy = PublicUrlPolicy(resolver=resolver({host: addresses}))
    with pytest.raises(WebhookUrlNotAllowedError) as refused:
        policy.check(url)
    assert refused.value.code == "webhook_url_not_allowed"


def test_public_https_is_allowed_and_the_local_cloud_allows_its_loopback_receiver_only() -> None:
    PublicUrlPolicy(resolver=resolver(PUBLIC)).check(URL)
    local = PublicUrlPolicy(
        allow_local=True, resolver=resolver({"127.0.0.1": ["127.0.0.1"], "localhost": ["127.0.0.1", "::1"]})
    )
    local.check("http://127.0.0.1:3001/demo")
    local.check("http://localhost:3001/demo")
    for url in ("http://10.0.0.1/x", "https://192.168.1.1/x", "http://hooks.shop.example/x"):
        with pytest.raises(WebhookUrlNotAllowedError):
            PublicUrlPolicy(allow_local=True, resolver=resolver({"10.0.0.1": ["10.0.0.1"], **PUBLIC})).check(url)


# ---------------------------------------------------------------- domain events


def test_an_event_never_carries_biometrics_and_a_bus_outage_costs_only_the_event() -> None:
    publisher = RecordingPublisher()
    events = DomainEvents(publisher)
    with pytest.raises(ValueError):
        events.announce("VerificationDecided", {"tenant_id": "demo", "score": 0.9})
    assert events.verification_decided("demo", "u1", "checkout", "face", "match", "jti1", 1, liveness="live")
    detail_type, detail = publisher.published[-1]
    assert detail_type == "VerificationDecided" and detail["event_id"] == "verification-jti1"
    assert detail["liveness"] == "live" and "score" not in detail and "threshold" not in detail

    class DownBus:
        def publish(self, detail_type: str, detail: dict[str, Any]) -> None:
            raise RuntimeError("bus down")

    assert DomainEvents(DownBus()).erasure_completed("demo", "d1", "subject", None, "2026-11-30T12:00:00Z") is False

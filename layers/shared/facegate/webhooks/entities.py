"""Webhook endpoints (a tenant's URL, the event types it wants, its signing secrets), the deliveries fanned out to
them, and the retry schedule.

An endpoint's secrets are stored sealed (KMS envelope); while a rotation's window lasts, the old secret still signs
next to the new one (Standard Webhooks sends several space-separated signatures), then only the new one does.
Delivery logs name an event, an endpoint and a status code: never a subject, never a body.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from facegate.core import events

# EventBridge detail-type -> the webhook's event type.
EVENT_TYPES: dict[str, str] = {
    events.VERIFICATION_DECIDED: "verification.decided",
    events.LIVENESS_FAILED: "liveness.failed",
    events.PROCTORING_INCIDENT_OPENED: "proctoring.incident_opened",
    events.PROCTORING_REPORT_READY: "proctoring.report_ready",
    events.ERASURE_COMPLETED: "erasure.completed",
}
WEBHOOK_EVENTS = tuple(EVENT_TYPES.values())

MAX_ENDPOINTS_PER_TENANT = 10
DEFAULT_ROTATION_WINDOW_SECONDS = 24 * 3600
MAX_ROTATION_WINDOW_SECONDS = 7 * 24 * 3600
DELIVERY_LOG_DAYS = 30  # TTL of the delivery log
# Seconds to wait after failed attempt n (n = 1, 2, ...): about a day and a half in all, then the dead-letter
# queue. The template's WebhookQueue maxReceiveCount is MAX_ATTEMPTS (a test keeps the two equal).
RETRY_SECONDS: tuple[int, ...] = (5, 60, 300, 1800, 7200, 18000, 36000)
MAX_ATTEMPTS = len(RETRY_SECONDS) + 1


def backoff_seconds(attempt: int, schedule: tuple[int, ...] = RETRY_SECONDS) -> int:
    """How long SQS keeps the message away after failed attempt `attempt` (1-based). After the last attempt: 0,
    so that SQS hands it to the dead-letter queue at once. Never more than SQS's 12-hour visibility limit."""
    if attempt < 1:
        raise ValueError("attempts count from 1")
    if attempt > len(schedule):
        return 0
    return min(schedule[attempt - 1], 12 * 3600 - 1)


@dataclass(frozen=True)
class StoredSecret:
    """A signing secret as stored: sealed; `retires_at` (epoch seconds) ends a rotated-out secret."""

    sealed: bytes
    created_at: int
    retires_at: int | None = None

    def signs_at(self, now: int) -> bool:
        return self.retires_at is None or now < self.retires_at


@dataclass
class Endpoint:
    endpoint_id: str
    tenant_id: str
    url: str
    events: tuple[str, ...]
    created_at: str
    description: str | None = None
    secrets: list[StoredSecret] = field(default_factory=list)
    version: int = 1  # bumped by each rotation (conditional writes: two rotations cannot both win)

    def wants(self, event_type: str) -> bool:
        return event_type in self.events

    def rotating_until(self, now: int) -> int | None:
        ends = [s.retires_at for s in self.secrets if s.retires_at is not None and s.signs_at(now)]
        return max(ends) if ends else None


@dataclass(frozen=True)
class Delivery:
    """One event for one endpoint: the SQS message retried until it is delivered or dead-lettered. The body is
    serialised once, so that every attempt sends the same bytes under the same `webhook-id`."""

    tenant_id: str
    endpoint_id: str
    message_id: str
    event_type: str
    body: str

    def to_message(self) -> dict[str, str]:
        return {
            "kind": "webhook-delivery",
            "tenant_id": self.tenant_id,
            "endpoint_id": self.endpoint_id,
            "message_id": self.message_id,
            "event_type": self.event_type,
            "body": self.body,
        }

    @classmethod
    def from_message(cls, message: dict[str, str]) -> Delivery:
        return cls(
            tenant_id=message["tenant_id"],
            endpoint_id=message["endpoint_id"],
            message_id=message["message_id"],
            event_type=message["event_type"],
            body=message["body"],
        )


@dataclass(frozen=True)
class AttemptRecord:
    """One delivery attempt as logged (subject-free: event, endpoint, status)."""

    tenant_id: str
    endpoint_id: str
    message_id: str
    event_type: str
    attempt: int
    outcome: str  # delivered | failed | refused | endpoint_gone
    at: str
    status_code: int | None = None
    error: str | None = None  # timeout | connection | url_not_allowed | http_status

"""Webhook endpoints (register, list, delete, rotate the secret) and the delivery of domain events to them.

The event bus's rule puts each domain event on the webhook queue; `fan_out` turns it into one delivery per
endpoint of the tenant that wants that event type (each its own SQS message, so each endpoint is retried alone);
`deliver` signs and POSTs one delivery and logs the attempt. A failed attempt raises: the handler makes SQS
redeliver it after the backoff, and after the last attempt SQS moves it to the dead-letter queue.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from facegate.core.audit import Auditor
from facegate.core.clock import iso, utcnow
from facegate.core.envelope import pack_sealed, unpack_sealed
from facegate.core.errors import (
    ConflictError,
    WebhookDeliveryError,
    WebhookEndpointLimitError,
    WebhookEndpointNotFoundError,
    WebhookUrlNotAllowedError,
)
from facegate.core.observability import count, logger
from facegate.core.ports import Cipher
from facegate.core.tenancy import CallerContext
from facegate.webhooks import signing
from facegate.webhooks.entities import (
    DEFAULT_ROTATION_WINDOW_SECONDS,
    EVENT_TYPES,
    MAX_ENDPOINTS_PER_TENANT,
    AttemptRecord,
    Delivery,
    Endpoint,
    StoredSecret,
)
from facegate.webhooks.ports import DeliveryLog, DeliveryQueue, EndpointStore, Sender, UrlPolicy

MAX_SIGNING_SECRETS = 3
# Never forwarded in a webhook's data, whatever a publisher put in its detail.
INTERNAL_FIELDS = frozenset({"tenant_id", "event_id", "subject_ref"})


def secret_context(tenant_id: str, endpoint_id: str) -> dict[str, str]:
    return {"tenant": tenant_id, "webhook_endpoint": endpoint_id, "field": "webhook_secret"}


def message_id(event_id: str) -> str:
    """`webhook-id`: the same for every attempt and every endpoint of one event (receivers deduplicate on it)."""
    return "msg_" + hashlib.sha256(event_id.encode()).hexdigest()[:32]


def content_id(detail_type: str, detail: dict[str, Any]) -> str:
    """For a publisher that sets no `event_id` (proctoring): the event's own content, so that the same event
    published again (a retried batch) keeps its `webhook-id`, which EventBridge's per-put id would not."""
    canonical = json.dumps([detail_type, detail], sort_keys=True, separators=(",", ":"), default=str)
    return "content-" + hashlib.sha256(canonical.encode()).hexdigest()


class WebhookService:
    def __init__(
        self,
        endpoints: EndpointStore,
        log: DeliveryLog,
        queue: DeliveryQueue,
        sender: Sender,
        urls: UrlPolicy,
        cipher: Cipher,
        auditor: Auditor,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._endpoints = endpoints
        self._log = log
        self._queue = queue
        self._sender = sender
        self._urls = urls
        self._cipher = cipher
        self._auditor = auditor
        self._clock = clock

    # -- endpoints (tenant administration)

    def register(
        self, caller: CallerContext, url: str, events: list[str], description: str | None = None
    ) -> tuple[Endpoint, str]:
        """A new endpoint and its signing secret (returned once, stored sealed)."""
        self._urls.check(url)
        now = self._clock()
        endpoint = Endpoint(
            endpoint_id="we_" + uuid.uuid4().hex,
            tenant_id=caller.tenant_id,
            url=url,
            events=tuple(dict.fromkeys(events)),
            created_at=iso(now),
            description=description,
        )
        secret = signing.new_secret()
        endpoint.secrets = [self._seal(endpoint, secret, int(now.timestamp()))]
        if not self._endpoints.create(endpoint, MAX_ENDPOINTS_PER_TENANT):
            raise WebhookEndpointLimitError()
        self._auditor.record(caller, "webhook.endpoint_created", "ok", endpoint_id=endpoint.endpoint_id)
        count("WebhookEndpointCreated")
        return endpoint, secret

    def get(self, caller: CallerContext, endpoint_id: str) -> Endpoint:
        endpoint = self._endpoints.get(caller.tenant_id, endpoint_id)
        if endpoint is None:
            raise WebhookEndpointNotFoundError()
        return endpoint

    def endpoints(self, caller: CallerContext) -> list[Endpoint]:
        return sorted(self._endpoints.all_for_tenant(caller.tenant_id), key=lambda e: e.created_at)

    def delete(self, caller: CallerContext, endpoint_id: str) -> None:
        if not self._endpoints.delete(caller.tenant_id, endpoint_id):
            raise WebhookEndpointNotFoundError()
        self._auditor.record(caller, "webhook.endpoint_deleted", "ok", endpoint_id=endpoint_id)

    def rotate(
        self, caller: CallerContext, endpoint_id: str, window_seconds: int = DEFAULT_ROTATION_WINDOW_SECONDS
    ) -> tuple[Endpoint, str]:
        """A new secret signs from now on; the current ones keep signing for `window_seconds` (0: stop at once),
        so that the tenant can deploy the new secret without missing an event."""
        endpoint = self.get(caller, endpoint_id)
        now = int(self._clock().timestamp())
        ends = now + window_seconds
        kept = [
            replace(s, retires_at=min(ends, s.retires_at) if s.retires_at is not None else ends)
            for s in endpoint.secrets
            if s.signs_at(now)
        ]
        secret = signing.new_secret()
        rotated = replace(
            endpoint,
            # At most MAX_SIGNING_SECRETS sign at once (rotations in quick succession keep the newest).
            secrets=[
                *[s for s in kept if s.signs_at(now)][-(MAX_SIGNING_SECRETS - 1) :],
                self._seal(endpoint, secret, now),
            ],
            version=endpoint.version + 1,
        )
        if not self._endpoints.replace_secrets(rotated, endpoint.version):
            raise ConflictError()
        self._auditor.record(
            caller, "webhook.secret_rotated", "ok", endpoint_id=endpoint_id, window_seconds=window_seconds
        )
        count("WebhookSecretRotated")
        return rotated, secret

    def attempts(self, caller: CallerContext, endpoint_id: str, limit: int = 50) -> list[AttemptRecord]:
        self.get(caller, endpoint_id)
        return self._log.for_endpoint(caller.tenant_id, endpoint_id, limit)

    # -- delivery

    def fan_out(self, event: dict[str, Any]) -> int:
        """An EventBridge event -> one queued delivery per endpoint of its tenant that wants its type."""
        event_type = EVENT_TYPES.get(str(event.get("detail-type")))
        detail = event.get("detail") or {}
        tenant_id = detail.get("tenant_id")
        if event_type is None or not tenant_id:
            logger.warning("webhook event ignored", detail_type=str(event.get("detail-type")))
            return 0
        wanted = [e for e in self._endpoints.all_for_tenant(str(tenant_id)) if e.wants(event_type)]
        if not wanted:
            return 0
        event_id = str(detail.get("event_id") or content_id(str(event.get("detail-type")), detail))
        body = json.dumps(
            {
                "type": event_type,
                "timestamp": str(event.get("time") or iso(self._clock())),
                "data": {k: v for k, v in detail.items() if k not in INTERNAL_FIELDS},
            },
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
        )
        for endpoint in wanted:
            self._queue.enqueue(Delivery(str(tenant_id), endpoint.endpoint_id, message_id(event_id), event_type, body))
        count("WebhookEventFannedOut", event_type=event_type)
        return len(wanted)

    def deliver(self, delivery: Delivery, attempt: int) -> AttemptRecord:
        """Sign with every secret that signs now and POST. A 2xx is delivered; anything else raises
        WebhookDeliveryError after the attempt is logged (the caller retries later). An endpoint deleted since, or
        whose URL is no longer allowed, ends the delivery (logged, not retried)."""
        now = self._clock()
        endpoint = self._endpoints.get(delivery.tenant_id, delivery.endpoint_id)
        if endpoint is None:
            return self._record(delivery, attempt, "endpoint_gone", now)
        try:
            self._urls.check(endpoint.url)
        except WebhookUrlNotAllowedError:
            return self._record(delivery, attempt, "refused", now, error="url_not_allowed")
        stamp = int(now.timestamp())
        secrets = [self._open(endpoint, s) for s in endpoint.secrets if s.signs_at(stamp)]
        headers = signing.headers(secrets, delivery.message_id, stamp, delivery.body)
        try:
            status = self._sender.post(endpoint.url, delivery.body.encode(), headers)
        except WebhookDeliveryError as error:
            self._record(delivery, attempt, "failed", now, error=error.detail)
            raise
        if 200 <= status < 300:
            count("WebhookDelivered", event_type=delivery.event_type)
            return self._record(delivery, attempt, "delivered", now, status_code=status)
        self._record(delivery, attempt, "failed", now, status_code=status, error="http_status")
        raise WebhookDeliveryError("http_status", status_code=status)

    def _record(
        self,
        delivery: Delivery,
        attempt: int,
        outcome: str,
        now: datetime,
        status_code: int | None = None,
        error: str | None = None,
    ) -> AttemptRecord:
        record = AttemptRecord(
            tenant_id=delivery.tenant_id,
            endpoint_id=delivery.endpoint_id,
            message_id=delivery.message_id,
            event_type=delivery.event_type,
            attempt=attempt,
            outcome=outcome,
            at=iso(now),
            status_code=status_code,
            error=error,
        )
        self._log.record(record)
        logger.info(
            "webhook attempt",
            endpoint_id=delivery.endpoint_id,
            message_id=delivery.message_id,
            event_type=delivery.event_type,
            attempt=attempt,
            outcome=outcome,
            status_code=status_code,
        )
        return record

    # -- secrets

    def _seal(self, endpoint: Endpoint, secret: str, now: int) -> StoredSecret:
        sealed = self._cipher.seal(secret.encode(), secret_context(endpoint.tenant_id, endpoint.endpoint_id))
        return StoredSecret(sealed=pack_sealed(sealed), created_at=now)

    def _open(self, endpoint: Endpoint, secret: StoredSecret) -> str:
        context = secret_context(endpoint.tenant_id, endpoint.endpoint_id)
        return self._cipher.open(unpack_sealed(secret.sealed), context).decode()


def rotation_ends(endpoint: Endpoint, now: datetime) -> str | None:
    ends = endpoint.rotating_until(int(now.timestamp()))
    return iso(datetime.fromtimestamp(ends, tz=UTC)) if ends is not None else None

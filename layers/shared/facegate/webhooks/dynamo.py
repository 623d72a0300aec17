"""Webhook endpoints and their delivery log (WebhooksTable).

Endpoints are tenant configuration (pk T#<tenant>, sk ENDPOINT#<id>): their secrets sealed, never in clear. The
tenant's endpoint count (sk COUNT#ENDPOINTS) changes in the same transaction as each endpoint, so that concurrent
registrations on many Lambda instances cannot pass the cap.
Delivery attempts (pk T#<tenant>#WEBHOOK#<endpoint>, sk <at>#<message>#<attempt>) name an event, an endpoint and a
status code, never a subject or a body, and end by TTL after DELIVERY_LOG_DAYS.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta

from pynamodb.attributes import ListAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import TransactWriteError, UpdateError
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from facegate.core.dynamo import bind, connection, is_condition_failure
from facegate.webhooks.entities import DELIVERY_LOG_DAYS, AttemptRecord, Endpoint, StoredSecret

ENDPOINT_PREFIX = "ENDPOINT#"
COUNTER_SK = "COUNT#ENDPOINTS"


def tenant_pk(tenant_id: str) -> str:
    return f"T#{tenant_id}"


def log_pk(tenant_id: str, endpoint_id: str) -> str:
    return f"T#{tenant_id}#WEBHOOK#{endpoint_id}"


class WebhookEndpointItem(Model):
    class Meta:
        table_name = ""

    pk = UnicodeAttribute(hash_key=True)  # T#<tenant>
    sk = UnicodeAttribute(range_key=True)  # ENDPOINT#<endpoint_id>
    url = UnicodeAttribute()
    events = ListAttribute(of=UnicodeAttribute)
    description = UnicodeAttribute(null=True)
    created_at = UnicodeAttribute()
    secrets = UnicodeAttribute()  # JSON list of {sealed (base64 of a sealed blob), created_at, retires_at}
    version = NumberAttribute()


class WebhookCounterItem(Model):
    """The number of endpoints a tenant has (pk T#<tenant>, sk COUNT#ENDPOINTS)."""

    class Meta:
        table_name = ""

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    endpoints = NumberAttribute(null=True)


class WebhookAttemptItem(Model):
    class Meta:
        table_name = ""

    pk = UnicodeAttribute(hash_key=True)  # T#<tenant>#WEBHOOK#<endpoint_id>
    sk = UnicodeAttribute(range_key=True)  # <at>#<message_id>#<attempt>
    message_id = UnicodeAttribute()
    event_type = UnicodeAttribute()
    attempt = NumberAttribute()
    outcome = UnicodeAttribute()
    at = UnicodeAttribute()
    status_code = NumberAttribute(null=True)
    error = UnicodeAttribute(null=True)
    expires_at = NumberAttribute()  # DynamoDB TTL


def _secrets_json(secrets: list[StoredSecret]) -> str:
    return json.dumps(
        [
            {"sealed": base64.b64encode(s.sealed).decode(), "created_at": s.created_at, "retires_at": s.retires_at}
            for s in secrets
        ]
    )


def _secrets(text: str) -> list[StoredSecret]:
    return [
        StoredSecret(base64.b64decode(s["sealed"]), int(s["created_at"]), s.get("retires_at")) for s in json.loads(text)
    ]


def _endpoint(tenant_id: str, item: WebhookEndpointItem) -> Endpoint:
    return Endpoint(
        endpoint_id=item.sk.removeprefix(ENDPOINT_PREFIX),
        tenant_id=tenant_id,
        url=item.url,
        events=tuple(str(e) for e in item.events or ()),
        created_at=item.created_at,
        description=item.description,
        secrets=_secrets(item.secrets),
        version=int(item.version),
    )


class WebhookEndpointRepository:
    def __init__(self, table_name: str, region: str) -> None:
        bind(WebhookEndpointItem, table_name, region)
        bind(WebhookCounterItem, table_name, region)
        self._region = region

    def create(self, endpoint: Endpoint, limit: int) -> bool:
        """Store the endpoint and count it, in one transaction that holds only while the tenant has fewer than
        `limit` endpoints; False (nothing written) when it has `limit` already."""
        counter = WebhookCounterItem(tenant_pk(endpoint.tenant_id), COUNTER_SK)
        item = WebhookEndpointItem(
            tenant_pk(endpoint.tenant_id),
            ENDPOINT_PREFIX + endpoint.endpoint_id,
            url=endpoint.url,
            events=list(endpoint.events),
            description=endpoint.description,
            created_at=endpoint.created_at,
            secrets=_secrets_json(endpoint.secrets),
            version=endpoint.version,
        )
        try:
            with TransactWrite(connection=connection(self._region)) as tx:
                tx.update(
                    counter,
                    actions=[WebhookCounterItem.endpoints.add(1)],
                    condition=WebhookCounterItem.endpoints.does_not_exist() | (WebhookCounterItem.endpoints < limit),
                )
                tx.save(item, condition=WebhookEndpointItem.sk.does_not_exist())
        except TransactWriteError as error:
            if is_condition_failure(error):
                return False
            raise
        return True

    def get(self, tenant_id: str, endpoint_id: str) -> Endpoint | None:
        try:
            item = WebhookEndpointItem.get(tenant_pk(tenant_id), ENDPOINT_PREFIX + endpoint_id, consistent_read=True)
        except WebhookEndpointItem.DoesNotExist:
            return None
        return _endpoint(tenant_id, item)

    def all_for_tenant(self, tenant_id: str) -> list[Endpoint]:
        items = WebhookEndpointItem.query(
            tenant_pk(tenant_id), WebhookEndpointItem.sk.startswith(ENDPOINT_PREFIX), consistent_read=True
        )
        return [_endpoint(tenant_id, item) for item in items]

    def delete(self, tenant_id: str, endpoint_id: str) -> bool:
        """Delete the endpoint and uncount it in one transaction; False when there is no such endpoint."""
        item = WebhookEndpointItem(tenant_pk(tenant_id), ENDPOINT_PREFIX + endpoint_id)
        try:
            with TransactWrite(connection=connection(self._region)) as tx:
                tx.delete(item, condition=WebhookEndpointItem.sk.exists())
                tx.update(
                    WebhookCounterItem(tenant_pk(tenant_id), COUNTER_SK),
                    actions=[WebhookCounterItem.endpoints.add(-1)],
                )
        except TransactWriteError as error:
            if is_condition_failure(error):
                return False
            raise
        return True

    def replace_secrets(self, endpoint: Endpoint, expected_version: int) -> bool:
        item = WebhookEndpointItem(tenant_pk(endpoint.tenant_id), ENDPOINT_PREFIX + endpoint.endpoint_id)
        try:
            item.update(
                actions=[
                    WebhookEndpointItem.secrets.set(_secrets_json(endpoint.secrets)),
                    WebhookEndpointItem.version.set(endpoint.version),
                ],
                condition=WebhookEndpointItem.version == expected_version,
            )
        except UpdateError as error:
            if is_condition_failure(error):
                return False
            raise
        return True


class WebhookDeliveryLog:
    def __init__(self, table_name: str, region: str, days: int = DELIVERY_LOG_DAYS) -> None:
        bind(WebhookAttemptItem, table_name, region)
        self._days = days

    def record(self, attempt: AttemptRecord) -> None:
        at = datetime.fromisoformat(attempt.at.replace("Z", "+00:00"))
        WebhookAttemptItem(
            log_pk(attempt.tenant_id, attempt.endpoint_id),
            f"{attempt.at}#{attempt.message_id}#{attempt.attempt:02d}",
            message_id=attempt.message_id,
            event_type=attempt.event_type,
            attempt=attempt.attempt,
            outcome=attempt.outcome,
            at=attempt.at,
            status_code=attempt.status_code,
            error=attempt.error,
            expires_at=int((at + timedelta(days=self._days)).timestamp()),
        ).save()

    def for_endpoint(self, tenant_id: str, endpoint_id: str, limit: int) -> list[AttemptRecord]:
        items = WebhookAttemptItem.query(log_pk(tenant_id, endpoint_id), scan_index_forward=False, limit=limit)
        return [
            AttemptRecord(
                tenant_id=tenant_id,
                endpoint_id=endpoint_id,
                message_id=item.message_id,
                event_type=item.event_type,
                attempt=int(item.attempt),
                outcome=item.outcome,
                at=item.at,
                status_code=int(item.status_code) if item.status_code is not None else None,
                error=item.error,
            )
            for item in items
        ]

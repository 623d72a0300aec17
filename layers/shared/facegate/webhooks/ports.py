"""What the webhook service needs from storage, the queue and the network (dynamo.py, sqs.py, sender.py)."""

from __future__ import annotations

from typing import Protocol

from facegate.webhooks.entities import AttemptRecord, Delivery, Endpoint


class EndpointStore(Protocol):
    def create(self, endpoint: Endpoint, limit: int) -> bool:
        """Store the endpoint unless its tenant has `limit` already (False), atomically under concurrency."""
        ...

    def get(self, tenant_id: str, endpoint_id: str) -> Endpoint | None: ...

    def all_for_tenant(self, tenant_id: str) -> list[Endpoint]: ...

    def delete(self, tenant_id: str, endpoint_id: str) -> bool: ...

    def replace_secrets(self, endpoint: Endpoint, expected_version: int) -> bool:
        """Store the endpoint's secrets and version if its stored version is still `expected_version`."""
        ...


class DeliveryLog(Protocol):
    def record(self, attempt: AttemptRecord) -> None: ...

    def for_endpoint(self, tenant_id: str, endpoint_id: str, limit: int) -> list[AttemptRecord]: ...


class DeliveryQueue(Protocol):
    def enqueue(self, delivery: Delivery) -> None: ...


class Sender(Protocol):
    def post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        """POST and return the HTTP status; raises facegate.core.errors.WebhookDeliveryError when no answer came."""
        ...


class UrlPolicy(Protocol):
    def check(self, url: str) -> None:
        """Raises WebhookUrlNotAllowedError for a URL the service must not call."""
        ...

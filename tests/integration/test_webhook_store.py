"""The webhook endpoint repository on the template's WebhooksTable in moto: the per-tenant endpoint cap holds when
many registrations race (each endpoint and the tenant's count change in one transaction)."""

from __future__ import annotations

import threading
import uuid

import boto3
import pytest

from facegate import wiring
from facegate.core.clock import iso, utcnow
from facegate.webhooks.dynamo import COUNTER_SK, WebhookEndpointRepository, tenant_pk
from facegate.webhooks.entities import MAX_ENDPOINTS_PER_TENANT, Endpoint
from localcloud.cloud import LocalCloud

pytestmark = pytest.mark.integration


@pytest.fixture
def repo(cloud: LocalCloud) -> WebhookEndpointRepository:
    settings = wiring.container().settings
    return WebhookEndpointRepository(settings.webhooks_table, settings.region)


def endpoint(tenant_id: str) -> Endpoint:
    return Endpoint(
        endpoint_id="we_" + uuid.uuid4().hex,
        tenant_id=tenant_id,
        url="https://hooks.shop.example/facegate",
        events=("erasure.completed",),
        created_at=iso(utcnow()),
    )


def stored_count(aws: boto3.session.Session, tenant_id: str) -> int:
    table = aws.resource("dynamodb").Table(wiring.container().settings.webhooks_table)
    item = table.get_item(Key={"pk": tenant_pk(tenant_id), "sk": COUNTER_SK}, ConsistentRead=True)["Item"]
    return int(item["endpoints"])


def test_concurrent_registrations_never_pass_the_endpoint_cap(
    repo: WebhookEndpointRepository, aws: boto3.session.Session, atomic_dynamodb: None
) -> None:
    # Given a tenant two endpoints short of the cap
    tenant = "t-" + uuid.uuid4().hex[:8]
    for _ in range(MAX_ENDPOINTS_PER_TENANT - 2):
        assert repo.create(endpoint(tenant), MAX_ENDPOINTS_PER_TENANT)
    # When 8 registrations run at once (as on 8 Lambda instances)
    start = threading.Barrier(8)
    outcomes: list[bool] = []

    def register() -> None:
        start.wait()
        outcomes.append(repo.create(endpoint(tenant), MAX_ENDPOINTS_PER_TENANT))

    threads = [threading.Thread(target=register) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Then exactly two of them are stored, and the tenant has exactly the cap
    assert sorted(outcomes) == [False] * 6 + [True] * 2
    stored = repo.all_for_tenant(tenant)
    assert len(stored) == MAX_ENDPOINTS_PER_TENANT == stored_count(aws, tenant)
    # And a deletion frees one place (once: deleting it again changes nothing)
    assert repo.delete(tenant, stored[0].endpoint_id)
    assert not repo.delete(tenant, stored[0].endpoint_id)
    assert stored_count(aws, tenant) == MAX_ENDPOINTS_PER_TENANT - 1
    assert repo.create(endpoint(tenant), MAX_ENDPOINTS_PER_TENANT)
    assert not repo.create(endpoint(tenant), MAX_ENDPOINTS_PER_TENANT)
    # And the count item is not an endpoint
    assert all(e.endpoint_id.startswith("we_") for e in repo.all_for_tenant(tenant))

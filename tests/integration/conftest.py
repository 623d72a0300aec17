"""The local cloud in-process: template.yaml's resources in moto's in-process mock, real handlers."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from localcloud.cloud import LOCAL_ENVIRONMENT, REGION, LocalCloud, start


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class Api:
    """Calls the gateway as an HTTP client would: method, path, bearer token, JSON body."""

    def __init__(self, cloud: LocalCloud) -> None:
        self.cloud = cloud

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        tenant: str | None = "demo",
        token: str | None = None,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        path, _, query = path.partition("?")
        all_headers = {"content-type": "application/json", **(headers or {})}
        if token is None and tenant is not None:
            token = self.cloud.token(tenant)
        if token:
            all_headers["authorization"] = f"Bearer {token}"
        payload = raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
        response = self.cloud.gateway.handle(method, path, query, all_headers, payload)
        return Reply(response.status, response.headers, response.body)


@pytest.fixture(scope="session")
def cloud() -> Iterator[LocalCloud]:
    saved = dict(os.environ)
    os.environ.update(LOCAL_ENVIRONMENT)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    with mock_aws():
        local = start(boto3.session.Session(region_name=REGION))
        single_photo_purposes(Api(local))
        yield local
    os.environ.clear()
    os.environ.update(saved)


SINGLE_PHOTO_REASON = "integration tests of single-photo flows"


def single_photo_purposes(api: Api) -> None:
    """Liveness is `required` by default for every purpose. Most integration tests are about consent, enrolment,
    matching, lockout or erasure with single photos, not about liveness: the seeded tenants' purposes allow a single
    photo (audited, with this reason). tests/integration/test_liveness_api.py uses a purpose of its own whose policy
    was never set (so `required` by default) and sets `required` explicitly where it matters."""
    from localcloud.seed import PURPOSES, TENANTS

    body = {"liveness": "optional", "liveness_reason": SINGLE_PHOTO_REASON}
    for tenant in TENANTS:
        for purpose in PURPOSES:
            reply = api.call("PUT", f"/v1/purposes/{purpose}", body, tenant=tenant)
            assert reply.status == 200 and reply.json["liveness"] == "optional", reply.body


@pytest.fixture
def api(cloud: LocalCloud) -> Api:
    return Api(cloud)


@pytest.fixture
def subject_id() -> str:
    """A fresh tenant-side subject id per test, so tests never see each other's data."""
    return f"user-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def aws(cloud: LocalCloud) -> boto3.session.Session:
    return boto3.session.Session(region_name=REGION)


def all_items(session: boto3.session.Session, cloud: LocalCloud) -> dict[str, list[dict[str, Any]]]:
    """Every item of every table template.yaml declares (for 'nothing written' assertions)."""
    ddb = session.client("dynamodb")
    out = {}
    for logical in cloud.stack.resources_of("AWS::DynamoDB::Table"):
        name = cloud.stack.ref(logical)
        out[logical] = ddb.scan(TableName=name)["Items"]
    return out


@contextmanager
def event_bus_outage(events_client: Any) -> Iterator[dict[str, int]]:
    """Every PutEvents of this EventBridge client fails (InternalException) inside the block; yields the count of
    refused calls."""
    calls = {"n": 0}

    def outage(**_: Any) -> None:
        calls["n"] += 1
        raise ClientError({"Error": {"Code": "InternalException", "Message": "injected"}}, "PutEvents")

    events_client.meta.events.register("before-call.events.PutEvents", outage)
    try:
        yield calls
    finally:
        events_client.meta.events.unregister("before-call.events.PutEvents", outage)

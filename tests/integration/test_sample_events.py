"""The sample events in events/ are valid API Gateway events for the real handlers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from localcloud.cloud import LocalCloud

pytestmark = pytest.mark.integration

EVENTS = Path(__file__).resolve().parents[2] / "events"


def load(name: str) -> dict:
    return json.loads((EVENTS / name).read_text())


def test_health_event(cloud: LocalCloud) -> None:
    answer = cloud.gateway.invoke("ConsentFunction", load("consent/health.json"))
    assert answer["statusCode"] == 200 and json.loads(answer["body"])["status"] == "ok"


def test_record_consent_event_from_an_unknown_client_is_refused(cloud: LocalCloud) -> None:
    answer = cloud.gateway.invoke("ConsentFunction", load("consent/record_consent.json"))
    assert answer["statusCode"] == 403
    assert json.loads(answer["body"])["code"] == "tenant_unknown"


def test_deletion_keeps_queued_jobs_until_erasure_exists(cloud: LocalCloud) -> None:
    answer = cloud.gateway.invoke("DeletionFunction", {"Records": [{"messageId": "m-1", "body": "{}"}]})
    assert answer == {"batchItemFailures": [{"itemIdentifier": "m-1"}]}

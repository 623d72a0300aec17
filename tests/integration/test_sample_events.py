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


def test_consent_withdrawn_event_runs_a_purpose_erasure(cloud: LocalCloud) -> None:
    answer = cloud.gateway.invoke("DeletionFunction", load("deletion/consent_withdrawn_sqs.json"))
    assert answer == {"batchItemFailures": []}


def test_unknown_deletion_job_is_reported_failed_for_retry(cloud: LocalCloud) -> None:
    record = load("deletion/consent_withdrawn_sqs.json")["Records"][0]
    record = dict(record, body=json.dumps({"deletion_id": "unknown", "tenant_id": "demo"}))
    answer = cloud.gateway.invoke("DeletionFunction", {"Records": [record]})
    assert answer == {"batchItemFailures": [{"itemIdentifier": record["messageId"]}]}

"""1:N identification: refused until a tenant admin enables it with an assessment id, then found in an
encrypted, sharded gallery kept up to date on enrolment and erasure; never across tenants."""

from __future__ import annotations

import base64
import time
import uuid
from pathlib import Path

import boto3
import pytest

from facegate import wiring
from tests.integration.conftest import Api
from tests.integration.test_deletion_api import ref
from tests.integration.test_enrolment_api import grant

pytestmark = [pytest.mark.integration, pytest.mark.slow]
PURPOSE = "exam_proctoring"


@pytest.fixture(scope="module")
def people(enrollable_people: list[list[Path]]) -> list[list[Path]]:
    return enrollable_people[2:6]


def b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def enrol(api: Api, subject_id: str, photo: Path, tenant: str = "demo") -> None:
    grant(api, subject_id, PURPOSE, tenant=tenant)
    reply = api.call(
        "POST", f"/v1/subjects/{subject_id}/enrolments", {"purpose": PURPOSE, "image": b64(photo)}, tenant=tenant
    )
    assert reply.status == 201, reply.body


def identify(api: Api, photo: Path, tenant: str = "demo") -> tuple[int, dict]:
    reply = api.call(
        "POST", "/v1/identifications", {"purpose": PURPOSE, "image": b64(photo), "top_k": 5}, tenant=tenant
    )
    return reply.status, reply.json


def enable(api: Api, tenant: str = "demo") -> dict:
    reply = api.call(
        "PUT",
        f"/v1/purposes/{PURPOSE}",
        {"identification_enabled": True, "assessment_id": "PIA-2026-017"},
        tenant=tenant,
    )
    assert reply.status == 200, reply.body
    return reply.json


def test_identification_lifecycle(api: Api, people: list[list[Path]]) -> None:
    a, b, c, _ = people
    ids = {name: f"{name}-{uuid.uuid4().hex[:8]}" for name in "abc"}
    enrol(api, ids["a"], a[0])
    enrol(api, ids["b"], b[0])

    status, body = identify(api, a[1])
    assert status == 403 and body["code"] == "identification_disabled"
    no_assessment = api.call("PUT", f"/v1/purposes/{PURPOSE}", {"identification_enabled": True})
    assert no_assessment.status == 422
    not_admin = api.cloud.token("demo", scopes=("identify",))
    assert api.call("PUT", f"/v1/purposes/{PURPOSE}", {"identification_enabled": True}, token=not_admin).status == 403

    enabled = enable(api)
    assert enabled["identification_enabled"] is True and enabled["identification_assessment_id"] == "PIA-2026-017"

    status, body = identify(api, a[1])
    assert status == 200, body
    assert body["candidates"] and body["candidates"][0]["subject_id"] == ids["a"], body
    assert body["gallery_size"] >= 2 and body["expected_false_candidate_rate"] <= 1
    assert ids["b"] not in [cand["subject_id"] for cand in body["candidates"]]

    # Enrolled after 1:N was enabled: added to the gallery at once.
    enrol(api, ids["c"], c[0])
    status, body = identify(api, c[1])
    assert body["candidates"][0]["subject_id"] == ids["c"], body

    # Erased: gone from the gallery.
    erased = api.call("DELETE", f"/v1/subjects/{ids['a']}")
    api.cloud.deliver_events()
    assert api.call("GET", f"/v1/deletions/{erased.json['deletion_id']}").json["removed"]["galleries"] == 1
    status, body = identify(api, a[1])
    assert ids["a"] not in [cand["subject_id"] for cand in body["candidates"]]


def test_other_tenant_never_sees_demo_gallery(api: Api, people: list[list[Path]]) -> None:
    _, _, _, d = people
    demo_subject = f"d-{uuid.uuid4().hex[:8]}"
    enable(api)
    enrol(api, demo_subject, d[0])
    assert identify(api, d[1])[1]["candidates"][0]["subject_id"] == demo_subject
    enable(api, tenant="other")
    status, body = identify(api, d[1], tenant="other")
    assert status == 200 and demo_subject not in [cand["subject_id"] for cand in body["candidates"]]


def test_the_retention_sweep_takes_the_gallery_row_of_an_expired_template(
    api: Api, aws: boto3.session.Session, enrollable_people: list[list[Path]]
) -> None:
    # Given a subject found by 1:N, whose template has passed its retention (TTL has not removed it yet)
    photos = enrollable_people[6]
    subject_id = f"e-{uuid.uuid4().hex[:8]}"
    enable(api)
    enrol(api, subject_id, photos[0])
    status, before = identify(api, photos[1])
    assert status == 200 and before["candidates"][0]["subject_id"] == subject_id
    dynamodb = aws.client("dynamodb")
    table = api.cloud.stack.ref("TemplatesTable")
    mine = [i for i in dynamodb.scan(TableName=table)["Items"] if i["pk"]["S"] == f"T#demo#S#{ref(subject_id)}"]
    assert mine
    for item in mine:
        dynamodb.update_item(
            TableName=table,
            Key={"pk": item["pk"], "sk": item["sk"]},
            UpdateExpression="SET expires_at = :past",
            ExpressionAttributeValues={":past": {"N": str(int(time.time()) - 60)}},
        )

    # When the scheduled sweep runs
    counts = wiring.container().deletions.sweep()

    # Then the template and its gallery row are gone: 1:N no longer names the subject
    assert counts["templates"] >= 1 and counts["galleries"] >= 1
    status, after = identify(api, photos[1])
    assert status == 200 and subject_id not in [c["subject_id"] for c in after["candidates"]]
    assert after["gallery_size"] == before["gallery_size"] - 1

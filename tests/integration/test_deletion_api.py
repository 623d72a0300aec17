"""Erasure leaves nothing behind: every table and bucket template.yaml declares is scanned afterwards."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import jwt
import pytest
import requests
from botocore.exceptions import ClientError

from facegate import wiring
from facegate.core.clock import utcnow
from facegate.deletion import sqs as queue
from tests.integration.conftest import Api
from tests.integration.test_enrolment_api import grant

pytestmark = pytest.mark.integration


def ref(subject_id: str, tenant: str = "demo") -> str:
    return wiring.container().hasher.ref(tenant, subject_id)


def traces(aws: boto3.session.Session, api: Api, needles: list[bytes]) -> list[tuple[str, str]]:
    """(store, where) for every place any needle appears, over all tables and buckets of the template."""
    found = []
    ddb, s3 = aws.client("dynamodb"), aws.client("s3")
    for logical in api.cloud.stack.resources_of("AWS::DynamoDB::Table"):
        for item in ddb.scan(TableName=api.cloud.stack.ref(logical))["Items"]:
            text = json.dumps(item, default=lambda b: base64.b64encode(b).decode()).encode()
            raw = b"".join(v["B"] for v in item.values() if "B" in v)
            if any(n in text or n in raw or base64.b64encode(n) in text for n in needles):
                found.append((logical, item["sk"]["S"] if "sk" in item else item["id"]["S"]))
    for logical in api.cloud.stack.resources_of("AWS::S3::Bucket"):
        bucket = api.cloud.stack.ref(logical)
        for obj in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
            body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
            if any(n in obj["Key"].encode() or n in body for n in needles):
                found.append((logical, obj["Key"]))
    return found


def erase(api: Api, subject_id: str, tenant: str = "demo") -> dict[str, Any]:
    reply = api.call("DELETE", f"/v1/subjects/{subject_id}", tenant=tenant)
    assert reply.status == 202, reply.body
    api.cloud.deliver_events()
    done = api.call("GET", f"/v1/deletions/{reply.json['deletion_id']}", tenant=tenant)
    assert done.status == 200
    return done.json


def check_receipt(api: Api, receipt: str) -> dict[str, Any]:
    key = jwt.PyJWK.from_dict(api.call("GET", "/v1/keys", tenant=None).json["keys"][0])
    return jwt.decode(receipt, key.key, algorithms=["ES256"])


def allowed(trace: tuple[str, str]) -> bool:
    return trace[0] == "AuditTable" or trace == ("ConsentsTable", "TOMBSTONE")


def test_erasure_of_consent_only_subject_leaves_tombstone_and_audit(
    api: Api, aws: boto3.session.Session, subject_id: str
) -> None:
    grant(api, subject_id)
    api.call("DELETE", f"/v1/subjects/{subject_id}/consents/checkout")
    api.call("POST", f"/v1/subjects/{subject_id}/consents", {"bad": 1}, headers={"idempotency-key": "k-12345678"})
    job = erase(api, subject_id)
    assert job["status"] == "completed" and job["removed"]["consents"] >= 3
    claims = check_receipt(api, job["receipt"])
    assert claims["typ"] == "deletion-receipt" and claims["stores"] == job["removed"]
    left = traces(aws, api, [subject_id.encode(), ref(subject_id).encode()])
    assert left and all(allowed(t) for t in left), left
    assert subject_id.encode() not in json.dumps(left).encode()
    assert api.call("GET", f"/v1/subjects/{subject_id}/consents/history").json["records"] == []


def test_unknown_subject_gets_the_same_answer(api: Api, subject_id: str) -> None:
    job = erase(api, subject_id)
    assert job["status"] == "completed" and set(job["removed"]) >= {"templates", "consents", "uploads"}
    assert sum(job["removed"].values()) == 0


def test_other_tenant_cannot_read_a_deletion(api: Api, subject_id: str) -> None:
    reply = api.call("DELETE", f"/v1/subjects/{subject_id}")
    assert api.call("GET", f"/v1/deletions/{reply.json['deletion_id']}", tenant="other").status == 404


@pytest.mark.slow
def test_enrol_verify_erase_then_nothing_anywhere(
    api: Api, aws: boto3.session.Session, subject_id: str, enrollable_people: list[list[Path]]
) -> None:
    photos = enrollable_people[6]
    grant(api, subject_id)
    grant(api, subject_id, "exam_proctoring")
    image = base64.b64encode(photos[0].read_bytes()).decode()
    enrolled = api.call(
        "POST",
        f"/v1/subjects/{subject_id}/enrolments",
        {"purpose": "checkout", "image": image},
        headers={"idempotency-key": "erase-me-0001"},
    )
    assert enrolled.status == 201, enrolled.body
    probe = base64.b64encode(photos[1].read_bytes()).decode()
    verified = api.call("POST", "/v1/verifications", {"subject_id": subject_id, "purpose": "checkout", "image": probe})
    assert verified.json["decision"] == "match"
    # The non-face paths leave data too: a TOTP secret and a verification session with an e-mail.
    assert api.call("POST", f"/v1/subjects/{subject_id}/totp", {}).status in (200, 201)
    session = {"subject_id": subject_id, "purpose": "checkout", "email": "erase-me@example.com"}
    assert api.call("POST", "/v1/verification-sessions", session).status == 201
    # A device session (issue 15), one of them revoked: the session is the subject's, the revocation holds no trace.
    device = {"subject_id": subject_id, "purpose": "checkout", "operations": ["verify"]}
    assert api.call("POST", "/v1/device-sessions", device).status == 201
    revoked = api.call("POST", "/v1/device-sessions", device).json["device_session_id"]
    assert api.call("DELETE", f"/v1/device-sessions/{revoked}").status == 204
    # A pending upload that never got processed must be erased too.
    pending = api.call("POST", f"/v1/subjects/{subject_id}/enrolments", {"purpose": "exam_proctoring"}).json
    form = pending["upload"]
    requests.post(form["url"], data=form["fields"], files={"file": ("s", photos[2].read_bytes())}, timeout=30)
    ciphertexts = [
        i["ciphertext"]["B"]
        for i in aws.client("dynamodb").scan(TableName=api.cloud.stack.ref("TemplatesTable"))["Items"]
        if i["pk"]["S"].endswith(ref(subject_id))
    ]
    assert ciphertexts

    reply = api.call("DELETE", f"/v1/subjects/{subject_id}")
    # the upload's own S3 event is still queued: erase first, then let the event arrive
    job_id = reply.json["deletion_id"]
    api.cloud.deliver_events()
    job = api.call("GET", f"/v1/deletions/{job_id}").json
    assert job["status"] == "completed" and job["removed"]["templates"] >= 1
    left = traces(aws, api, [subject_id.encode(), ref(subject_id).encode(), *ciphertexts])
    assert all(allowed(t) for t in left), left
    assert api.call(
        "POST", "/v1/verifications", {"subject_id": subject_id, "purpose": "checkout", "image": probe}
    ).json["code"] in ("consent_required", "not_enrolled")


@pytest.mark.slow
def test_withdrawal_erases_that_purpose_only(
    api: Api, aws: boto3.session.Session, subject_id: str, enrollable_people: list[list[Path]]
) -> None:
    photo = enrollable_people[7][0]
    image = base64.b64encode(photo.read_bytes()).decode()
    for purpose in ("checkout", "exam_proctoring"):
        grant(api, subject_id, purpose)
        reply = api.call("POST", f"/v1/subjects/{subject_id}/enrolments", {"purpose": purpose, "image": image})
        assert reply.status == 201, reply.body
    assert api.call("DELETE", f"/v1/subjects/{subject_id}/consents/checkout").status == 200
    api.cloud.deliver_events()
    items = aws.client("dynamodb").scan(TableName=api.cloud.stack.ref("TemplatesTable"))["Items"]
    mine = [i["purpose"]["S"] for i in items if i["pk"]["S"].endswith(ref(subject_id))]
    assert mine == ["exam_proctoring"]


def test_a_fault_midway_is_retried_and_nothing_else_is_lost(
    api: Api, aws: boto3.session.Session, subject_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    bystander = subject_id + "-bystander"
    grant(api, subject_id)
    grant(api, bystander)
    service = wiring.container().deletions
    client = service._erasure._ddb  # the repository's own DynamoDB client
    calls = {"n": 0}

    def fail_once(**_: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise ClientError({"Error": {"Code": "InternalServerError", "Message": "injected"}}, "DeleteItem")

    client.meta.events.register("before-call.dynamodb.DeleteItem", fail_once)
    delays: list[int] = []

    def delay_redelivery(sqs_client: Any, queue_url: str, receipt_handle: str, receive_count: int) -> None:
        delays.append(queue.backoff_seconds(receive_count))  # record the backoff, redeliver at once
        sqs_client.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=receipt_handle, VisibilityTimeout=0)

    monkeypatch.setattr(queue, "delay_redelivery", delay_redelivery)
    sqs = aws.client("sqs")
    url = sqs.get_queue_url(QueueName="facegate-local-DeletionQueue")["QueueUrl"]
    # Redeliver at once instead of after the 6-minute visibility timeout.
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "0"})
    try:
        reply = api.call("DELETE", f"/v1/subjects/{subject_id}")
        api.cloud.deliver_events()
        first = api.call("GET", f"/v1/deletions/{reply.json['deletion_id']}").json
        assert first["status"] == "running" and calls["n"] >= 1
        assert delays == [30]  # the failed message was pushed back 30 s (first backoff step)
        api.cloud.deliver_events()  # the redelivery (the test does not wait the 30 s: see delay_redelivery below)
    finally:
        client.meta.events.unregister("before-call.dynamodb.DeleteItem", fail_once)
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "360"})
    job = api.call("GET", f"/v1/deletions/{reply.json['deletion_id']}").json
    assert job["status"] == "completed", job
    assert [t for t in traces(aws, api, [ref(subject_id).encode()]) if not allowed(t)] == []
    assert api.call("GET", f"/v1/subjects/{bystander}/consents").json["consents"][0]["status"] == "granted"


def test_retention_sweep_removes_expired_data(
    api: Api, aws: boto3.session.Session, subject_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    jobs = api.cloud.stack.ref("JobsTable")
    aws.client("dynamodb").put_item(
        TableName=jobs,
        Item={
            "pk": {"S": f"T#demo#S#{ref(subject_id)}"},
            "sk": {"S": "ENROLMENT#feedfacefeedfacefeedfacefeedface"},
            "expires_at": {"N": str(int((utcnow() + timedelta(days=30)).timestamp()))},
        },
    )
    service = wiring.container().deletions
    assert service.sweep()["enrolment_jobs"] == 0
    monkeypatch.setattr(service, "_clock", lambda: utcnow() + timedelta(days=31))
    assert service.sweep()["enrolment_jobs"] >= 1
    assert not [i for i in aws.client("dynamodb").scan(TableName=jobs)["Items"] if ref(subject_id) in i["pk"]["S"]]


def test_compliance_report(api: Api, subject_id: str) -> None:
    grant(api, subject_id)
    erase(api, subject_id + "-gone")
    token = api.cloud.token("demo", scopes=("consent",))
    assert api.call("GET", "/v1/compliance/report", token=token).status == 403
    before = api.call("GET", "/v1/compliance/report").json
    grant(api, subject_id + "-erased")
    erase(api, subject_id + "-erased")
    report = api.call("GET", "/v1/compliance/report").json
    # Decisions are counted from the audit log: erasing the subject does not erase the statistics.
    assert report["consents"]["granted"] == before["consents"]["granted"] + 1
    assert report["erasures_completed"] == before["erasures_completed"] + 1
    assert report["erasure_median_seconds"] is not None
    assert report["filing_threshold"] == 100_000 and report["warnings"] == []
    assert isinstance(report["individuals_with_face_data"], int)

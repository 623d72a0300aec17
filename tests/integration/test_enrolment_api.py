"""Enrolment through the local gateway with the real face engine on real photos.

Every path, success or failure, must leave the uploads bucket empty.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import boto3
import pytest
import requests

from tests.integration.conftest import Api, all_items
from tests.integration.test_consent_api import consent_body, current_notice

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def person(enrollable_people: list[list[Path]]) -> list[Path]:
    return enrollable_people[0]


def grant(api: Api, subject_id: str, purpose: str = "checkout", tenant: str = "demo") -> None:
    notice = current_notice(api, purpose, "en", tenant=tenant)
    reply = api.call("POST", f"/v1/subjects/{subject_id}/consents", consent_body(notice), tenant=tenant)
    assert reply.status == 201, reply.body


def uploads_bucket_keys(aws: boto3.session.Session, api: Api) -> list[str]:
    bucket = api.cloud.stack.ref("UploadsBucket")
    return [o["Key"] for o in aws.client("s3").list_objects_v2(Bucket=bucket).get("Contents", [])]


def inline(path: Path) -> dict:
    return {"purpose": "checkout", "image": base64.b64encode(path.read_bytes()).decode()}


def upload(api: Api, subject_id: str, data: bytes, content_type: str = "image/jpeg") -> str:
    reply = api.call(
        "POST", f"/v1/subjects/{subject_id}/enrolments", {"purpose": "checkout", "content_type": content_type}
    )
    assert reply.status == 202, reply.body
    started = reply.json
    assert started["status"] == "pending" and started["upload"]["expires_in"] == 300
    form = started["upload"]
    posted = requests.post(form["url"], data=form["fields"], files={"file": ("selfie", data)}, timeout=30)
    assert posted.status_code in (200, 201, 204)
    api.cloud.deliver_events()
    return started["enrolment_id"]


def test_inline_enrolment_stores_an_encrypted_template_and_no_image(
    api: Api, aws: boto3.session.Session, subject_id: str, person: list[Path]
) -> None:
    grant(api, subject_id)
    reply = api.call("POST", f"/v1/subjects/{subject_id}/enrolments", inline(person[0]))
    assert reply.status == 201, reply.body
    body = reply.json
    assert body["status"] == "completed" and body["template"]["model_id"]
    assert "vector" not in json.dumps(body)

    items = [
        i
        for i in all_items(aws, api.cloud)["TemplatesTable"]
        if i["template_id"]["S"] == body["template"]["template_id"]
    ]
    assert len(items) == 1
    item = items[0]
    assert item["model_version"]["S"] == body["template"]["model_version"]
    # The stored bytes are ciphertext: KMS releases the data key only under the same context.
    kms = aws.client("kms")
    context = {"tenant": "demo", "subject": item["pk"]["S"].split("#S#")[1], "purpose": "checkout"}
    kms.decrypt(CiphertextBlob=item["encrypted_key"]["B"], EncryptionContext=context)
    with pytest.raises(kms.exceptions.InvalidCiphertextException):
        kms.decrypt(
            CiphertextBlob=item["encrypted_key"]["B"],
            EncryptionContext=dict(context, purpose="exam_proctoring"),
        )
    assert uploads_bucket_keys(aws, api) == []

    status = api.call("GET", f"/v1/subjects/{subject_id}/enrolments/{body['enrolment_id']}")
    assert status.status == 200 and status.json["status"] == "completed"
    assert api.call("GET", f"/v1/subjects/{subject_id}/enrolments/{body['enrolment_id']}", tenant="other").status in (
        403,
        404,
    )
    audit = [i["action"]["S"] for i in all_items(aws, api.cloud)["AuditTable"] if i["pk"]["S"] == item["pk"]["S"]]
    assert "enrolment.completed" in audit


def test_enrolment_needs_consent_and_writes_nothing(
    api: Api, aws: boto3.session.Session, subject_id: str, person: list[Path]
) -> None:
    before = all_items(aws, api.cloud)
    reply = api.call("POST", f"/v1/subjects/{subject_id}/enrolments", inline(person[0]))
    assert reply.status == 403 and reply.json["code"] == "consent_required"
    after = all_items(aws, api.cloud)
    assert after["TemplatesTable"] == before["TemplatesTable"] and after["JobsTable"] == before["JobsTable"]


def test_presigned_upload_is_enrolled_then_deleted(
    api: Api, aws: boto3.session.Session, subject_id: str, person: list[Path]
) -> None:
    grant(api, subject_id)
    enrolment_id = upload(api, subject_id, person[1].read_bytes())
    status = api.call("GET", f"/v1/subjects/{subject_id}/enrolments/{enrolment_id}").json
    assert status["status"] == "completed", status
    assert uploads_bucket_keys(aws, api) == []


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("noface_dlib_dogs.jpg", "no_face"),
        ("multi_2faces_face_recognition_obama_and_biden.jpg", "multiple_faces"),
        ("malformed_truncated.jpg", "invalid_image"),
        ("malformed_empty.png", "invalid_image"),
        ("malformed_corrupted.png", "invalid_image"),
    ],
)
def test_unusable_images_fail_with_their_code_inline_and_uploaded(
    api: Api, aws: boto3.session.Session, subject_id: str, faces_misc_dir: Path, name: str, code: str
) -> None:
    grant(api, subject_id)
    data = (faces_misc_dir / name).read_bytes()
    if data:
        reply = api.call(
            "POST",
            f"/v1/subjects/{subject_id}/enrolments",
            {"purpose": "checkout", "image": base64.b64encode(data).decode()},
        )
        assert reply.status in (400, 422) and reply.json["code"] == code, reply.body
        assert reply.headers["content-type"] == "application/problem+json"
    enrolment_id = upload(api, subject_id, data or b"\x00")
    status = api.call("GET", f"/v1/subjects/{subject_id}/enrolments/{enrolment_id}").json
    assert status["status"] == "failed" and status["reason"] == code, status
    assert uploads_bucket_keys(aws, api) == []
    assert not [i for i in all_items(aws, api.cloud)["TemplatesTable"] if i["enrolment_id"]["S"] == enrolment_id]


def test_huge_upload_is_refused_before_reading(api: Api, aws: boto3.session.Session, subject_id: str) -> None:
    grant(api, subject_id)
    enrolment_id = upload(api, subject_id, b"\xff\xd8\xff" + b"0" * (5 * 1024 * 1024 + 10))
    status = api.call("GET", f"/v1/subjects/{subject_id}/enrolments/{enrolment_id}").json
    assert status["status"] == "failed" and status["reason"] == "image_too_large"
    assert uploads_bucket_keys(aws, api) == []


def test_inline_image_over_5_mb_is_413(api: Api, subject_id: str) -> None:
    grant(api, subject_id)
    big = base64.b64encode(b"\xff\xd8\xff" + b"0" * (5 * 1024 * 1024 + 10)).decode()
    reply = api.call("POST", f"/v1/subjects/{subject_id}/enrolments", {"purpose": "checkout", "image": big})
    assert reply.status == 413 and reply.json["code"] in ("image_too_large", "payload_too_large")


def test_bad_base64_and_bad_content_type(api: Api, subject_id: str) -> None:
    grant(api, subject_id)
    reply = api.call("POST", f"/v1/subjects/{subject_id}/enrolments", {"purpose": "checkout", "image": "***"})
    assert reply.status == 400 and reply.json["code"] == "invalid_image"
    reply = api.call(
        "POST", f"/v1/subjects/{subject_id}/enrolments", {"purpose": "checkout", "content_type": "image/gif"}
    )
    assert reply.status == 422 and reply.json["code"] == "invalid_request"


def test_consent_withdrawn_before_upload_arrives(
    api: Api, aws: boto3.session.Session, subject_id: str, person: list[Path]
) -> None:
    grant(api, subject_id)
    reply = api.call("POST", f"/v1/subjects/{subject_id}/enrolments", {"purpose": "checkout"})
    form = reply.json["upload"]
    assert api.call("DELETE", f"/v1/subjects/{subject_id}/consents/checkout").status == 200
    requests.post(form["url"], data=form["fields"], files={"file": ("s", person[0].read_bytes())}, timeout=30)
    api.cloud.deliver_events()
    status = api.call("GET", f"/v1/subjects/{subject_id}/enrolments/{reply.json['enrolment_id']}")
    # Either the job failed with consent_required, or the withdrawal's erasure already removed it.
    assert (status.status == 200 and status.json["reason"] == "consent_required") or status.status == 404
    assert uploads_bucket_keys(aws, api) == []
    assert not [
        i for i in all_items(aws, api.cloud)["TemplatesTable"] if i["enrolment_id"]["S"] == reply.json["enrolment_id"]
    ]


def test_idempotency_key_never_double_enrols(
    api: Api, aws: boto3.session.Session, subject_id: str, person: list[Path]
) -> None:
    grant(api, subject_id)
    headers = {"idempotency-key": "enrol-retry-0001"}
    first = api.call("POST", f"/v1/subjects/{subject_id}/enrolments", inline(person[0]), headers=headers)
    second = api.call("POST", f"/v1/subjects/{subject_id}/enrolments", inline(person[0]), headers=headers)
    assert first.status == second.status == 201
    assert first.json["enrolment_id"] == second.json["enrolment_id"]
    ids = [
        i for i in all_items(aws, api.cloud)["TemplatesTable"] if i["enrolment_id"]["S"] == first.json["enrolment_id"]
    ]
    assert len(ids) == 1


def test_low_quality_photo_is_refused_with_reasons(
    api: Api, aws: boto3.session.Session, subject_id: str, faces_dir: Path
) -> None:
    import io

    from PIL import Image, ImageEnhance

    grant(api, subject_id)
    buffer = io.BytesIO()
    photo = sorted((faces_dir / "Angela_Merkel").iterdir())[0]
    ImageEnhance.Brightness(Image.open(photo).convert("RGB")).enhance(0.08).save(buffer, "JPEG", quality=95)
    body = {"purpose": "checkout", "image": base64.b64encode(buffer.getvalue()).decode()}
    reply = api.call("POST", f"/v1/subjects/{subject_id}/enrolments", body)
    assert reply.status == 422 and reply.json["code"] == "low_quality", reply.body
    assert "too_dark" in reply.json["reasons"]
    assert uploads_bucket_keys(aws, api) == []

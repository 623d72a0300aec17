"""1:1 verification with the real engine on real photos, through the local gateway."""

from __future__ import annotations

import base64
from pathlib import Path

import boto3
import jwt
import pytest
import requests

from tests.integration.conftest import Api, all_items
from tests.integration.test_enrolment_api import grant, uploads_bucket_keys

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def people(enrollable_people: list[list[Path]]) -> tuple[list[Path], list[Path]]:
    """Two different people with at least three usable photos each."""
    return enrollable_people[0], enrollable_people[1]


def b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def enrol(api: Api, subject_id: str, photo: Path) -> dict:
    grant(api, subject_id)
    reply = api.call("POST", f"/v1/subjects/{subject_id}/enrolments", {"purpose": "checkout", "image": b64(photo)})
    assert reply.status == 201, reply.body
    return reply.json


def verify(api: Api, subject_id: str, photo: Path, level: str = "high") -> tuple[int, dict]:
    body = {
        "subject_id": subject_id,
        "purpose": "checkout",
        "image": b64(photo),
        "security_level": level,
        "liveness": "advisory",
    }
    reply = api.call("POST", "/v1/verifications", body)
    return reply.status, reply.json


def check_token(api: Api, token: str) -> dict:
    jwks = api.call("GET", "/v1/keys", tenant=None).json
    key = jwt.PyJWK.from_dict(jwks["keys"][0])
    return jwt.decode(token, key.key, algorithms=["ES256"], audience="demo")


def test_same_person_matches_at_every_level_other_person_does_not(
    api: Api, aws: boto3.session.Session, subject_id: str, people: tuple[list[Path], list[Path]]
) -> None:
    a, b = people
    enrol(api, subject_id, a[0])
    for level in ("standard", "high", "very_high"):
        status, result = verify(api, subject_id, a[1], level)
        assert status == 200, result
        assert result["decision"] == "match", result
        assert "score" not in result and "threshold" not in result  # no oracle unless the purpose exposes it
        assert result["liveness"] == "unavailable"  # no liveness model is shipped; never claimed
        claims = check_token(api, result["result_token"])
        assert claims["decision"] == "match" and claims["sub"] == subject_id and claims["method"] == "face"
        assert claims["security_level"] == level
    status, result = verify(api, subject_id, b[0], "standard")
    assert status == 200 and result["decision"] == "no_match", result
    assert check_token(api, result["result_token"])["decision"] == "no_match"
    assert "template" not in result and uploads_bucket_keys(aws, api) == []
    audit = [i["action"]["S"] for i in all_items(aws, api.cloud)["AuditTable"]]
    assert "template.decrypted" in audit and "face.verified" in audit


def test_probe_upload_path_deletes_the_probe(
    api: Api, aws: boto3.session.Session, subject_id: str, people: tuple[list[Path], list[Path]]
) -> None:
    a, _ = people
    enrol(api, subject_id, a[0])
    probe = api.call("POST", "/v1/probes", {"content_type": "image/jpeg", "subject_id": subject_id})
    assert probe.status == 201, probe.body
    form = probe.json["upload"]
    requests.post(form["url"], data=form["fields"], files={"file": ("p", a[2].read_bytes())}, timeout=30)
    body = {"subject_id": subject_id, "purpose": "checkout", "probe_id": probe.json["probe_id"]}
    reply = api.call("POST", "/v1/verifications", body)
    assert reply.status == 200 and reply.json["decision"] == "match", reply.body
    # The signed result proves identity: it must not be cached
    assert reply.headers["cache-control"] == "no-store" and reply.headers["pragma"] == "no-cache"
    assert uploads_bucket_keys(aws, api) == []
    again = api.call("POST", "/v1/verifications", body)
    assert again.status == 404 and again.json["code"] == "probe_not_found"


def test_consent_and_enrolment_are_required(api: Api, subject_id: str, people: tuple[list[Path], list[Path]]) -> None:
    a, _ = people
    status, result = verify(api, subject_id, a[0])
    assert status == 403 and result["code"] == "consent_required"
    grant(api, subject_id)
    status, result = verify(api, subject_id, a[0])
    assert status == 409 and result["code"] == "not_enrolled"


def test_old_model_version_requires_reenrolment(
    api: Api, aws: boto3.session.Session, subject_id: str, people: tuple[list[Path], list[Path]]
) -> None:
    a, _ = people
    enrolled = enrol(api, subject_id, a[0])
    table = api.cloud.stack.ref("TemplatesTable")
    ddb = aws.client("dynamodb")
    for item in ddb.scan(TableName=table)["Items"]:
        if item["template_id"]["S"] == enrolled["template"]["template_id"]:
            ddb.update_item(
                TableName=table,
                Key={"pk": item["pk"], "sk": item["sk"]},
                UpdateExpression="SET model_version = :v",
                ExpressionAttributeValues={":v": {"S": "0.0.0-retired"}},
            )
    status, result = verify(api, subject_id, a[1])
    assert status == 409 and result["code"] == "reenrolment_required"


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("noface_skimage_coffee.png", "no_face"),
        ("multi_3faces_compreface_011.jpg", "multiple_faces"),
        ("malformed_truncated.jpg", "invalid_image"),
    ],
)
def test_bad_probes_get_their_codes(
    api: Api,
    aws: boto3.session.Session,
    subject_id: str,
    people: tuple[list[Path], list[Path]],
    faces_misc_dir: Path,
    name: str,
    code: str,
) -> None:
    enrol(api, subject_id, people[0][0])
    status, result = verify(api, subject_id, faces_misc_dir / name)
    assert status in (400, 422) and result["code"] == code, result
    assert uploads_bucket_keys(aws, api) == []


def test_five_failures_lock_face_and_offer_fallback(
    api: Api, subject_id: str, people: tuple[list[Path], list[Path]]
) -> None:
    a, b = people
    enrol(api, subject_id, a[0])
    for _ in range(5):
        status, result = verify(api, subject_id, b[1], "very_high")
        assert status == 200 and result["decision"] == "no_match"
    status, result = verify(api, subject_id, a[1])
    assert status == 423 and result["code"] == "fallback_required"
    assert set(result["methods"]) >= {"email_otp", "sms_otp"}


def test_a_retried_verification_is_answered_once_and_counted_once(
    api: Api, subject_id: str, people: tuple[list[Path], list[Path]]
) -> None:
    a, b = people
    enrol(api, subject_id, a[0])
    body = {"subject_id": subject_id, "purpose": "checkout", "image": b64(b[1]), "security_level": "very_high"}
    headers = {"idempotency-key": "checkout-attempt-0001"}
    answers = [api.call("POST", "/v1/verifications", body, headers=headers) for _ in range(6)]
    assert {r.json["verification_id"] for r in answers} == {answers[0].json["verification_id"]}
    assert answers[0].json["decision"] == "no_match"
    # Six retries of one failed attempt are one failure, not a lockout.
    status, result = verify(api, subject_id, a[1])
    assert status == 200 and result["decision"] == "match"

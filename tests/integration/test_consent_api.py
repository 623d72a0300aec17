"""The consent function through the local gateway: real handlers, moto in-process, real JWT checks."""

from __future__ import annotations

import base64
import json
from typing import Any

import boto3
import jwt
import pytest

from facegate import wiring
from tests.integration.conftest import Api, all_items, event_bus_outage

pytestmark = pytest.mark.integration


def current_notice(api: Api, purpose: str = "checkout", locale: str = "en", tenant: str = "demo") -> dict:
    reply = api.call("GET", f"/v1/notices/{purpose}?locale={locale}", tenant=tenant)
    assert reply.status == 200, reply.body
    return reply.json


def consent_body(notice: dict, **overrides: object) -> dict:
    body = {
        "purpose": notice["purpose"],
        "notice_version": notice["version"],
        "notice_sha256": notice["sha256"],
        "decision": "granted",
        "channel": "mobile_app",
        "locale": notice["locale"],
        "age_band": "adult",
    }
    body.update(overrides)
    return body


def verify_receipt(api: Api, receipt: str) -> dict:
    jwks = api.call("GET", "/v1/keys", tenant=None).json
    key = jwt.PyJWK.from_dict(jwks["keys"][0])
    return jwt.decode(receipt, key.key, algorithms=["ES256"], options={"verify_aud": False})


# --- notices


def test_notice_in_both_locales_tells_everything_the_rules_require(api: Api) -> None:
    for locale in ("zh-CN", "en"):
        notice = current_notice(api, "exam_proctoring", locale)
        content = notice["content"]
        assert notice["version"] >= 1 and len(notice["sha256"]) == 64
        for field in ("processor", "purpose", "method", "retention", "rights", "withdrawal", "alternatives"):
            assert content[field], field
        assert set(content["alternatives"]) <= {"email_otp", "sms_otp", "totp", "manual_review"}
    assert "人脸" in current_notice(api, "checkout", "zh-CN")["content"]["sensitive_data_statement"]


def test_unknown_purpose_is_404_problem(api: Api) -> None:
    reply = api.call("GET", "/v1/notices/dating_profile?locale=en")
    assert reply.status == 404
    assert reply.headers["content-type"] == "application/problem+json"
    assert reply.json["code"] == "purpose_not_found"


def test_new_notice_version_supersedes_old_one_and_old_stays_readable(api: Api) -> None:
    old = current_notice(api, "exam_proctoring", "en", tenant="other")
    content = dict(old["content"], retention="Kept for 90 days or until you withdraw.", retention_days=90)
    put = api.call("PUT", "/v1/notices/exam_proctoring", {"locale": "en", "content": content}, tenant="other")
    assert put.status == 201, put.body
    assert put.json["version"] == old["version"] + 1 and put.json["sha256"] != old["sha256"]
    assert current_notice(api, "exam_proctoring", "en", tenant="other")["version"] == put.json["version"]
    # Consent against the superseded version is refused with notice_outdated.
    stale = api.call("POST", "/v1/subjects/s-1/consents", consent_body(old), tenant="other")
    assert stale.status == 409 and stale.json["code"] == "notice_outdated"
    assert stale.json["current_version"] == put.json["version"]


def test_notice_without_alternatives_is_refused(api: Api) -> None:
    content = dict(current_notice(api)["content"], alternatives=[])
    reply = api.call("PUT", "/v1/notices/checkout", {"locale": "en", "content": content})
    assert reply.status == 422 and reply.json["code"] == "invalid_request"


def test_publishing_a_notice_needs_admin_scope(api: Api) -> None:
    token = api.cloud.token("demo", scopes=("consent",))
    content = current_notice(api)["content"]
    reply = api.call("PUT", "/v1/notices/checkout", {"locale": "en", "content": content}, token=token)
    assert reply.status == 403


# --- consent lifecycle


def test_grant_read_withdraw_and_history(api: Api, aws: boto3.session.Session, subject_id: str) -> None:
    notice = current_notice(api)
    granted = api.call("POST", f"/v1/subjects/{subject_id}/consents", consent_body(notice))
    assert granted.status == 201, granted.body
    record = granted.json
    assert record["action"] == "granted" and record["subject_id"] == subject_id
    claims = verify_receipt(api, record["receipt"])
    assert claims["record_hash"] == record["record_hash"] and claims["typ"] == "consent-receipt"
    assert claims["sub"] != subject_id  # receipts carry the keyed hash, not the raw id

    state = api.call("GET", f"/v1/subjects/{subject_id}/consents").json
    assert state["consents"] == [
        {
            "purpose": "checkout",
            "status": "granted",
            "active": True,
            "record_id": record["record_id"],
            "notice_version": notice["version"],
            "notice_sha256": notice["sha256"],
            "age_band": "adult",
            "updated_at": record["created_at"],
        }
    ]

    queue = aws.client("sqs").get_queue_url(QueueName="facegate-local-DeletionQueue")["QueueUrl"]
    withdrawn = api.call("DELETE", f"/v1/subjects/{subject_id}/consents/checkout")
    assert withdrawn.status == 200, withdrawn.body
    assert withdrawn.json["action"] == "withdrawn" and withdrawn.json["prev_hash"] == record["record_hash"]
    state = api.call("GET", f"/v1/subjects/{subject_id}/consents").json
    assert state["consents"][0]["status"] == "withdrawn" and state["consents"][0]["active"] is False

    # ConsentWithdrawn reached the deletion queue through the EventBridge rule, without the raw id.
    # Earlier tests may have left other messages on the shared queue (erasure jobs sent directly, with no
    # EventBridge envelope): read it all and keep the EventBridge events.
    details = [m["detail"] for m in drain(aws.client("sqs"), queue) if "detail" in m]
    mine = [d for d in details if d["record_id"] == withdrawn.json["record_id"]]
    assert len(mine) == 1 and mine[0]["purpose"] == "checkout" and mine[0]["tenant_id"] == "demo"
    assert subject_id not in json.dumps(details)

    history = api.call("GET", f"/v1/subjects/{subject_id}/consents/history").json["records"]
    assert [r["action"] for r in history] == ["granted", "withdrawn"]
    assert history[0]["prev_hash"] == "0" * 64 and history[1]["prev_hash"] == history[0]["record_hash"]

    again = api.call("DELETE", f"/v1/subjects/{subject_id}/consents/checkout")
    assert again.status == 200 and again.json["record_id"] == withdrawn.json["record_id"]
    assert len(api.call("GET", f"/v1/subjects/{subject_id}/consents/history").json["records"]) == 2


def test_refusal_is_recorded_not_an_error(api: Api, subject_id: str) -> None:
    reply = api.call(
        "POST", f"/v1/subjects/{subject_id}/consents", consent_body(current_notice(api), decision="refused")
    )
    assert reply.status == 201 and reply.json["action"] == "refused"
    state = api.call("GET", f"/v1/subjects/{subject_id}/consents").json["consents"][0]
    assert state["status"] == "refused" and state["active"] is False


def test_withdrawing_without_consent_is_404(api: Api, subject_id: str) -> None:
    reply = api.call("DELETE", f"/v1/subjects/{subject_id}/consents/checkout")
    assert reply.status == 404 and reply.json["code"] == "consent_not_found"


def test_child_under_14_needs_guardian(api: Api, aws: boto3.session.Session, subject_id: str) -> None:
    notice = current_notice(api, locale="zh-CN")
    before = all_items(aws, api.cloud)
    missing = api.call("POST", f"/v1/subjects/{subject_id}/consents", consent_body(notice, age_band="child_under_14"))
    assert missing.status == 422 and missing.json["code"] == "guardian_required"
    guardian = {"name": "王芳", "relation": "parent", "contact": "+86 138 0000 0000", "decision": "refused"}
    refused_by_guardian = api.call(
        "POST",
        f"/v1/subjects/{subject_id}/consents",
        consent_body(notice, age_band="child_under_14", guardian=guardian),
    )
    assert refused_by_guardian.status == 422 and refused_by_guardian.json["code"] == "guardian_required"
    assert all_items(aws, api.cloud)["ConsentsTable"] == before["ConsentsTable"]

    guardian["decision"] = "granted"
    ok = api.call(
        "POST",
        f"/v1/subjects/{subject_id}/consents",
        consent_body(notice, age_band="child_under_14", guardian=guardian),
    )
    assert ok.status == 201 and ok.json["guardian"]["relation"] == "parent"


def test_wrong_hash_is_notice_outdated(api: Api, subject_id: str) -> None:
    reply = api.call(
        "POST",
        f"/v1/subjects/{subject_id}/consents",
        consent_body(current_notice(api), notice_sha256="a" * 64),
    )
    assert reply.status == 409 and reply.json["code"] == "notice_outdated"


# --- bad input: clear 4xx problem, nothing written


@pytest.mark.parametrize(
    ("raw", "status", "code"),
    [
        (b"{not json", 400, "malformed_json"),
        (json.dumps({"purpose": "checkout"}).encode(), 422, "invalid_request"),
        (b"x" * (64 * 1024 + 1), 413, "payload_too_large"),
    ],
)
def test_bad_bodies(api: Api, aws: boto3.session.Session, subject_id: str, raw: bytes, status: int, code: str) -> None:
    before = all_items(aws, api.cloud)
    reply = api.call("POST", f"/v1/subjects/{subject_id}/consents", raw=raw)
    assert reply.status == status and reply.json["code"] == code
    assert reply.headers["content-type"] == "application/problem+json"
    assert all_items(aws, api.cloud)["ConsentsTable"] == before["ConsentsTable"]


def test_unknown_fields_and_wrong_types_are_rejected(api: Api, subject_id: str) -> None:
    notice = current_notice(api)
    extra = api.call("POST", f"/v1/subjects/{subject_id}/consents", consent_body(notice, face_image="..."))
    assert extra.status == 422 and any(e["type"] == "extra_forbidden" for e in extra.json["errors"])
    wrong = api.call("POST", f"/v1/subjects/{subject_id}/consents", consent_body(notice, notice_version="1"))
    assert wrong.status == 422 and wrong.json["code"] == "invalid_request"
    band = api.call("POST", f"/v1/subjects/{subject_id}/consents", consent_body(notice, age_band="teen"))
    assert band.status == 422


def test_idempotency_key_replays_the_same_record(api: Api, subject_id: str) -> None:
    body = consent_body(current_notice(api))
    headers = {"idempotency-key": "mobile-retry-0001"}
    first = api.call("POST", f"/v1/subjects/{subject_id}/consents", body, headers=headers)
    second = api.call("POST", f"/v1/subjects/{subject_id}/consents", body, headers=headers)
    assert first.status == second.status == 201
    assert first.json["record_id"] == second.json["record_id"]
    assert len(api.call("GET", f"/v1/subjects/{subject_id}/consents/history").json["records"]) == 1
    reused = api.call("POST", f"/v1/subjects/{subject_id}/consents", dict(body, decision="refused"), headers=headers)
    assert reused.status == 422 and reused.json["code"] == "idempotency_key_reused"


# --- tenant isolation and the authorizer


def test_other_tenant_sees_and_changes_nothing(api: Api, subject_id: str) -> None:
    assert api.call("POST", f"/v1/subjects/{subject_id}/consents", consent_body(current_notice(api))).status == 201
    assert api.call("GET", f"/v1/subjects/{subject_id}/consents", tenant="other").json["consents"] == []
    assert api.call("GET", f"/v1/subjects/{subject_id}/consents/history", tenant="other").json["records"] == []
    assert api.call("DELETE", f"/v1/subjects/{subject_id}/consents/checkout", tenant="other").status == 404
    assert api.call("GET", f"/v1/subjects/{subject_id}/consents").json["consents"][0]["status"] == "granted"


def test_missing_forged_and_expired_tokens_get_401(api: Api) -> None:
    assert api.call("GET", "/v1/notices/checkout", tenant=None).status == 401
    token = api.cloud.token("demo")
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["client_id"] = api.cloud.client_ids["other"]
    forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    assert api.call("GET", "/v1/notices/checkout", token=f"{header}.{forged_payload}.{signature}").status == 401
    expired = api.cloud.token("demo", lifetime_seconds=-10)
    assert api.call("GET", "/v1/notices/checkout", token=expired).status == 401
    assert api.call("GET", "/v1/notices/checkout", token="not-a-jwt").status == 401


def test_token_without_route_scope_gets_403(api: Api) -> None:
    token = api.cloud.token("demo", scopes=("verify",))
    assert api.call("GET", "/v1/notices/checkout", token=token).status == 403


def test_health_needs_no_token(api: Api) -> None:
    assert api.call("GET", "/v1/health", tenant=None).json["status"] == "ok"


def test_openapi_document_covers_every_route_of_the_template(api: Api) -> None:
    import subprocess
    import sys
    from pathlib import Path

    from localcloud.gateway import routes_from

    doc = api.call("GET", "/v1/openapi.json", tenant=None).json
    for route in routes_from(api.cloud.stack.template):
        operation = doc["paths"][route.path][route.method.lower()]
        if route.authorizer == "DeviceSession":  # device sessions (issue 15): the device token, no tenant scope
            assert operation["security"] == [{"deviceToken": []}], route
        elif not route.public:
            assert operation["security"] == [{"tenantToken": list(route.scopes)}], route
    assert "RecordConsentRequest" in json.dumps(doc) and "CreateVerificationRequest" in json.dumps(doc)
    # The committed document is what the code generates (rerun `make openapi` after changing routes).
    repo = Path(__file__).resolve().parents[2]
    script = "import json, openapi; print(openapi.render(openapi.generate()), end='')"
    fresh = subprocess.run(
        [sys.executable, "-c", script],
        cwd=repo / "tools",
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{repo}/layers/shared:{repo}/layers/model:{repo}/tools"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert json.loads(fresh) == doc


def test_audit_records_every_consent_change_without_raw_ids(
    api: Api, aws: boto3.session.Session, subject_id: str
) -> None:
    api.call("POST", f"/v1/subjects/{subject_id}/consents", consent_body(current_notice(api)))
    api.call("DELETE", f"/v1/subjects/{subject_id}/consents/checkout")
    audit = all_items(aws, api.cloud)["AuditTable"]
    actions = [i["action"]["S"] for i in audit if "consent." in i["action"]["S"]]
    assert "consent.granted" in actions and "consent.withdrawn" in actions
    everything = json.dumps(all_items(aws, api.cloud), default=str)
    assert subject_id not in everything


def drain(sqs: Any, queue: str) -> list[dict[str, Any]]:
    """Every message now on the queue (each received once: the visibility timeout hides it from the next read)."""
    bodies: list[dict[str, Any]] = []
    while batch := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, VisibilityTimeout=60).get("Messages"):
        bodies.extend(json.loads(m["Body"]) for m in batch)
    return bodies


def test_a_withdrawal_reaches_the_deletion_queue_when_the_event_bus_fails(
    api: Api, aws: boto3.session.Session, subject_id: str
) -> None:
    """ConsentWithdrawn starts an erasure, so it must not be lost: when EventBridge refuses it, the consent function
    puts it on the deletion queue itself, in the envelope the bus's rule delivers."""
    notice = current_notice(api)
    assert api.call("POST", f"/v1/subjects/{subject_id}/consents", consent_body(notice)).status == 201
    queue = aws.client("sqs").get_queue_url(QueueName="facegate-local-DeletionQueue")["QueueUrl"]
    drain(aws.client("sqs"), queue)
    # Given an event bus that fails every PutEvents of the consent function
    bus = wiring.container().consents._publisher._primary._events  # the publisher's own EventBridge client
    with event_bus_outage(bus) as calls:
        # When the consent is withdrawn
        withdrawn = api.call("DELETE", f"/v1/subjects/{subject_id}/consents/checkout")
    # Then the withdrawal succeeds, the bus was tried, and the event is on the deletion queue all the same
    assert withdrawn.status == 200, withdrawn.body
    assert calls["n"] >= 1
    messages = [m for m in drain(aws.client("sqs"), queue) if m.get("detail", {}).get("record_id")]
    (mine,) = [m for m in messages if m["detail"]["record_id"] == withdrawn.json["record_id"]]
    assert (mine["source"], mine["detail-type"]) == ("facegate.consent", "ConsentWithdrawn")
    assert mine["detail"]["purpose"] == "checkout" and subject_id not in json.dumps(mine)

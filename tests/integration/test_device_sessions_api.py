"""Device sessions (issue 15): a tenant's backend mints a short-lived, narrow token for one person's device; the
device routes take the subject and purpose from it; misuse is refused by the gateway's Lambda authorizer (emulated:
the local cloud calls functions/authorizer as API Gateway would) and again by the handlers (defence in depth)."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import jwt
import pytest

from facegate import wiring
from facegate.core.clock import utcnow
from localcloud.gateway import build_event, to_http
from tests.integration.conftest import Api, Reply
from tests.integration.test_consent_api import current_notice
from tests.integration.test_deletion_api import erase, traces
from tests.integration.test_enrolment_api import grant
from tests.integration.test_fallback_api import code_in, emails_to, sender_verified  # noqa: F401 (autouse fixture)

pytestmark = pytest.mark.integration

ALL = ["notice", "consent", "liveness", "verify", "enrol", "proctoring"]


# --- helpers


def mint(
    api: Api, subject_id: str, operations: list[str] | None = None, tenant: str = "demo", **more: Any
) -> dict[str, Any]:
    body = {"subject_id": subject_id, "purpose": "checkout", "operations": operations or ALL, **more}
    reply = api.call("POST", "/v1/device-sessions", body, tenant=tenant)
    assert reply.status == 201, reply.body
    return reply.json


def device(api: Api, method: str, path: str, token: str | None, body: Any = None) -> Reply:
    """A call as the device makes it: its token only, never a tenant credential."""
    return api.call(method, path, body, tenant=None, token=token or "")


def claims_of(api: Api, token: str) -> dict[str, Any]:
    """The tenant's side: verify offline with /v1/keys (PyJWT, not our own reader)."""
    key = jwt.PyJWK.from_dict(api.call("GET", "/v1/keys", tenant=None).json["keys"][0])
    return jwt.decode(token, key.key, algorithms=["ES256"], audience="facegate-device", issuer="facegate")


def consent(notice: dict[str, Any], **more: Any) -> dict[str, Any]:
    body = {
        "notice_version": notice["version"],
        "notice_sha256": notice["sha256"],
        "decision": "granted",
        "channel": "web",
        "locale": notice["locale"],
        "age_band": "adult",
    }
    return {**body, **more}


def audit_actions(aws: boto3.session.Session, api: Api, pk: str) -> list[dict[str, Any]]:
    table = api.cloud.stack.ref("AuditTable")
    items = aws.client("dynamodb").query(
        TableName=table, KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": {"S": pk}}
    )["Items"]
    return [{k: next(iter(v.values())) for k, v in item.items()} for item in items]


def direct(api: Api, function: str, route_key: str, context: dict[str, Any], body: Any = None) -> Reply:
    """A handler invoked with the authorizer context of our choosing, as if the gateway had let it through: what
    the handler itself refuses (defence in depth)."""
    route = next(r for r in api.cloud.gateway.routes if r.route_key == route_key)
    raw = json.dumps(body).encode() if body is not None else b""
    event = build_event(route, {}, route.method, route.path, "", {"content-type": "application/json"}, raw, None)
    event["requestContext"]["authorizer"] = {"lambda": context}
    answer = to_http(api.cloud.gateway.invoke(function, event))
    return Reply(answer.status, answer.headers, answer.body)


def context_of(minted: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {
        "device_session_id": minted["device_session_id"],
        "tenant": "demo",
        "subject_id": minted["subject_id"],
        "purpose": minted["purpose"],
        "operations": " ".join(minted["operations"]),
        "expires_at": claims_of_unverified(minted["token"])["exp"],
        **more,
    }


def claims_of_unverified(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


def tampered(token: str, **changes: Any) -> str:
    """The token with changed claims and its original signature."""
    head, _, signature = token.split(".")
    claims = {**claims_of_unverified(token), **changes}
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{head}.{body}.{signature}"


@pytest.fixture
def clock() -> Iterator[Any]:
    """The running handlers' clock (the authorizer's too, in-process), moved by the test."""
    container = wiring.container()
    saved = container.clock
    offset = {"delta": timedelta()}
    container.clock = lambda: utcnow() + offset["delta"]
    yield offset
    container.clock = saved


# --- minting


def test_mint_answers_a_narrow_signed_token_that_carries_no_tenant_credential(
    api: Api, aws: boto3.session.Session, subject_id: str
) -> None:
    # When the shop's backend mints a device session for one person, purpose and two operations
    reply = api.call(
        "POST",
        "/v1/device-sessions",
        {"subject_id": subject_id, "purpose": "checkout", "operations": ["notice", "consent"], "ttl_seconds": 120},
    )

    # Then it gets a token bound to them, for 120 s, never cached
    assert reply.status == 201, reply.body
    assert reply.headers["cache-control"] == "no-store"
    minted = reply.json
    assert minted["subject_id"] == subject_id and minted["purpose"] == "checkout"
    assert minted["operations"] == ["notice", "consent"]
    claims = claims_of(api, minted["token"])
    assert claims["typ"] == "device-session" and claims["tenant"] == "demo" and claims["sub"] == subject_id
    assert claims["ops"] == ["notice", "consent"] and claims["jti"] == minted["device_session_id"]
    assert claims["exp"] - claims["iat"] == 120
    # And it carries no tenant credential: no client id, no scope
    assert not {"client_id", "scope", "scp", "token_use"} & claims.keys()
    assert api.cloud.client_ids["demo"] not in json.dumps(claims)
    # And the mint is audited under the subject (hashed), without the raw subject id
    ref = wiring.container().hasher.ref("demo", subject_id)
    events = audit_actions(aws, api, f"T#demo#S#{ref}")
    assert any(e["action"] == "device_session.minted" and minted["device_session_id"] in e["details"] for e in events)
    assert subject_id not in json.dumps(events)


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"ttl_seconds": 601}, 422, "invalid_request"),
        ({"ttl_seconds": 59}, 422, "invalid_request"),
        ({"operations": []}, 422, "invalid_request"),
        ({"operations": ["delete"]}, 422, "invalid_request"),
        ({"operations": ["identify"]}, 422, "invalid_request"),
        ({"purpose": "no_such_purpose"}, 404, "purpose_not_found"),
    ],
)
def test_mint_refuses_what_the_contract_does_not_allow(
    api: Api, subject_id: str, change: dict[str, Any], status: int, code: str
) -> None:
    body = {"subject_id": subject_id, "purpose": "checkout", "operations": ["verify"], **change}
    reply = api.call("POST", "/v1/device-sessions", body)
    assert reply.status == status and reply.json["code"] == code, reply.body


def test_minting_needs_the_verify_scope(api: Api, subject_id: str) -> None:
    token = api.cloud.token("demo", scopes=("consent",))
    body = {"subject_id": subject_id, "purpose": "checkout", "operations": ["verify"]}
    assert api.call("POST", "/v1/device-sessions", body, token=token).status == 403


# --- the device's routes


def test_device_reads_its_session_and_notice_and_records_consent_for_its_own_subject(api: Api, subject_id: str) -> None:
    minted = mint(api, subject_id, ["notice", "consent"])
    token = minted["token"]

    session = device(api, "GET", "/v1/device/session", token)
    assert session.status == 200, session.body
    assert session.json["subject_id"] == subject_id and session.json["purpose"] == "checkout"
    assert set(session.json["operations"]) == {"notice", "consent"}
    assert "email_otp" in session.json["alternatives"]

    notice = device(api, "GET", "/v1/device/notice?locale=en", token)
    assert notice.status == 200 and notice.json == current_notice(api, "checkout", "en")

    recorded = device(api, "POST", "/v1/device/consents", token, consent(notice.json))
    assert recorded.status == 201, recorded.body
    assert recorded.json["subject_id"] == subject_id and recorded.json["action"] == "granted"
    # The tenant sees the consent recorded for that subject, with the device's channel
    states = api.call("GET", f"/v1/subjects/{subject_id}/consents").json["consents"]
    assert [(s["purpose"], s["status"]) for s in states] == [("checkout", "granted")]


def test_device_cannot_name_another_subject_or_purpose_in_the_body(api: Api, subject_id: str) -> None:
    # Given a device session for one subject
    token = mint(api, subject_id, ["consent", "verify", "liveness"])["token"]
    other = f"user-{uuid.uuid4().hex[:12]}"
    notice = current_notice(api)

    # When it names another subject or purpose in a body, the request is refused (the schema has no such field)
    for path, body in [
        ("/v1/device/consents", consent(notice, subject_id=other)),
        ("/v1/device/consents", consent(notice, purpose="exam_proctoring")),
        ("/v1/device/verifications", {"subject_id": other, "image": "AAAA"}),
        ("/v1/device/liveness/sessions", {"subject_id": other, "purpose": "checkout"}),
    ]:
        reply = device(api, "POST", path, token, body)
        assert reply.status == 422 and reply.json["code"] == "invalid_request", (path, reply.body)

    # And nothing was recorded for the other subject
    assert api.call("GET", f"/v1/subjects/{other}/consents").json["consents"] == []


def test_device_liveness_session_is_for_the_tokens_subject_and_purpose(api: Api, subject_id: str) -> None:
    token = mint(api, subject_id, ["liveness"])["token"]
    reply = device(api, "POST", "/v1/device/liveness/sessions", token, {})
    assert reply.status == 201, reply.body
    assert reply.json["subject_id"] == subject_id and reply.json["purpose"] == "checkout"
    assert len(reply.json["challenge"]["actions"]) == 2


def test_device_enrols_and_verifies_with_the_same_signed_result_as_the_tenant_route(
    api: Api, subject_id: str, enrollable_people: list[list[Path]]
) -> None:
    photos = enrollable_people[2]
    token = mint(api, subject_id, ["notice", "consent", "enrol", "verify"])["token"]
    notice = device(api, "GET", "/v1/device/notice?locale=en", token).json
    assert device(api, "POST", "/v1/device/consents", token, consent(notice)).status == 201

    enrolled = device(
        api, "POST", "/v1/device/enrolments", token, {"image": base64.b64encode(photos[0].read_bytes()).decode()}
    )
    assert enrolled.status == 201, enrolled.body
    assert enrolled.json["subject_id"] == subject_id and enrolled.json["status"] == "completed"

    probe = base64.b64encode(photos[1].read_bytes()).decode()
    verified = device(api, "POST", "/v1/device/verifications", token, {"image": probe})
    assert verified.status == 200, verified.body
    assert verified.headers["cache-control"] == "no-store"
    assert verified.json["decision"] == "match" and verified.json["subject_id"] == subject_id
    assert "score" not in verified.json and "threshold" not in verified.json
    key = jwt.PyJWK.from_dict(api.call("GET", "/v1/keys", tenant=None).json["keys"][0])
    result = jwt.decode(verified.json["result_token"], key.key, algorithms=["ES256"], audience="demo")
    assert result["sub"] == subject_id and result["decision"] == "match" and result["method"] == "face"


def test_device_email_otp_for_its_own_subject_only(api: Api, subject_id: str) -> None:
    # Given the shop's backend started a verification session (it knows the e-mail on file) for its customer
    email = f"{subject_id}@example.com"
    body = {"subject_id": subject_id, "purpose": "checkout", "email": email, "locale": "en"}
    session = api.call("POST", "/v1/verification-sessions", body).json
    other = f"user-{uuid.uuid4().hex[:12]}"
    body = {"subject_id": other, "purpose": "checkout", "email": f"{other}@example.com"}
    other_session = api.call("POST", "/v1/verification-sessions", body).json
    token = mint(api, subject_id, ["verify"])["token"]

    # When the device asks for another subject's session, or its subject's session for another purpose, it is not found
    body = {"subject_id": subject_id, "purpose": "exam_proctoring", "email": email}
    exam_session = api.call("POST", "/v1/verification-sessions", body).json
    body = {"session_id": exam_session["session_id"], "method": "email_otp"}
    refused = device(api, "POST", "/v1/device/fallback/challenges", token, body)
    assert refused.status == 404 and refused.json["code"] == "session_not_found"
    refused = device(
        api,
        "POST",
        "/v1/device/fallback/challenges",
        token,
        {"session_id": other_session["session_id"], "method": "email_otp"},
    )
    assert refused.status == 404 and refused.json["code"] == "session_not_found"

    # And with its own, the code is sent and verifies with the signed result
    started = device(
        api,
        "POST",
        "/v1/device/fallback/challenges",
        token,
        {"session_id": session["session_id"], "method": "email_otp"},
    )
    assert started.status == 201, started.body
    code = code_in(emails_to(email)[-1][1])
    answer = device(
        api, "POST", f"/v1/device/fallback/challenges/{started.json['challenge_id']}/verify", token, {"code": code}
    )
    assert answer.status == 200, answer.body
    assert answer.json["decision"] == "match" and answer.json["method"] == "email_otp"

    # And a challenge of another subject cannot be answered through this device
    other_challenge = api.call(
        "POST", "/v1/fallback/challenges", {"session_id": other_session["session_id"], "method": "email_otp"}
    ).json
    path = f"/v1/device/fallback/challenges/{other_challenge['challenge_id']}/verify"
    assert device(api, "POST", path, token, {"code": "000000"}).json["code"] == "challenge_not_found"


# --- misuse: refused by the authorizer at the gateway


def test_expired_token_is_refused(api: Api, subject_id: str, clock: dict[str, timedelta]) -> None:
    token = mint(api, subject_id, ["notice"], ttl_seconds=60)["token"]
    assert device(api, "GET", "/v1/device/notice", token).status == 200
    clock["delta"] = timedelta(seconds=61)
    reply = device(api, "GET", "/v1/device/notice", token)
    assert reply.status == 403 and reply.json == {"message": "Forbidden"}


def test_another_operation_is_refused(api: Api, subject_id: str) -> None:
    token = mint(api, subject_id, ["notice"])["token"]
    for path, body in [
        ("/v1/device/consents", consent(current_notice(api))),
        ("/v1/device/verifications", {"image": "AAAA"}),
        ("/v1/device/enrolments", {"image": "AAAA"}),
        ("/v1/device/liveness/sessions", {}),
        ("/v1/device/fallback/challenges", {"session_id": "0" * 72, "method": "email_otp"}),
    ]:
        assert device(api, "POST", path, token, body).status == 403, path
    assert api.call("GET", f"/v1/subjects/{subject_id}/consents").json["consents"] == []


def test_revoked_token_is_refused_at_once_and_revoking_is_idempotent_and_audited(
    api: Api, aws: boto3.session.Session, subject_id: str
) -> None:
    minted = mint(api, subject_id, ["notice"])
    token, session_id = minted["token"], minted["device_session_id"]
    assert device(api, "GET", "/v1/device/session", token).status == 200

    # Another tenant cannot revoke it (its revocation is its own tenant's)
    assert api.call("DELETE", f"/v1/device-sessions/{session_id}", tenant="other").status == 204
    assert device(api, "GET", "/v1/device/session", token).status == 200

    assert api.call("DELETE", f"/v1/device-sessions/{session_id}").status == 204
    assert device(api, "GET", "/v1/device/session", token).status == 403
    assert device(api, "GET", "/v1/device/notice", token).status == 403
    assert api.call("DELETE", f"/v1/device-sessions/{session_id}").status == 204
    revoked = [e for e in audit_actions(aws, api, "T#demo") if e["action"] == "device_session.revoked"]
    assert any(session_id in e["details"] for e in revoked)


@pytest.mark.parametrize(
    "forge",
    [
        lambda token, api: tampered(token, sub="someone-else"),
        lambda token, api: tampered(token, tenant="other"),
        lambda token, api: tampered(token, ops=["notice", "consent", "verify", "enrol"]),
        lambda token, api: tampered(token, exp=claims_of_unverified(token)["exp"] + 3600),
        lambda token, api: token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB"),
        lambda token, api: "garbage",
        lambda token, api: "a.b.c",
        lambda token, api: api.cloud.token("demo"),  # a tenant's own access token (RS256, Cognito)
        lambda token, api: jwt.encode(claims_of_unverified(token), "s" * 32, algorithm="HS256"),
    ],
    ids=["sub", "tenant", "ops", "exp", "signature", "garbage", "dots", "tenant-jwt", "hs256"],
)
def test_forged_or_foreign_tokens_are_refused(api: Api, subject_id: str, forge: Any) -> None:
    token = mint(api, subject_id, ["notice"])["token"]
    reply = device(api, "GET", "/v1/device/session", forge(token, api))
    assert reply.status == 403 and reply.json == {"message": "Forbidden"}


def test_missing_token_is_401_without_calling_the_authorizer(api: Api) -> None:
    reply = api.call("GET", "/v1/device/session", tenant=None)
    assert reply.status == 401 and reply.json == {"message": "Unauthorized"}


def test_a_device_token_reaches_no_tenant_route(api: Api, subject_id: str) -> None:
    """No other subject, no admin, no identification, no deletion, no minting: the tenant routes' JWT authorizer
    refuses the device token (401), whatever its operations."""
    token = mint(api, subject_id, ALL)["token"]
    other = f"user-{uuid.uuid4().hex[:12]}"
    for method, path, body in [
        ("GET", f"/v1/subjects/{other}/consents", None),
        ("GET", f"/v1/subjects/{subject_id}/consents", None),
        ("POST", "/v1/verifications", {"subject_id": other, "purpose": "checkout", "image": "AAAA"}),
        ("POST", "/v1/identifications", {"purpose": "checkout", "image": "AAAA"}),
        ("DELETE", f"/v1/subjects/{subject_id}", None),
        ("PUT", "/v1/purposes/checkout", {"identification_enabled": True}),
        ("GET", "/v1/compliance/report", None),
        ("POST", "/v1/device-sessions", {"subject_id": other, "purpose": "checkout", "operations": ["verify"]}),
        ("DELETE", f"/v1/device-sessions/{uuid.uuid4().hex}", None),
    ]:
        reply = device(api, method, path, token, body)
        assert reply.status == 401 and reply.json == {"message": "Unauthorized"}, (method, path)


# --- misuse: refused by the handlers too (defence in depth, should the gateway ever let it through)


def test_handlers_refuse_an_operation_the_context_lacks(api: Api, subject_id: str) -> None:
    minted = mint(api, subject_id, ["notice"])
    reply = direct(api, "MatchingFunction", "POST /v1/device/verifications", context_of(minted), {"image": "AAAA"})
    assert reply.status == 403 and reply.json["code"] == "operation_not_allowed"


def test_handlers_refuse_an_expired_context(api: Api, subject_id: str) -> None:
    minted = mint(api, subject_id, ["notice"])
    expired = context_of(minted, expires_at=int(utcnow().timestamp()) - 1)
    reply = direct(api, "ConsentFunction", "GET /v1/device/notice", expired)
    assert reply.status == 401 and reply.json["code"] == "device_session_expired"


def test_handlers_refuse_a_missing_or_malformed_context(api: Api) -> None:
    reply = direct(api, "ConsentFunction", "GET /v1/device/session", {"tenant": "demo"})
    assert reply.status == 401 and reply.json["code"] == "invalid_token"


def test_tenant_handlers_refuse_a_device_context(api: Api, subject_id: str) -> None:
    minted = mint(api, subject_id, ALL)
    body = {"purpose": "checkout", "image": "AAAA"}
    reply = direct(api, "MatchingFunction", "POST /v1/identifications", context_of(minted), body)
    assert reply.status == 403 and reply.json["code"] == "forbidden"


# --- erasure and withdrawal end device sessions


def test_erasure_ends_the_device_session_and_leaves_nothing(
    api: Api, aws: boto3.session.Session, subject_id: str
) -> None:
    token = mint(api, subject_id, ["notice", "consent"])["token"]
    notice = device(api, "GET", "/v1/device/notice?locale=en", token).json
    assert device(api, "POST", "/v1/device/consents", token, consent(notice)).status == 201

    job = erase(api, subject_id)
    assert job["status"] == "completed" and job["removed"]["sessions"] >= 1
    assert device(api, "GET", "/v1/device/session", token).status == 403
    ref = wiring.container().hasher.ref("demo", subject_id)
    left = traces(aws, api, [subject_id.encode(), ref.encode()])
    assert all(t[0] == "AuditTable" or t == ("ConsentsTable", "TOMBSTONE") for t in left), left


def test_a_refusal_that_ends_a_grant_leaves_the_device_session_for_the_non_face_alternative(
    api: Api, subject_id: str
) -> None:
    """A refusal never blocks the flow: the refusal ends the grant and its job erases the purpose's face data, but
    the device session goes on, and the person verifies by e-mail code on the same device."""
    grant(api, subject_id)
    email = f"{subject_id}@example.com"
    body = {"subject_id": subject_id, "purpose": "checkout", "email": email, "locale": "en"}
    session = api.call("POST", "/v1/verification-sessions", body).json
    token = mint(api, subject_id, ["notice", "consent", "verify"])["token"]
    notice = device(api, "GET", "/v1/device/notice?locale=en", token).json
    refused = device(api, "POST", "/v1/device/consents", token, consent(notice, decision="refused"))
    assert refused.status == 201 and refused.json["action"] == "refused"
    api.cloud.deliver_events()  # the withdrawal's erasure job

    assert device(api, "GET", "/v1/device/session", token).status == 200
    started = device(
        api,
        "POST",
        "/v1/device/fallback/challenges",
        token,
        {"session_id": session["session_id"], "method": "email_otp"},
    )
    assert started.status == 201, started.body
    code = code_in(emails_to(email)[-1][1])
    path = f"/v1/device/fallback/challenges/{started.json['challenge_id']}/verify"
    answer = device(api, "POST", path, token, {"code": code})
    assert answer.status == 200 and answer.json["decision"] == "match", answer.body


def test_a_token_of_another_tenant_acts_in_that_tenant_only(api: Api, subject_id: str) -> None:
    """Tenant `other` minting for the same subject id reaches its own subject, never `demo`'s."""
    token = mint(api, subject_id, ["notice", "consent"], tenant="other")["token"]
    assert claims_of(api, token)["tenant"] == "other"
    notice = device(api, "GET", "/v1/device/notice?locale=en", token).json
    assert notice == current_notice(api, "checkout", "en", tenant="other")
    assert device(api, "POST", "/v1/device/consents", token, consent(notice)).status == 201
    assert api.call("GET", f"/v1/subjects/{subject_id}/consents").json["consents"] == []
    granted = api.call("GET", f"/v1/subjects/{subject_id}/consents", tenant="other").json["consents"]
    assert [(s["purpose"], s["status"]) for s in granted] == [("checkout", "granted")]
    # And demo cannot revoke it: revocations are per tenant
    session_id = claims_of(api, token)["jti"]
    assert api.call("DELETE", f"/v1/device-sessions/{session_id}").status == 204
    assert device(api, "GET", "/v1/device/session", token).status == 200

"""Non-face verification through the local gateway: real handlers, moto in-process (SES, SNS, SQS, KMS,
DynamoDB), real JWT checks. Every path ends in a signed result that checks against /v1/keys."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import boto3
import jwt
import pyotp
import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.moto_api._internal.responses import MotoAPIResponse
from moto.ses.models import ses_backends
from moto.sns.models import sns_backends

from facegate.core.clock import iso, utcnow
from facegate.matching.dynamo import AttemptRepository, TemplateRepository
from facegate.matching.entities import LOCKOUT_FAILURES, LOCKOUT_WINDOW, StoredTemplate
from facegate.wiring import container, fallback
from localcloud.cloud import REGION, LocalCloud
from localcloud.outbox import collect, verify_senders
from tests.integration.conftest import Api, all_items
from tests.integration.test_consent_api import consent_body, current_notice

pytestmark = pytest.mark.integration

PHONE = "+8613800138000"


@pytest.fixture
def email(subject_id: str) -> str:
    """An address per test: codes to one address are rate-limited across subjects."""
    return f"{subject_id}@example.com"


@pytest.fixture(scope="module", autouse=True)
def sender_verified(cloud: LocalCloud) -> None:
    """What the local cloud does at start-up: SES sends only from a verified identity."""
    verify_senders(boto3.session.Session(region_name=REGION), cloud.stack)
    cloud.gateway.handler_module("FallbackFunction")


class Clock:
    """The running handler's clock: real time plus an offset the test moves, or frozen."""

    def __init__(self) -> None:
        self.offset = timedelta()
        self.frozen: datetime | None = None

    def __call__(self) -> datetime:
        return self.frozen if self.frozen is not None else utcnow() + self.offset

    def advance(self, **delta: float) -> None:
        if self.frozen is not None:
            self.frozen += timedelta(**delta)
        else:
            self.offset += timedelta(**delta)


@pytest.fixture
def clock() -> Iterator[Clock]:
    services = fallback()
    saved = services.clock
    services.clock = fake = Clock()
    yield fake
    services.clock = saved


# --- helpers


def start_session(api: Api, subject_id: str, **known: object) -> dict:
    body = {"subject_id": subject_id, "purpose": "checkout", **known}
    reply = api.call("POST", "/v1/verification-sessions", body)
    assert reply.status == 201, reply.body
    return reply.json


def start_challenge(api: Api, session_id: str, method: str, **more: object) -> dict:
    reply = api.call("POST", "/v1/fallback/challenges", {"session_id": session_id, "method": method, **more})
    assert reply.status == 201, reply.body
    return reply.json


def verify(api: Api, challenge_id: str, code: str | None = None):
    body = {"code": code} if code is not None else {}
    return api.call("POST", f"/v1/fallback/challenges/{challenge_id}/verify", body)


def check_result(api: Api, token: str) -> dict:
    """The tenant's side: the result verifies offline with /v1/keys, exactly like a face result."""
    jwks = api.call("GET", "/v1/keys", tenant=None).json
    key = jwt.PyJWK.from_dict(jwks["keys"][0])
    return jwt.decode(token, key.key, algorithms=["ES256"], audience="demo")


def emails_to(address: str) -> list[tuple[str, str]]:
    backend = ses_backends[DEFAULT_ACCOUNT_ID][REGION]
    return [(m.subject, m.body) for m in backend.sent_messages if address in m.destinations.get("ToAddresses", [])]


def texts_to(phone: str) -> list[str]:
    return [text for number, text in sns_backends[DEFAULT_ACCOUNT_ID][REGION].sms_messages.values() if number == phone]


def code_in(text: str) -> str:
    found = re.search(r"\b(\d{6})\b", text)
    assert found, text
    return found.group(1)


def refuse(api: Api, subject_id: str) -> None:
    reply = api.call(
        "POST", f"/v1/subjects/{subject_id}/consents", consent_body(current_notice(api), decision="refused")
    )
    assert reply.status == 201, reply.body


def grant_and_enrol(api: Api, subject_id: str) -> str:
    """Consent plus a stored template (its bytes are never read here: only its existence matters)."""
    reply = api.call("POST", f"/v1/subjects/{subject_id}/consents", consent_body(current_notice(api)))
    assert reply.status == 201, reply.body
    settings = container().settings
    ref = container().hasher.ref("demo", subject_id)
    TemplateRepository(settings.templates_table, settings.region).put(
        StoredTemplate(
            tenant_id="demo",
            subject_ref=ref,
            purpose="checkout",
            template_id="t" * 32,
            enrolment_id="e" * 32,
            model_id="test-model",
            model_version="1",
            ciphertext=b"\x00",
            encrypted_key=b"\x00",
            nonce=b"\x00" * 12,
            created_at=iso(utcnow()),
            expires_at=int((utcnow() + timedelta(days=1)).timestamp()),
        )
    )
    return ref


# --- the walk-throughs


def test_refused_consent_gets_no_face_and_email_otp_verifies(
    api: Api, aws: boto3.session.Session, subject_id: str, email: str, capfd: pytest.CaptureFixture[str]
) -> None:
    # Given a person who refused consent for face verification
    refuse(api, subject_id)

    # When the shop asks for a session, face is not offered, the non-face methods are
    session = start_session(api, subject_id, email=email, phone=PHONE, locale="en")
    assert session["methods"] == ["email_otp", "sms_otp", "manual_review"]
    assert session["status"] == "open"
    expires = datetime.fromisoformat(session["expires_at"].replace("Z", "+00:00"))
    assert timedelta(minutes=9) < expires - datetime.now(UTC) <= timedelta(minutes=10)

    # And the e-mail OTP is sent, in English, and its code read from the outbox
    before = len(emails_to(email))
    challenge = start_challenge(api, session["session_id"], "email_otp")
    assert challenge["status"] == "pending" and challenge["attempts_left"] == 5
    assert challenge["sent_to"] == "u***@example.com"
    subject, body = emails_to(email)[before]
    assert subject == "Your verification code" and "expires in 5 minutes" in body
    code = code_in(body)
    outbox = collect(json.loads(MotoAPIResponse().model_data(None, "", {})[2]))
    assert outbox[0].kind == "email" and outbox[0].to == email and code in outbox[0].text

    # Then the code verifies and the result has the face result's shape, signed by the same key
    reply = verify(api, challenge["challenge_id"], code)
    assert reply.status == 200, reply.body
    result = reply.json
    assert result["decision"] == "match" and result["method"] == "email_otp"
    assert result["subject_id"] == subject_id and result["purpose"] == "checkout"
    claims = check_result(api, result["result_token"])
    assert claims["typ"] == "verification-result" and claims["method"] == "email_otp"
    assert claims["sub"] == subject_id and claims["decision"] == "match"
    assert claims["jti"] == result["verification_id"]

    # And the session is single-use
    assert api.call("GET", f"/v1/verification-sessions/{session['session_id']}").json["status"] == "verified"
    again = verify(api, challenge["challenge_id"], code)
    assert again.status == 409 and again.json["code"] == "session_used"
    more = api.call("POST", "/v1/fallback/challenges", {"session_id": session["session_id"], "method": "sms_otp"})
    assert more.status == 409 and more.json["code"] == "session_used"

    # And nothing stored holds the raw subject id, the address, the phone number or the code
    stored = json.dumps(all_items(aws, api.cloud), default=str)
    for secret in (subject_id, email, PHONE, code):
        assert secret not in stored

    # And the metrics show that a refusal was served and which method was used
    out = capfd.readouterr().out
    assert "ConsentRefusedServed" in out and "FallbackUsed" in out and '"method":"email_otp"' in out


def test_face_locked_out_hands_over_to_sms_otp(api: Api, subject_id: str) -> None:
    # Given an enrolled subject with consent: face is offered, with a non-face method beside it
    ref = grant_and_enrol(api, subject_id)
    assert start_session(api, subject_id)["methods"] == ["face", "manual_review"]

    # When five face attempts have failed
    settings = container().settings
    attempts = AttemptRepository(settings.sessions_table, settings.region)
    for _ in range(LOCKOUT_FAILURES):
        assert attempts.reserve("demo", ref, "checkout", utcnow(), LOCKOUT_FAILURES, LOCKOUT_WINDOW)

    # Then face verification answers 423 fallback_required (before any face engine runs)
    tiny = base64.b64encode(b"\xff\xd8\xff\xe0not-really-a-jpeg").decode()
    locked = api.call("POST", "/v1/verifications", {"subject_id": subject_id, "purpose": "checkout", "image": tiny})
    assert locked.status == 423 and locked.json["code"] == "fallback_required", locked.body

    # And a new session offers no face, and the SMS code (in Chinese) verifies
    session = start_session(api, subject_id, phone=PHONE)
    assert session["methods"] == ["sms_otp", "manual_review"]
    before = len(texts_to(PHONE))
    challenge = start_challenge(api, session["session_id"], "sms_otp")
    assert challenge["sent_to"] == "+86*******8000"
    text = texts_to(PHONE)[before]
    assert "验证码" in text and "5 分钟" in text
    reply = verify(api, challenge["challenge_id"], code_in(text))
    assert reply.status == 200, reply.body
    assert check_result(api, reply.json["result_token"])["method"] == "sms_otp"


def test_totp_tolerates_one_step_of_drift_and_refuses_a_replay(api: Api, subject_id: str, clock: Clock) -> None:
    # Frozen in the middle of a 30-second step, in the recent past (results must not be issued in the future)
    now = utcnow()
    clock.frozen = now.replace(second=0 if now.second < 30 else 30, microsecond=0) - timedelta(seconds=15)

    # Given a TOTP secret issued through the API
    reply = api.call("POST", f"/v1/subjects/{subject_id}/totp", {"label": "ana"})
    assert reply.status == 201, reply.body
    secret = reply.json["secret"]
    assert reply.json["otpauth_uri"].startswith("otpauth://totp/facegate:ana?secret=")
    totp = pyotp.TOTP(secret)
    at = clock.frozen

    # When the person's clock is 30 s behind, the code still verifies
    session = start_session(api, subject_id)
    assert session["methods"] == ["totp", "manual_review"]
    first = start_challenge(api, session["session_id"], "totp")
    behind = totp.at(at - timedelta(seconds=30))
    ok = verify(api, first["challenge_id"], behind)
    assert ok.status == 200, ok.body
    assert check_result(api, ok.json["result_token"])["method"] == "totp"

    # Then the same code is refused in a new session, two steps off is wrong, 30 s ahead is fine
    second = start_challenge(api, start_session(api, subject_id)["session_id"], "totp")
    replay = verify(api, second["challenge_id"], behind)
    assert replay.status == 409 and replay.json["code"] == "code_reused"
    far = verify(api, second["challenge_id"], totp.at(at - timedelta(seconds=60)))
    assert far.status == 422 and far.json["code"] == "code_invalid" and far.json["attempts_left"] == 3
    ahead = verify(api, second["challenge_id"], totp.at(at + timedelta(seconds=30)))
    assert ahead.status == 200, ahead.body


def test_manual_review_approved(api: Api, aws: boto3.session.Session, subject_id: str) -> None:
    # Given a session for someone the tenant knows nothing about: manual review is still there
    session = start_session(api, subject_id)
    assert session["methods"] == ["manual_review"]
    review = start_challenge(api, session["session_id"], "manual_review")
    review_id = review["review_id"]
    assert review["challenge_id"] == review_id and review["status"] == "pending"

    # The reviewers' queue got the request, without the raw subject id
    queue = aws.client("sqs").get_queue_url(QueueName="facegate-local-ReviewQueue")["QueueUrl"]
    bodies = [m["Body"] for m in aws.client("sqs").receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]]
    mine = [json.loads(b) for b in bodies if review_id in b]
    assert len(mine) == 1 and mine[0]["purpose"] == "checkout"
    assert subject_id not in json.dumps(mine)

    # While pending, verify answers review_pending; only an admin may decide
    pending = verify(api, review["challenge_id"])
    assert pending.status == 409 and pending.json["code"] == "review_pending"
    not_admin = api.cloud.token("demo", scopes=("verify", "fallback"))
    decide = f"/v1/fallback/reviews/{review_id}/decision"
    assert api.call("POST", decide, {"decision": "approved"}, token=not_admin).status == 403

    approved = api.call("POST", decide, {"decision": "approved", "reason_code": "id_document_checked"})
    assert approved.status == 200 and approved.json["status"] == "approved", approved.body
    assert api.call("GET", f"/v1/fallback/reviews/{review_id}").json["status"] == "approved"
    assert api.call("GET", f"/v1/fallback/challenges/{review_id}").json["status"] == "approved"
    twice = api.call("POST", decide, {"decision": "rejected"})
    assert twice.status == 409 and twice.json["code"] == "review_decided"

    result = verify(api, review["challenge_id"])
    assert result.status == 200, result.body
    claims = check_result(api, result.json["result_token"])
    assert claims["method"] == "manual_review" and claims["decision"] == "match" and claims["sub"] == subject_id


def test_manual_review_rejected_is_an_answer_not_a_dead_end(api: Api, subject_id: str, email: str) -> None:
    session = start_session(api, subject_id, email=email)
    review = start_challenge(api, session["session_id"], "manual_review")
    rejected = api.call("POST", f"/v1/fallback/reviews/{review['review_id']}/decision", {"decision": "rejected"})
    assert rejected.status == 200 and rejected.json["status"] == "rejected"

    result = verify(api, review["challenge_id"])
    assert result.status == 200 and result.json["decision"] == "no_match"
    assert check_result(api, result.json["result_token"])["decision"] == "no_match"

    # The session is still open: the person can go on with another method
    assert api.call("GET", f"/v1/verification-sessions/{session['session_id']}").json["status"] == "open"
    challenge = start_challenge(api, session["session_id"], "email_otp")
    assert challenge["status"] == "pending"


def test_brute_force_locks_the_challenge_after_five_wrong_codes(
    api: Api, subject_id: str, email: str, clock: Clock
) -> None:
    session = start_session(api, subject_id, email=email)
    before = len(emails_to(email))
    challenge = start_challenge(api, session["session_id"], "email_otp")
    code = code_in(emails_to(email)[before][1])
    wrong = "000000" if code != "000000" else "111111"

    lefts = []
    for _ in range(4):
        reply = verify(api, challenge["challenge_id"], wrong)
        assert reply.status == 422 and reply.json["code"] == "code_invalid"
        lefts.append(reply.json["attempts_left"])
    assert lefts == [4, 3, 2, 1]
    fifth = verify(api, challenge["challenge_id"], wrong)
    assert fifth.status == 423 and fifth.json["code"] == "challenge_locked"
    # Even the right code is refused now
    right = verify(api, challenge["challenge_id"], code)
    assert right.status == 423 and right.json["code"] == "challenge_locked"
    assert api.call("GET", f"/v1/fallback/challenges/{challenge['challenge_id']}").json["status"] == "locked"

    # No dead end: after the cooldown a new code can be sent, and it works
    clock.advance(seconds=31)
    before = len(emails_to(email))
    fresh = start_challenge(api, session["session_id"], "email_otp")
    assert verify(api, fresh["challenge_id"], code_in(emails_to(email)[before][1])).status == 200


def test_resend_cooldown_and_expiry(api: Api, subject_id: str, email: str, clock: Clock) -> None:
    session = start_session(api, subject_id, email=email, locale="en")
    before = len(emails_to(email))
    first = start_challenge(api, session["session_id"], "email_otp")
    first_code = code_in(emails_to(email)[before][1])

    # A second code within 30 s is refused
    soon = api.call("POST", "/v1/fallback/challenges", {"session_id": session["session_id"], "method": "email_otp"})
    assert soon.status == 429 and soon.json["code"] == "resend_too_soon" and soon.json["resend_after"]

    # After the cooldown a new code replaces the first
    clock.advance(seconds=31)
    second = start_challenge(api, session["session_id"], "email_otp", locale="zh-CN")
    subject, body = emails_to(email)[before + 1]
    assert subject == "您的验证码" and "5 分钟内有效" in body
    old = verify(api, first["challenge_id"], first_code)
    assert old.status == 410 and old.json["code"] == "challenge_expired"

    # Five minutes later the code has expired
    clock.advance(minutes=5, seconds=1)
    late = verify(api, second["challenge_id"], code_in(body))
    assert late.status == 410 and late.json["code"] == "challenge_expired"

    # Ten minutes after it started the session itself has expired
    clock.advance(minutes=5)
    expired = api.call("POST", "/v1/fallback/challenges", {"session_id": session["session_id"], "method": "email_otp"})
    assert expired.status == 410 and expired.json["code"] == "session_expired"


# --- what nobody can do


def test_no_parameter_makes_face_the_only_method(api: Api, subject_id: str) -> None:
    grant_and_enrol(api, subject_id)
    assert start_session(api, subject_id)["methods"] == ["face", "manual_review"]
    for extra in ({"methods": ["face"]}, {"face_only": True}, {"method": "face"}):
        reply = api.call(
            "POST", "/v1/verification-sessions", {"subject_id": subject_id, "purpose": "checkout", **extra}
        )
        assert reply.status == 422 and reply.json["code"] == "invalid_request"
    # face is no fallback method: it cannot be started here
    session = start_session(api, subject_id)
    reply = api.call("POST", "/v1/fallback/challenges", {"session_id": session["session_id"], "method": "face"})
    assert reply.status == 422
    # and a method the session does not offer is refused
    reply = api.call("POST", "/v1/fallback/challenges", {"session_id": session["session_id"], "method": "email_otp"})
    assert reply.status == 422 and reply.json["code"] == "method_not_offered"
    assert "manual_review" in reply.json["methods"]


def test_sessions_are_per_tenant_and_unknown_ids_reveal_nothing(api: Api, subject_id: str, email: str) -> None:
    session = start_session(api, subject_id, email=email)
    other = api.call(
        "POST", "/v1/fallback/challenges", {"session_id": session["session_id"], "method": "email_otp"}, tenant="other"
    )
    unknown = api.call("POST", "/v1/fallback/challenges", {"session_id": "0" * 72, "method": "email_otp"})
    assert other.status == unknown.status == 404
    assert other.json["code"] == unknown.json["code"] == "session_not_found"
    assert other.json["detail"] == unknown.json["detail"]
    assert api.call("GET", f"/v1/fallback/challenges/{'0' * 72}").json["code"] == "challenge_not_found"


def test_idempotency_key_answers_a_retry_with_the_same_session(api: Api, subject_id: str) -> None:
    body = {"subject_id": subject_id, "purpose": "checkout"}
    headers = {"Idempotency-Key": "retry-0123456789"}
    first = api.call("POST", "/v1/verification-sessions", body, headers=headers)
    second = api.call("POST", "/v1/verification-sessions", body, headers=headers)
    assert first.status == second.status == 201
    assert first.json["session_id"] == second.json["session_id"]


def test_per_subject_rate_limit(api: Api, subject_id: str) -> None:
    statuses = [
        api.call("POST", "/v1/verification-sessions", {"subject_id": subject_id, "purpose": "checkout"})
        for _ in range(22)
    ]
    assert [r.status for r in statuses[:10]] == [201] * 10
    limited = [r for r in statuses if r.status == 429]
    assert limited and all(r.json["code"] == "rate_limited" for r in limited)
    assert all(0 <= int(r.headers["retry-after"]) <= 120 for r in limited)
    # another subject of the same tenant is not affected
    assert (
        api.call("POST", "/v1/verification-sessions", {"subject_id": subject_id + "x", "purpose": "checkout"}).status
        == 201
    )


def test_bad_bodies_are_problems(api: Api, subject_id: str, email: str) -> None:
    for known in ({"email": "not-an-address"}, {"phone": "12345"}, {"locale": "fr"}):
        reply = api.call(
            "POST", "/v1/verification-sessions", {"subject_id": subject_id, "purpose": "checkout", **known}
        )
        assert reply.status == 422 and reply.json["code"] == "invalid_request"
    session = start_session(api, subject_id, email=email)
    challenge = start_challenge(api, session["session_id"], "email_otp")
    reply = verify(api, challenge["challenge_id"], "12ab56")
    assert reply.status == 422 and reply.json["code"] == "invalid_request"


def test_erasing_the_subject_removes_every_fallback_trace(
    api: Api, aws: boto3.session.Session, subject_id: str, email: str
) -> None:
    # Given a subject with a TOTP secret, an open e-mail challenge with a wrong guess (the subject's guess
    # budget), and a pending review
    assert api.call("POST", f"/v1/subjects/{subject_id}/totp", {}).status == 201
    session = start_session(api, subject_id, email=email)
    before = len(emails_to(email))
    challenge = start_challenge(api, session["session_id"], "email_otp")
    wrong = "000000" if code_in(emails_to(email)[before][1]) != "000000" else "111111"
    assert verify(api, challenge["challenge_id"], wrong).json["code"] == "code_invalid"
    start_challenge(api, session["session_id"], "manual_review")
    ref = container().hasher.ref("demo", subject_id)

    # When the subject is erased
    reply = api.call("DELETE", f"/v1/subjects/{subject_id}")
    assert reply.status == 202, reply.body
    api.cloud.deliver_events()
    assert api.call("GET", f"/v1/deletions/{reply.json['deletion_id']}").json["status"] == "completed"

    # Then no fallback table holds anything of theirs, and their session is gone
    tables = all_items(aws, api.cloud)
    for table in ("SessionsTable", "ChallengesTable"):
        assert not [item for item in tables[table] if ref in json.dumps(item, default=str)], table
    gone = api.call("GET", f"/v1/verification-sessions/{session['session_id']}")
    assert gone.status == 404 and gone.json["code"] == "session_not_found"


def test_a_code_that_could_not_be_sent_is_never_usable(
    api: Api, aws: boto3.session.Session, subject_id: str, email: str
) -> None:
    from botocore.exceptions import ClientError

    session = start_session(api, subject_id, email=email)
    ses = fallback().challenges._email._ses  # the adapter's own SES client: fail at the AWS boundary

    def refuse(**_: object) -> None:
        raise ClientError({"Error": {"Code": "MessageRejected", "Message": "injected"}}, "SendEmail")

    ses.meta.events.register("before-call.sesv2.SendEmail", refuse)
    try:
        reply = api.call(
            "POST", "/v1/fallback/challenges", {"session_id": session["session_id"], "method": "email_otp"}
        )
    finally:
        ses.meta.events.unregister("before-call.sesv2.SendEmail", refuse)
    assert reply.status == 502 and reply.json["code"] == "delivery_failed"
    table = api.cloud.stack.ref("ChallengesTable")
    mine = [
        i
        for i in aws.client("dynamodb").scan(TableName=table)["Items"]
        if i.get("session_id", {}).get("S") == session["session_id"] and "code_hash" in i
    ]
    assert mine and all(i["status"]["S"] == "superseded" for i in mine), mine

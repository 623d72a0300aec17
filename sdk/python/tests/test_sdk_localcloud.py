"""The SDK against the local cloud as `make run` starts it (tests/e2e style: its own moto server, worker
processes, real KMS signing): a tenant backend mints a device session, the device uses it, the result token and the
device token verify offline with the keys of /v1/keys, and a revoked session is refused."""

from __future__ import annotations

import base64
import json
import re
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from facegate_sdk import (
    ApiError,
    FacegateClient,
    InvalidTokenError,
    Keys,
    verify_device_token,
    verify_result_token,
)

from localcloud.process import RunningCloud, running

pytestmark = [pytest.mark.e2e]


@pytest.fixture(scope="module")
def cloud() -> Iterator[RunningCloud]:
    with running(instances=1) as local:
        yield local


@pytest.fixture(scope="module")
def backend(cloud: RunningCloud) -> FacegateClient:
    """The shop's backend: its tenant token (client credentials) never leaves it."""
    return FacegateClient(cloud.base, token=cloud.token("demo"))


@pytest.fixture(scope="module")
def keys(cloud: RunningCloud) -> Keys:
    return Keys.fetch(cloud.base)


def outbox_code(cloud: RunningCloud, address: str) -> str:
    """The OTP e-mailed to `address`, read from the emulator as `make outbox` does."""
    url = f"http://127.0.0.1:{cloud.env['MOTO_PORT']}/moto-api/data.json"
    with urllib.request.urlopen(url, timeout=10) as response:  # the local emulator only
        data = json.loads(response.read())
    bodies = [m["body"] for m in data.get("ses", {}).get("Message", []) if address in json.dumps(m.get("destinations"))]
    found = re.search(r"\b(\d{6})\b", bodies[-1])
    assert found, bodies
    return found.group(1)


def tampered(token: str, **changes: Any) -> str:
    head, body, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims.update(changes)
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{head}.{forged}.{signature}"


def test_a_shop_integrates_refusal_then_email_otp_with_a_device_session(
    cloud: RunningCloud, backend: FacegateClient, keys: Keys
) -> None:
    subject = f"sdk-{uuid.uuid4().hex[:10]}"
    email = f"{subject}@example.com"

    # The backend mints a device session and starts a verification session with the e-mail on file
    session = backend.create_device_session(subject, "checkout", ["notice", "consent", "verify"], ttl_seconds=300)
    assert session.subject_id == subject and session.operations == ("notice", "consent", "verify")
    claims = verify_device_token(session.token, keys, tenant="demo")
    assert claims.subject_id == subject and claims.device_session_id == session.device_session_id
    fallback = backend.start_session({"subject_id": subject, "purpose": "checkout", "email": email, "locale": "en"})

    # The device reads the notice, refuses face, and takes the e-mail code instead
    phone = backend.device(session)
    assert phone.device_session()["alternatives"]
    notice = phone.device_notice(locale="en")
    refusal = phone.device_record_consent(
        {
            "notice_version": notice["version"],
            "notice_sha256": notice["sha256"],
            "decision": "refused",
            "locale": "en",
            "age_band": "adult",
        },
        idempotency_key=uuid.uuid4().hex,
    )
    assert refusal["action"] == "refused" and refusal["subject_id"] == subject
    challenge = phone.device_start_challenge({"session_id": fallback["session_id"], "method": "email_otp"})
    result = phone.device_verify_challenge(challenge["challenge_id"], {"code": outbox_code(cloud, email)})
    assert result["decision"] == "match" and result["method"] == "email_otp"

    # The backend verifies the signed result offline, for its tenant, subject and purpose
    verified = verify_result_token(result["result_token"], keys, tenant="demo", subject_id=subject, purpose="checkout")
    assert verified.matched and verified.method == "email_otp"
    with pytest.raises(InvalidTokenError):
        verify_result_token(result["result_token"], keys, tenant="other")
    with pytest.raises(InvalidTokenError):
        verify_result_token(result["result_token"], keys, tenant="demo", subject_id="someone-else")
    with pytest.raises(InvalidTokenError):
        verify_result_token(result["result_token"], keys, tenant="demo", now=verified.claims["exp"])
    with pytest.raises(InvalidTokenError):
        verify_result_token(tampered(result["result_token"], decision="match", sub="x"), keys, tenant="demo")
    with pytest.raises(InvalidTokenError):  # a result token is no device token, and the reverse
        verify_device_token(result["result_token"], keys)
    with pytest.raises(InvalidTokenError):
        verify_result_token(session.token, keys, tenant="demo")

    # Revoked: refused at the gateway from the next request on
    backend.revoke_device_session(session.device_session_id)
    with pytest.raises(ApiError) as refused:
        phone.device_session()
    assert refused.value.status == 403 and refused.value.code is None


def test_device_token_checks_offline(backend: FacegateClient, keys: Keys) -> None:
    session = backend.create_device_session(f"sdk-{uuid.uuid4().hex[:10]}", "checkout", ["notice"], ttl_seconds=60)
    claims = verify_device_token(session.token, keys)
    assert claims.operations == ("notice",) and claims.tenant == "demo"
    with pytest.raises(InvalidTokenError):
        verify_device_token(session.token, keys, tenant="other")
    with pytest.raises(InvalidTokenError):
        verify_device_token(tampered(session.token, ops=["verify"]), keys)
    with pytest.raises(InvalidTokenError):
        verify_device_token(session.token, keys, now=claims.expires_at)
    with pytest.raises(InvalidTokenError):
        verify_device_token("garbage", keys)
    with pytest.raises(InvalidTokenError):
        verify_device_token(session.token, Keys({"keys": []}))


def test_problem_codes_reach_the_caller(backend: FacegateClient) -> None:
    with pytest.raises(ApiError) as refused:
        backend.create_device_session("sdk-x", "checkout", ["verify"], ttl_seconds=601)
    assert refused.value.status == 422 and refused.value.code == "invalid_request"
    with pytest.raises(ApiError) as missing:
        backend.create_device_session("sdk-x", "no_such_purpose", ["verify"])
    assert missing.value.status == 404 and missing.value.code == "purpose_not_found"


@pytest.mark.slow
def test_a_device_enrols_and_verifies_from_live_challenges_and_the_backend_checks_the_result(
    cloud: RunningCloud, backend: FacegateClient, keys: Keys
) -> None:
    """The checkout a person does with a camera, without the browser: the device answers its liveness challenges
    with real frames (a real clip, composed in the challenge's order), the backend checks the signed result."""
    import os
    from pathlib import Path

    from evaluate_liveness import genuine_bursts

    repo = Path(__file__).resolve().parents[3]
    shared = Path(os.environ.get("FACEGATE_SHARED_DIR", repo.parent / "shared"))
    notes = json.loads((repo / "tests" / "fixtures" / "clips.json").read_text())["clips"]
    turns = {name: frames for name, frames, _ in genuine_bursts(shared, notes) if "turns_a" in name}
    person = f"sdk-live-{uuid.uuid4().hex[:8]}"
    session = backend.create_device_session(person, "checkout", ["notice", "consent", "liveness", "enrol", "verify"])
    phone = backend.device(session)
    notice = phone.device_notice(locale="en")
    consent = {"notice_version": notice["version"], "notice_sha256": notice["sha256"], "decision": "granted"}
    phone.device_record_consent({**consent, "locale": "en", "age_band": "adult"})  # type: ignore[typeddict-item]

    def live_burst(shift: int) -> dict[str, Any]:
        for _ in range(200):  # the challenge is random: ask again until it is one the clip performs
            challenge = phone.device_start_liveness_session({})
            actions = tuple(challenge["challenge"]["actions"])
            if actions in {("turn_left", "turn_right"), ("turn_right", "turn_left")}:
                frames = turns[f"turns_a {'L>R' if actions == ('turn_left', 'turn_right') else 'R>L'} +{shift}"]
                return {
                    "session_id": challenge["session_id"],
                    "frames": [base64.b64encode(f).decode() for f in frames],
                    "timestamps_ms": [k * 100.0 for k in range(len(frames))],
                }
        raise AssertionError("no turn challenge in 200 tries")

    enrolled = phone.device_start_enrolment({"liveness": live_burst(0)})  # type: ignore[typeddict-item]
    assert enrolled["status"] == "completed" and enrolled["subject_id"] == person
    answer = phone.device_verify({"liveness": live_burst(4)})  # type: ignore[typeddict-item]
    assert answer["decision"] == "match" and answer["liveness"]["decision"] == "live"  # type: ignore[index]

    result = verify_result_token(answer["result_token"], keys, tenant="demo", subject_id=person, purpose="checkout")
    assert result.matched and result.method == "face"
    assert result.claims["liveness"]["decision"] == "live"

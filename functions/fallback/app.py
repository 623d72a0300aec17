"""Fallback function: verification sessions and non-face verification (e-mail OTP, SMS OTP, TOTP,
manual review), each ending in the same signed result as face verification.

Thin adapter: parse and validate the request, call one service, map the result to a response.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.utilities.typing import LambdaContext

from facegate.api.docs import returns
from facegate.api.handler import NO_STORE, lambda_entry, once
from facegate.api.idempotency import Idempotency
from facegate.api.resolver import caller, create_resolver, device_caller, require_scope
from facegate.core.config import get_settings
from facegate.core.errors import ChallengeNotFoundError, SessionNotFoundError
from facegate.core.tenancy import CallerContext
from facegate.devices.service import require_operation
from facegate.fallback.api import (
    ChallengeResponse,
    DecideReviewRequest,
    FallbackVerificationResponse,
    ReviewResponse,
    SessionResponse,
    SetUpTotpRequest,
    StartChallengeRequest,
    StartSessionRequest,
    TotpResponse,
    VerifyChallengeRequest,
)
from facegate.wiring import container, fallback

SubjectId = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:@\-]+$")]
OpaqueIdPath = Annotated[str, Path(pattern=r"^[0-9a-f]{72}$")]

settings = get_settings()
app = create_resolver(settings.max_json_body_bytes)
idempotency = Idempotency(settings.idempotency_table, settings.client_limits)


def _caller() -> CallerContext:
    return caller(app, container().tenant_for_client)


# Answers that carry a secret (a TOTP seed, a signed result that proves identity) must not be stored by
# browsers or proxies.


def _created(body: dict[str, Any], headers: dict[str, str] | None = None) -> Response[dict[str, Any]]:
    return Response(status_code=201, content_type="application/json", body=body, headers=headers)


def _review(review_id: str, status: str, decided_at: str | None) -> dict[str, Any]:
    answer = {"review_id": review_id, "status": status, "decided_at": decided_at}
    return ReviewResponse.model_validate(answer).model_dump(mode="json")


@app.post("/v1/verification-sessions", responses=returns(SessionResponse, 201))
def start_session(body: StartSessionRequest) -> Response[dict[str, Any]]:
    who = _caller()
    require_scope(who, "verify")
    subject = container().subject(who, body.subject_id)

    def operation(parsed: StartSessionRequest) -> dict[str, Any]:
        view = fallback().sessions.start(
            who, subject, parsed.purpose, parsed.locale, email=parsed.email, phone=parsed.phone
        )
        return SessionResponse.model_validate(asdict(view)).model_dump(mode="json")

    return _created(once(app, idempotency, "start_session", who.tenant_id, subject.ref, body, operation))


@app.get("/v1/verification-sessions/<session_id>", responses=returns(SessionResponse))
def get_session(session_id: OpaqueIdPath) -> dict[str, Any]:
    who = _caller()
    require_scope(who, "verify")
    view = fallback().sessions.get(who, session_id)
    return SessionResponse.model_validate(asdict(view)).model_dump(mode="json")


@app.post("/v1/fallback/challenges", responses=returns(ChallengeResponse, 201))
def start_challenge(body: StartChallengeRequest) -> Response[dict[str, Any]]:
    who = _caller()
    require_scope(who, "fallback")
    return _start_challenge(who, body)


def _start_challenge(who: CallerContext, body: StartChallengeRequest) -> Response[dict[str, Any]]:
    ref = fallback().challenges.subject_ref_of_session(who, body.session_id)

    def operation(parsed: StartChallengeRequest) -> dict[str, Any]:
        view = fallback().challenges.start(who, parsed.session_id, parsed.method, parsed.locale)
        return ChallengeResponse.model_validate(asdict(view)).model_dump(mode="json")

    return _created(once(app, idempotency, "start_challenge", who.tenant_id, ref, body, operation))


@app.get("/v1/fallback/challenges/<challenge_id>", responses=returns(ChallengeResponse))
def get_challenge(challenge_id: OpaqueIdPath) -> dict[str, Any]:
    who = _caller()
    view = fallback().challenges.get(who, challenge_id)
    return ChallengeResponse.model_validate(asdict(view)).model_dump(mode="json")


@app.post("/v1/fallback/challenges/<challenge_id>/verify", responses=returns(FallbackVerificationResponse))
def verify_challenge(challenge_id: OpaqueIdPath, body: VerifyChallengeRequest) -> Response[dict[str, Any]]:
    who = _caller()
    require_scope(who, "fallback")
    return _verify_challenge(who, challenge_id, body)


def _verify_challenge(who: CallerContext, challenge_id: str, body: VerifyChallengeRequest) -> Response[dict[str, Any]]:
    result = fallback().challenges.verify(who, challenge_id, body.code)
    answer = FallbackVerificationResponse.model_validate(asdict(result)).model_dump(mode="json")
    return Response(status_code=200, content_type="application/json", body=answer, headers=NO_STORE)


@app.post("/v1/subjects/<subject_id>/totp", responses=returns(TotpResponse, 201))
def set_up_totp(subject_id: SubjectId, body: SetUpTotpRequest) -> Response[dict[str, Any]]:
    who = _caller()
    require_scope(who, "fallback")
    set_up = fallback().totp.set_up(
        who, container().subject(who, subject_id), body.label, body.proof_session_id, body.proof_result_token
    )
    answer = TotpResponse(subject_id=subject_id, secret=set_up.secret, otpauth_uri=set_up.otpauth_uri)
    return _created(answer.model_dump(mode="json"), headers=NO_STORE)


@app.get("/v1/fallback/reviews/<review_id>", responses=returns(ReviewResponse))
def get_review(review_id: OpaqueIdPath) -> dict[str, Any]:
    who = _caller()
    require_scope(who, "admin")
    review = fallback().reviews.get(who, review_id)
    return _review(review_id, review.status, review.decided_at)


@app.post("/v1/fallback/reviews/<review_id>/decision", responses=returns(ReviewResponse))
def decide_review(review_id: OpaqueIdPath, body: DecideReviewRequest) -> dict[str, Any]:
    who = _caller()
    require_scope(who, "admin")
    review = fallback().reviews.decide(who, review_id, body.decision, body.reason_code)
    return _review(review_id, review.status, review.decided_at)


# ---------------------------------------------------------------- device sessions (issue 15)
# The tenant's backend starts the verification session (it knows the person's e-mail or phone on file) and hands its
# id to the device; the device may use only sessions and challenges of its own subject (their ids start with the
# subject's keyed hash) and sessions of its purpose, else 404 as for an unknown id.


def _own(who: CallerContext, subject_id: str, item_id: str, missing: Exception) -> None:
    if not item_id.startswith(container().subject(who, subject_id).ref):
        raise missing


@app.post("/v1/device/fallback/challenges", responses=returns(ChallengeResponse, 201))
def device_start_challenge(body: StartChallengeRequest) -> Response[dict[str, Any]]:
    """A non-face challenge in a verification session of the token's subject (as POST /v1/fallback/challenges)."""
    who = device_caller(app)
    grant = require_operation(who, "verify", container().now())
    _own(who, grant.subject_id, body.session_id, SessionNotFoundError())
    if fallback().sessions.get(who, body.session_id).purpose != grant.purpose:
        raise SessionNotFoundError()  # the subject's session for another purpose: not this device's
    return _start_challenge(who, body)


@app.post("/v1/device/fallback/challenges/<challenge_id>/verify", responses=returns(FallbackVerificationResponse))
def device_verify_challenge(challenge_id: OpaqueIdPath, body: VerifyChallengeRequest) -> Response[dict[str, Any]]:
    """The code of a challenge of the token's subject (as POST /v1/fallback/challenges/{id}/verify)."""
    who = device_caller(app)
    grant = require_operation(who, "verify", container().now())
    _own(who, grant.subject_id, challenge_id, ChallengeNotFoundError())
    return _verify_challenge(who, challenge_id, body)


# ---------------------------------------------------------------- end device sessions


@lambda_entry(idempotency)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)

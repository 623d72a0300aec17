"""The fallback's use cases on in-memory fakes of their storage ports: the subject's OTP guess budget,
which methods a verification session offers, and the proof a TOTP replacement needs, without moto."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from facegate.consent.entities import ConsentState, Purpose
from facegate.core.audit import Auditor
from facegate.core.errors import RateLimitedError, TotpReplacementRequiresProofError
from facegate.core.hashing import SubjectHasher
from facegate.core.tenancy import CallerContext
from facegate.fallback.budget import OtpGuessBudget, RateLimiter
from facegate.fallback.entities import Limits, VerificationSession, new_id
from facegate.fallback.rules import PROOF_LIFETIME, session_context, totp_context
from facegate.fallback.sessions import SessionService
from facegate.fallback.totp import TotpService
from facegate.matching.entities import StoredTemplate
from tests.unit.domain.fakes import (
    Clock,
    ContextCipher,
    InMemoryAttempts,
    InMemoryAuditLog,
    InMemoryConsents,
    InMemoryOtpGuesses,
    InMemoryRateCounters,
    InMemorySessions,
    InMemoryTemplates,
    InMemoryTotp,
)

pytestmark = pytest.mark.unit

CALLER = CallerContext("demo", "client-1", frozenset({"verify", "fallback"}), "req-1")
HASHER = SubjectHasher(b"p" * 32)
ALICE = HASHER.subject("demo", "alice")
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
GRANTED = ConsentState("checkout", "granted", "r2", 1, "s", "adult", "2026-03-01T00:00:00.000000Z", "r1", "2026-02-01")


class Purposes:
    def purpose(self, tenant_id: str, purpose: str) -> Purpose:
        return Purpose(purpose, purpose, 365)


# ---------------------------------------------------------------- budget


def test_the_guess_budget_holds_its_limit_across_challenges_and_frees_a_place_as_guesses_age_out() -> None:
    clock = Clock(T0)
    budget = OtpGuessBudget(InMemoryOtpGuesses(), limit=3, clock=clock)
    # When three guesses are placed an hour apart
    guesses = []
    for _ in range(3):
        guesses.append(budget.reserve("demo", ALICE.ref))
        clock.advance(hours=1)
    # Then the fourth gets no place but the seconds until the oldest ages out (24 h after it)
    assert [g.used for g in guesses] == [1, 2, 3]
    assert budget.reserve("demo", ALICE.ref) == 21 * 3600
    assert budget.locked_for("demo", ALICE.ref) == 21 * 3600
    # and a right code gives its place back, so one more guess fits
    budget.give_back(guesses[-1])
    assert budget.locked_for("demo", ALICE.ref) is None
    assert budget.reserve("demo", ALICE.ref).used == 3
    # and once the oldest is a day old, its place is free again; other subjects were never affected
    budget.reserve("demo", ALICE.ref)
    assert budget.locked_for("demo", ALICE.ref) == 21 * 3600
    clock.advance(hours=21)
    assert budget.locked_for("demo", ALICE.ref) is None
    assert budget.locked_for("demo", HASHER.ref("demo", "bob")) is None


def test_the_rate_limit_counts_per_subject_per_minute() -> None:
    clock = Clock(T0)
    limiter = RateLimiter(InMemoryRateCounters(), Limits(per_subject=2, per_tenant=100), clock)
    limiter.check("demo", ALICE.ref, "sessions")
    limiter.check("demo", ALICE.ref, "sessions")
    with pytest.raises(RateLimitedError) as refused:
        limiter.check("demo", ALICE.ref, "sessions")
    assert refused.value.extra["retry_after"] == 60
    clock.advance(minutes=1)
    limiter.check("demo", ALICE.ref, "sessions")  # a new minute


# ---------------------------------------------------------------- sessions


@pytest.fixture
def sessions_world() -> dict:
    clock = Clock(T0)
    consents, templates, attempts = InMemoryConsents(), InMemoryTemplates(), InMemoryAttempts()
    sessions, totp, guesses, audit = InMemorySessions(), InMemoryTotp(), InMemoryOtpGuesses(), InMemoryAuditLog()
    budget = OtpGuessBudget(guesses, limit=2, clock=clock)
    service = SessionService(
        Purposes(),
        consents,
        templates,
        attempts,
        sessions,
        totp,
        RateLimiter(InMemoryRateCounters(), Limits(), clock),
        budget,
        ContextCipher(),
        Auditor(audit),
        clock,
    )
    return {
        "service": service,
        "consents": consents,
        "templates": templates,
        "sessions": sessions,
        "budget": budget,
        "audit": audit,
    }


def test_without_consent_a_session_offers_the_non_face_methods_and_always_manual_review(sessions_world: dict) -> None:
    view = sessions_world["service"].start(CALLER, ALICE, "checkout", "en", email="alice@example.com")
    assert view.methods == ["email_otp", "manual_review"]
    # and the session keeps the subject id and contact only sealed, under the session's context
    stored = sessions_world["sessions"].find("demo", view.session_id)
    assert stored.subject_ref == ALICE.ref and view.session_id.startswith(ALICE.ref)
    contact = ContextCipher().open(stored.sealed, session_context("demo", ALICE.ref, view.session_id))
    assert json.loads(contact) == {"subject_id": "alice", "email": "alice@example.com", "phone": None}
    assert sessions_world["audit"].events[0].details["consent"] == "absent"


def test_with_consent_and_an_enrolment_face_comes_first(sessions_world: dict) -> None:
    sessions_world["consents"].state_by_key[("demo", ALICE.ref, "checkout")] = GRANTED
    template = StoredTemplate(
        "demo", ALICE.ref, "checkout", "t1", "e1", "m", "2.0.0", b"c", b"k", b"n", "2026-02-02T00:00:00.000000Z", 0
    )
    template = replace(template, consent_epoch="r1", seq=1)
    sessions_world["templates"].put(template)
    view = sessions_world["service"].start(CALLER, ALICE, "checkout", "en", phone="+8613800000000")
    assert view.methods == ["face", "sms_otp", "manual_review"]


def test_when_the_guess_budget_is_spent_no_code_method_is_offered(sessions_world: dict) -> None:
    budget = sessions_world["budget"]
    budget.reserve("demo", ALICE.ref)
    budget.reserve("demo", ALICE.ref)
    view = sessions_world["service"].start(CALLER, ALICE, "checkout", "en", email="a@example.com", phone="+861")
    assert view.methods == ["manual_review"]


# ---------------------------------------------------------------- TOTP set-up


class Tokens:
    """The result-token reader port: claims of tokens this test issued (the signature is KMS's business)."""

    def __init__(self) -> None:
        self.issued: dict[str, dict] = {}

    def claims(self, token: str) -> dict | None:
        return self.issued.get(token)


@pytest.fixture
def totp_world() -> dict:
    clock = Clock(T0)
    totp, sessions, audit, tokens = InMemoryTotp(), InMemorySessions(), InMemoryAuditLog(), Tokens()
    service = TotpService(
        totp,
        sessions,
        tokens,  # type: ignore[arg-type]
        "facegate",
        RateLimiter(InMemoryRateCounters(), Limits(), clock),
        ContextCipher(),
        Auditor(audit),
        clock,
    )
    return {"service": service, "totp": totp, "sessions": sessions, "audit": audit, "clock": clock, "tokens": tokens}


def verified_session(world: dict, method: str = "email_otp") -> str:
    session_id = new_id(ALICE.ref)
    at = int(world["clock"]().timestamp())
    world["sessions"].create(
        VerificationSession(
            "demo", ALICE.ref, session_id, "checkout", "verified", [method], "en", None, "", at + 600, at + 600
        )
    )
    stored = world["sessions"].find("demo", session_id)
    world["sessions"].sessions[("demo", session_id)] = replace(
        stored, verification_id=f"v-{session_id[-6:]}", verified_method=method, verified_at=at
    )
    return session_id


def secret(world: dict) -> bytes:
    sealed = world["totp"].secrets[("demo", ALICE.ref)]
    return ContextCipher().open(sealed, totp_context("demo", ALICE.ref))


def test_a_first_secret_needs_no_proof_and_a_replacement_without_proof_is_refused(totp_world: dict) -> None:
    first = totp_world["service"].set_up(CALLER, ALICE)
    assert secret(totp_world) == first.secret.encode()
    assert "alice" in first.otpauth_uri  # the label the person sees in the app
    with pytest.raises(TotpReplacementRequiresProofError):
        totp_world["service"].set_up(CALLER, ALICE)
    assert secret(totp_world) == first.secret.encode()  # unchanged
    assert [e.outcome for e in totp_world["audit"].events] == ["ok", "refused"]


def test_a_fresh_verified_session_proves_one_replacement_only(totp_world: dict) -> None:
    totp_world["service"].set_up(CALLER, ALICE)
    proof = verified_session(totp_world)
    replaced = totp_world["service"].set_up(CALLER, ALICE, proof_session_id=proof)
    assert secret(totp_world) == replaced.secret.encode()
    with pytest.raises(TotpReplacementRequiresProofError, match="already proved"):
        totp_world["service"].set_up(CALLER, ALICE, proof_session_id=proof)
    assert secret(totp_world) == replaced.secret.encode()


@pytest.mark.parametrize("problem", ["totp_method", "too_old", "another_subject"])
def test_a_session_that_is_no_proof_is_refused(totp_world: dict, problem: str) -> None:
    totp_world["service"].set_up(CALLER, ALICE)
    proof = verified_session(totp_world, "totp" if problem == "totp_method" else "email_otp")
    if problem == "too_old":
        totp_world["clock"].advance(seconds=PROOF_LIFETIME.total_seconds())
    subject = HASHER.subject("demo", "bob") if problem == "another_subject" else ALICE
    with pytest.raises(TotpReplacementRequiresProofError, match="no proof"):
        totp_world["service"].set_up(CALLER, subject, proof_session_id=proof)


def test_a_signed_match_of_this_subject_by_another_method_is_a_proof(totp_world: dict) -> None:
    totp_world["service"].set_up(CALLER, ALICE)
    exp = int(T0.timestamp()) + 300
    claims = {"typ": "verification-result", "iss": "facegate", "aud": "demo", "decision": "match", "exp": exp}
    totp_world["tokens"].issued["good"] = {**claims, "sub": "alice", "method": "face", "jti": "v1"}
    totp_world["tokens"].issued["bob"] = {**claims, "sub": "bob", "method": "face", "jti": "v2"}
    with pytest.raises(TotpReplacementRequiresProofError):
        totp_world["service"].set_up(CALLER, ALICE, proof_result_token="bob")
    replaced = totp_world["service"].set_up(CALLER, ALICE, proof_result_token="good")
    assert secret(totp_world) == replaced.secret.encode()

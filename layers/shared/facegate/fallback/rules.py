"""The fallback's rules shared by its use cases: lifetimes and limits, code and destination hashing, masking,
the sealing contexts, and the views of sessions and challenges."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime, timedelta

from facegate.core.clock import iso
from facegate.core.errors import SessionExpiredError, SessionUsedError
from facegate.fallback.entities import Challenge, ChallengeView, SessionView, VerificationSession

SESSION_LIFETIME = timedelta(minutes=10)
CODE_LIFETIME = timedelta(minutes=5)
TOTP_CHALLENGE_LIFETIME = timedelta(minutes=5)
REVIEW_LIFETIME = timedelta(hours=24)
RESEND_COOLDOWN = timedelta(seconds=30)
EXPIRED_GRACE = timedelta(days=1)  # expired challenges stay readable a day, to answer challenge_expired
MAX_ATTEMPTS = 5
MAX_SENDS_PER_SESSION = 5
CODE_DIGITS = 6
TOTP_DRIFT_STEPS = 1
TOTP_ISSUER = "facegate"
OTP_KEY_LABEL = b"facegate/fallback/otp-code/v1"
DESTINATION_KEY_LABEL = b"facegate/fallback/destination/v1"
OTP_METHODS = ("email_otp", "sms_otp")
CODED_METHODS = ("email_otp", "sms_otp", "totp")  # a code can be guessed: these share the guess budget
NON_FACE_METHODS = ("email_otp", "sms_otp", "totp", "manual_review")
OTP_GUESS_LIMIT = 10  # wrong codes per subject in OTP_GUESS_WINDOW, across challenges, sessions, purposes
OTP_GUESS_WINDOW = timedelta(hours=24)
PROOF_LIFETIME = timedelta(minutes=5)  # how long a verification may prove a TOTP replacement
PROOF_METHODS = ("face", "email_otp", "sms_otp", "manual_review")  # never totp: it cannot vouch for itself


class CodeHasher:
    """Keyed hashes of one-time codes and of destinations, with a key derived from the subject pepper."""

    def __init__(self, pepper: bytes) -> None:
        self._code_key = hmac.new(pepper, OTP_KEY_LABEL, hashlib.sha256).digest()
        self._destination_key = hmac.new(pepper, DESTINATION_KEY_LABEL, hashlib.sha256).digest()

    def code(self, challenge_id: str, code: str) -> str:
        return hmac.new(self._code_key, f"{challenge_id}\x1f{code}".encode(), hashlib.sha256).hexdigest()

    def matches(self, challenge_id: str, code: str, expected: str) -> bool:
        return hmac.compare_digest(self.code(challenge_id, code), expected)

    def destination(self, tenant_id: str, value: str) -> str:
        message = f"{tenant_id}\x1f{value.strip().lower()}".encode()
        return hmac.new(self._destination_key, message, hashlib.sha256).hexdigest()[:40]


def new_code() -> str:
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def mask_email(address: str) -> str:
    local, _, domain = address.partition("@")
    return f"{local[:1]}***@{domain}"


def mask_phone(phone: str) -> str:
    return f"{phone[:3]}{'*' * max(0, len(phone) - 7)}{phone[-4:]}"


def epoch(at: datetime) -> int:
    return int(at.timestamp())


def from_epoch(seconds: int) -> str:
    return iso(datetime.fromtimestamp(seconds, UTC))


def remaining_methods(methods: list[str]) -> list[str]:
    """What a session still offers while the code methods are locked (manual review always)."""
    left = [m for m in methods if m not in CODED_METHODS]
    return left if "manual_review" in left else [*left, "manual_review"]


def session_context(tenant_id: str, subject_ref: str, session_id: str) -> dict[str, str]:
    return {"tenant": tenant_id, "subject": subject_ref, "field": "verification-session", "session": session_id}


def totp_context(tenant_id: str, subject_ref: str) -> dict[str, str]:
    return {"tenant": tenant_id, "subject": subject_ref, "field": "totp"}


def check_session(session: VerificationSession, now: datetime) -> None:
    if session.status != "open":
        raise SessionUsedError(verification_id=session.verification_id)
    if now.timestamp() >= session.valid_until:
        raise SessionExpiredError()


def session_view(session: VerificationSession) -> SessionView:
    return SessionView(
        session_id=session.session_id,
        purpose=session.purpose,
        status=session.status,
        methods=session.methods,
        expires_at=from_epoch(session.valid_until),
        verification_id=session.verification_id,
    )


def challenge_view(challenge: Challenge) -> ChallengeView:
    coded = challenge.method in (*OTP_METHODS, "totp")
    return ChallengeView(
        challenge_id=challenge.challenge_id,
        session_id=challenge.session_id,
        method=challenge.method,
        status=challenge.status,
        expires_at=from_epoch(challenge.valid_until),
        attempts_left=max(0, MAX_ATTEMPTS - challenge.attempts) if coded else None,
        sent_to=challenge.sent_to,
        review_id=challenge.challenge_id if challenge.method == "manual_review" else None,
    )

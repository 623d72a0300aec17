"""Non-face challenges (e-mail OTP, SMS OTP, TOTP, manual review): starting one, checking its code or
collecting the review's decision, and answering the same signed verification result as face verification."""

from __future__ import annotations

import hmac
import json
from dataclasses import replace
from datetime import datetime
from typing import Any

import pyotp

from facegate.core.audit import Auditor
from facegate.core.clock import Clock, iso, utcnow
from facegate.core.errors import (
    ChallengeExpiredError,
    ChallengeLockedError,
    ChallengeNotFoundError,
    CodeInvalidError,
    CodeReusedError,
    InvalidRequestError,
    MethodNotOfferedError,
    OtpLockedError,
    RateLimitedError,
    ResendTooSoonError,
    ReviewDecidedError,
    ReviewPendingError,
    SessionExpiredError,
    SessionNotFoundError,
    SessionUsedError,
)
from facegate.core.events import DomainEvents
from facegate.core.observability import count, logger
from facegate.core.ports import Cipher
from facegate.core.results import ResultIssuer
from facegate.core.tenancy import CallerContext
from facegate.fallback.budget import OtpGuessBudget, RateLimiter
from facegate.fallback.entities import (
    Challenge,
    ChallengeView,
    FallbackResult,
    Guess,
    VerificationSession,
    new_id,
    ref_of,
)
from facegate.fallback.ports import ChallengeStore, EmailPort, ReviewPort, SessionStore, SmsPort, TotpStore
from facegate.fallback.rules import (
    CODE_LIFETIME,
    CODED_METHODS,
    EXPIRED_GRACE,
    MAX_ATTEMPTS,
    MAX_SENDS_PER_SESSION,
    PROOF_LIFETIME,
    RESEND_COOLDOWN,
    REVIEW_LIFETIME,
    TOTP_CHALLENGE_LIFETIME,
    TOTP_DRIFT_STEPS,
    CodeHasher,
    challenge_view,
    check_session,
    epoch,
    from_epoch,
    mask_email,
    mask_phone,
    new_code,
    remaining_methods,
    session_context,
    totp_context,
)

MESSAGES = {
    "en": {
        "subject": "Your verification code",
        "text": "Your verification code is {code}. It expires in {minutes} minutes. "
        "If you did not ask for it, ignore this message; never share the code.",
    },
    "zh-CN": {
        "subject": "您的验证码",
        "text": "您的验证码是 {code}，{minutes} 分钟内有效。如非本人操作，请忽略本消息；请勿向任何人透露验证码。",
    },
}


class ChallengeService:
    def __init__(
        self,
        sessions: SessionStore,
        challenges: ChallengeStore,
        totp: TotpStore,
        limiter: RateLimiter,
        budget: OtpGuessBudget,
        cipher: Cipher,
        codes: CodeHasher,
        email: EmailPort,
        sms: SmsPort,
        reviews: ReviewPort,
        results: ResultIssuer,
        auditor: Auditor,
        clock: Clock = utcnow,
        events: DomainEvents | None = None,
    ) -> None:
        self._events = events  # webhooks: verification.decided
        self._sessions = sessions
        self._challenges = challenges
        self._totp = totp
        self._limiter = limiter
        self._budget = budget
        self._cipher = cipher
        self._codes = codes
        self._email = email
        self._sms = sms
        self._reviews = reviews
        self._results = results
        self._auditor = auditor
        self._clock = clock

    # -- starting

    def start(self, caller: CallerContext, session_id: str, method: str, locale: str | None = None) -> ChallengeView:
        starters = {
            "email_otp": self.email_otp,
            "sms_otp": self.sms_otp,
            "totp": self.totp,
            "manual_review": self.manual_review,
        }
        return starters[method](caller, session_id, locale)

    def email_otp(self, caller: CallerContext, session_id: str, locale: str | None = None) -> ChallengeView:
        return self._send_code(caller, session_id, "email_otp", locale)

    def sms_otp(self, caller: CallerContext, session_id: str, locale: str | None = None) -> ChallengeView:
        return self._send_code(caller, session_id, "sms_otp", locale)

    def totp(self, caller: CallerContext, session_id: str, locale: str | None = None) -> ChallengeView:
        session, now = self._open_session(caller, session_id, "totp")
        challenge = self._create(session, "totp", now, now + TOTP_CHALLENGE_LIFETIME)
        return self._started(caller, session, challenge)

    def manual_review(self, caller: CallerContext, session_id: str, locale: str | None = None) -> ChallengeView:
        session, now = self._open_session(caller, session_id, "manual_review")
        challenge = self._create(session, "manual_review", now, now + REVIEW_LIFETIME)
        # The result names the subject, so the sealed session must outlive the review.
        self._sessions.keep_until(session, challenge.expires_at)
        self._reviews.submit(
            {
                "review_id": challenge.challenge_id,
                "tenant_id": session.tenant_id,
                "subject_ref": session.subject_ref,
                "purpose": session.purpose,
                "session_id": session.session_id,
                "requested_at": challenge.created_at,
                "expires_at": from_epoch(challenge.valid_until),
            }
        )
        return self._started(caller, session, challenge)

    def _send_code(self, caller: CallerContext, session_id: str, method: str, locale: str | None) -> ChallengeView:
        session, now = self._open_session(caller, session_id, method)
        contact = self._contact(session)
        destination = contact["email"] if method == "email_otp" else contact["phone"]
        if not destination:  # cannot happen for an offered method; kept as a guard
            raise MethodNotOfferedError()
        last = session.sent_at.get(method)
        if last is not None and now.timestamp() < last + RESEND_COOLDOWN.total_seconds():
            again = int(last + RESEND_COOLDOWN.total_seconds())
            raise ResendTooSoonError(resend_after=from_epoch(again), retry_after=max(1, again - epoch(now)))
        if session.sends >= MAX_SENDS_PER_SESSION:
            raise RateLimitedError("this session has sent as many codes as it may; start a new session")
        self._limiter.check_destination(session.tenant_id, self._codes.destination(session.tenant_id, destination))
        if not self._sessions.mark_sent(session, method, epoch(now), epoch(now - RESEND_COOLDOWN) + 1):
            # Another request sent one this very moment.
            cooldown = int(RESEND_COOLDOWN.total_seconds())
            raise ResendTooSoonError(resend_after=iso(now + RESEND_COOLDOWN), retry_after=cooldown)
        for previous in self._challenges.pending_for_session(
            session.tenant_id, session.subject_ref, session.session_id, method
        ):
            self._challenges.set_status(previous, "superseded")
        code = new_code()
        challenge_id = new_id(session.subject_ref)
        text = MESSAGES[locale or session.locale]
        body = text["text"].format(code=code, minutes=int(CODE_LIFETIME.total_seconds() // 60))
        # Store the challenge first: a code that was sent can always be checked. If sending fails, the
        # stored challenge is retired, so no code nobody received stays usable.
        challenge = self._create(
            session,
            method,
            now,
            now + CODE_LIFETIME,
            challenge_id=challenge_id,
            code_hash=self._codes.code(challenge_id, code),
            sent_to=mask_email(destination) if method == "email_otp" else mask_phone(destination),
        )
        try:
            if method == "email_otp":
                self._email.send(destination, text["subject"], body)
            else:
                self._sms.send(destination, body)
        except Exception:
            self._challenges.set_status(challenge, "superseded")
            raise
        del code, body
        view = self._started(caller, session, challenge)
        return replace(view, resend_after=iso(now + RESEND_COOLDOWN))

    def _open_session(
        self, caller: CallerContext, session_id: str, method: str
    ) -> tuple[VerificationSession, datetime]:
        session = self._sessions.find(caller.tenant_id, session_id)
        if session is None:
            raise SessionNotFoundError()
        self._limiter.check(caller.tenant_id, session.subject_ref, "challenges")
        now = self._clock()
        check_session(session, now)
        if method not in session.methods:
            raise MethodNotOfferedError(f"this session offers {', '.join(session.methods)}", methods=session.methods)
        if method in CODED_METHODS:
            locked_for = self._budget.locked_for(session.tenant_id, session.subject_ref)
            if locked_for is not None:  # no code is sent (nor charged for) while guessing is locked
                count("FallbackOtpLockServed")
                raise self._locked(session, locked_for)
        return session, now

    @staticmethod
    def _locked(session: VerificationSession, retry_after: int) -> OtpLockedError:
        methods = remaining_methods(session.methods)
        return OtpLockedError(
            f"too many wrong codes lately; use {', '.join(methods)} or try a code again later",
            retry_after=retry_after,
            methods=methods,
        )

    def _create(
        self,
        session: VerificationSession,
        method: str,
        now: datetime,
        valid_until: datetime,
        challenge_id: str | None = None,
        code_hash: str | None = None,
        sent_to: str | None = None,
    ) -> Challenge:
        challenge = Challenge(
            tenant_id=session.tenant_id,
            subject_ref=session.subject_ref,
            challenge_id=challenge_id or new_id(session.subject_ref),
            session_id=session.session_id,
            method=method,
            status="pending",
            created_at=iso(now),
            valid_until=epoch(valid_until),
            expires_at=epoch(valid_until + EXPIRED_GRACE),
            code_hash=code_hash,
            sent_to=sent_to,
        )
        self._challenges.create(challenge)
        return challenge

    def _started(self, caller: CallerContext, session: VerificationSession, challenge: Challenge) -> ChallengeView:
        self._auditor.record(
            caller,
            "fallback.challenge_started",
            "ok",
            session.subject_ref,
            session.purpose,
            method=challenge.method,
            challenge_id=challenge.challenge_id,
        )
        count("FallbackUsed", method=challenge.method)
        logger.info("fallback challenge started", subject_ref=session.subject_ref, method=challenge.method)
        return challenge_view(challenge)

    # -- reading

    def subject_ref_of_session(self, caller: CallerContext, session_id: str) -> str:
        """Where a request about this session keeps its idempotency record (the id starts with it)."""
        return ref_of(session_id)

    def get(self, caller: CallerContext, challenge_id: str) -> ChallengeView:
        challenge = self._challenges.find(caller.tenant_id, challenge_id)
        if challenge is None:
            raise ChallengeNotFoundError()
        return challenge_view(challenge)

    # -- verifying

    def verify(self, caller: CallerContext, challenge_id: str, code: str | None) -> FallbackResult:
        """Check the code (or collect the review's decision) and answer the signed result."""
        challenge = self._challenges.find(caller.tenant_id, challenge_id)
        if challenge is None:
            raise ChallengeNotFoundError()
        session = self._sessions.find(caller.tenant_id, challenge.session_id)
        if session is None:
            raise SessionExpiredError()
        self._limiter.check(caller.tenant_id, session.subject_ref, "verifications")
        now = self._clock()
        if challenge.status == "closed":
            raise ReviewDecidedError("the review's result has already been answered", status="closed")
        if session.status != "open" or challenge.status == "verified":
            raise SessionUsedError(verification_id=session.verification_id)
        if challenge.method == "manual_review":
            return self._collect_review(caller, session, challenge, now)
        if challenge.status == "locked":
            raise ChallengeLockedError(attempts_left=0)
        if challenge.status == "superseded":
            raise ChallengeExpiredError("a newer code was sent; use that one")
        if now.timestamp() >= challenge.valid_until:
            raise ChallengeExpiredError()
        check_session(session, now)
        if code is None:
            raise InvalidRequestError("the 6-digit code is required for this method")
        attempts = self._challenges.add_attempt(challenge, MAX_ATTEMPTS)
        if attempts is None:
            self._challenges.set_status(challenge, "locked")
            raise ChallengeLockedError(attempts_left=0)
        # The subject's own budget, across challenges and sessions: the place is taken before the check.
        guess = self._budget.reserve(session.tenant_id, session.subject_ref)
        if isinstance(guess, int):
            count("FallbackOtpLockServed")
            raise self._locked(session, guess)
        try:
            if challenge.method == "totp":
                right = self._totp_matches(session, code, now)
            else:
                right = challenge.code_hash is not None and self._codes.matches(
                    challenge.challenge_id, code, challenge.code_hash
                )
        except CodeReusedError:
            raise  # a replayed code is a failed guess too
        except Exception:
            self._budget.give_back(guess)  # nothing was compared: no guess was spent
            raise
        if not right:
            self._rejected(caller, session, challenge, MAX_ATTEMPTS - attempts, guess)
        self._budget.give_back(guess)
        return self._finish(caller, session, challenge, "match", "verified")

    def _totp_matches(self, session: VerificationSession, code: str, now: datetime) -> bool:
        """Accepts the current step and one either side (clock drift); each step only once (replay)."""
        stored = self._totp.get(session.tenant_id, session.subject_ref)
        if stored is None:
            return False
        sealed, _ = stored
        secret = self._cipher.open(sealed, totp_context(session.tenant_id, session.subject_ref)).decode()
        totp = pyotp.TOTP(secret)
        current = totp.timecode(now)
        matched = None
        for step in range(current - TOTP_DRIFT_STEPS, current + TOTP_DRIFT_STEPS + 1):
            if hmac.compare_digest(totp.generate_otp(step), code):
                matched = step
        if matched is None:
            return False
        if not self._totp.use_step(session.tenant_id, session.subject_ref, matched):
            count("FallbackCodeReused", method="totp")
            raise CodeReusedError()
        return True

    def _rejected(
        self, caller: CallerContext, session: VerificationSession, challenge: Challenge, left: int, guess: Guess
    ) -> None:
        count("FallbackCodeRejected", method=challenge.method)
        if guess.used >= self._budget.limit:
            # This wrong code spent the subject's budget: the code methods lock, manual review stays.
            self._challenges.set_status(challenge, "locked")
            retry_after = self._budget.locked_for(session.tenant_id, session.subject_ref) or 1
            self._auditor.record(
                caller,
                "fallback.otp_locked",
                "locked",
                session.subject_ref,
                session.purpose,
                method=challenge.method,
                guesses=guess.used,
                retry_after=retry_after,
            )
            count("FallbackOtpLocked", method=challenge.method)
            logger.info("otp methods locked", subject_ref=session.subject_ref, retry_after=retry_after)
            raise self._locked(session, retry_after)
        if left <= 0:
            self._challenges.set_status(challenge, "locked")
            self._auditor.record(
                caller,
                "fallback.challenge_locked",
                "locked",
                session.subject_ref,
                session.purpose,
                method=challenge.method,
            )
            count("FallbackChallengeLocked", method=challenge.method)
            raise ChallengeLockedError(attempts_left=0)
        raise CodeInvalidError(attempts_left=min(left, self._budget.limit - guess.used))

    def _collect_review(
        self, caller: CallerContext, session: VerificationSession, challenge: Challenge, now: datetime
    ) -> FallbackResult:
        if challenge.status == "pending":
            if now.timestamp() >= challenge.valid_until:
                raise ChallengeExpiredError("the review request has expired")
            raise ReviewPendingError()
        if challenge.status == "approved":
            return self._finish(caller, session, challenge, "match", "closed", expected=("approved",))
        # A rejection is an answer too (signed, like a face no_match); the session stays open for
        # another method until it expires.
        return self._finish(caller, session, challenge, "no_match", "closed", expected=("rejected",))

    def _finish(
        self,
        caller: CallerContext,
        session: VerificationSession,
        challenge: Challenge,
        decision: str,
        status: str,
        expected: tuple[str, ...] = ("pending",),
    ) -> FallbackResult:
        subject_id = self._contact(session)["subject_id"]
        token, claims = self._results.issue(
            session.tenant_id,
            subject_id,
            session.purpose,
            method=challenge.method,
            decision=decision,
            session_id=session.session_id,
            challenge_id=challenge.challenge_id,
        )
        verification_id = claims["jti"]
        at = epoch(self._clock())
        if decision == "match" and not self._sessions.mark_verified(
            session, verification_id, challenge.method, at, at + int(PROOF_LIFETIME.total_seconds())
        ):
            raise SessionUsedError()
        if not self._challenges.set_status(challenge, status, expected, {"verification_id": verification_id}):
            raise SessionUsedError()
        self._auditor.record(
            caller,
            "fallback.verified",
            decision,
            session.subject_ref,
            session.purpose,
            method=challenge.method,
            verification_id=verification_id,
        )
        count("FallbackVerified" if decision == "match" else "FallbackNotVerified", method=challenge.method)
        if self._events is not None:
            self._events.verification_decided(
                session.tenant_id,
                subject_id,
                session.purpose,
                method=challenge.method,
                decision=decision,
                verification_id=verification_id,
                decided_at=int(claims["iat"]),
            )
        logger.info("fallback decided", subject_ref=session.subject_ref, method=challenge.method, decision=decision)
        return FallbackResult(
            verification_id=verification_id,
            subject_id=subject_id,
            purpose=session.purpose,
            method=challenge.method,
            decision=decision,
            result_token=token,
            session_id=session.session_id,
            challenge_id=challenge.challenge_id,
        )

    def _contact(self, session: VerificationSession) -> dict[str, Any]:
        if session.sealed is None:
            raise SessionUsedError()
        data = self._cipher.open(
            session.sealed, session_context(session.tenant_id, session.subject_ref, session.session_id)
        )
        contact: dict[str, Any] = json.loads(data)
        return contact

"""Verification sessions and non-face challenges. Every session offers at least one non-face method,
and every method ends in the same signed verification result as face verification."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pyotp

from facegate.consent.ports import ConsentStates, Purposes
from facegate.core.audit import Auditor
from facegate.core.clock import Clock, iso, utcnow
from facegate.core.envelope import Sealed
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
    ReviewNotFoundError,
    ReviewPendingError,
    SessionExpiredError,
    SessionNotFoundError,
    SessionUsedError,
    TotpReplacementRequiresProofError,
)
from facegate.core.hashing import SubjectHasher
from facegate.core.observability import count, logger
from facegate.core.ports import Cipher
from facegate.core.results import ResultIssuer
from facegate.core.tenancy import CallerContext, subject_pk
from facegate.fallback.entities import (
    Challenge,
    ChallengeView,
    FallbackResult,
    Guess,
    Limits,
    SessionView,
    TotpSetUp,
    VerificationSession,
    new_id,
    ref_of,
)
from facegate.fallback.ports import (
    ChallengeStore,
    EmailPort,
    OtpGuessStore,
    RateCounters,
    ReviewPort,
    SessionStore,
    SmsPort,
    TotpStore,
)
from facegate.fallback.proofs import ResultTokenReader
from facegate.matching.entities import LOCKOUT_FAILURES, LOCKOUT_WINDOW, usable_templates
from facegate.matching.ports import AttemptStore, TemplateStore

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


# ---------------------------------------------------------------- small pieces


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


class RateLimiter:
    def __init__(self, counters: RateCounters, limits: Limits, clock: Clock = utcnow) -> None:
        self._counters = counters
        self._limits = limits
        self._clock = clock

    def check(self, tenant_id: str, subject_ref: str, action: str) -> None:
        self._hit(subject_pk(tenant_id, subject_ref), action, self._limits.per_subject)
        self._hit(f"T#{tenant_id}#RATE", "all", self._limits.per_tenant)

    def check_destination(self, tenant_id: str, destination_hash: str) -> None:
        self._hit(f"T#{tenant_id}#DEST#{destination_hash}", "sends", self._limits.per_destination)

    def _hit(self, pk: str, name: str, limit: int) -> None:
        now = epoch(self._clock())
        window = now - now % 60
        if self._counters.hit(pk, name, window, window + 120) > limit:
            count("FallbackRateLimited")
            raise RateLimitedError(retry_after=window + 60 - now)


class OtpGuessBudget:
    """At most `limit` code guesses per subject in any `window` (sliding), whatever the challenge, session or
    purpose: a new challenge or session gives no new guesses. Each guess takes its place *before* the code
    is checked, so parallel guesses never exceed the limit; a right code gives its place back. When the
    budget is spent, email_otp, sms_otp and totp are locked until the oldest guess ages out."""

    def __init__(
        self,
        guesses: OtpGuessStore,
        limit: int = OTP_GUESS_LIMIT,
        window: timedelta = OTP_GUESS_WINDOW,
        clock: Clock = utcnow,
    ) -> None:
        self._guesses = guesses
        self.limit = limit
        self._window = window
        self._clock = clock

    def locked_for(self, tenant_id: str, subject_ref: str) -> int | None:
        """Seconds until a code may be tried again, or None when the code methods are open."""
        now = epoch(self._clock())
        live = [t for t in self._guesses.guesses(tenant_id, subject_ref) if t >= self._since(now)]
        return self._retry_after(live, now) if len(live) >= self.limit else None

    def reserve(self, tenant_id: str, subject_ref: str) -> Guess | int:
        """A place for one guess, or (an int) the seconds until one frees up."""
        now = epoch(self._clock())
        window = int(self._window.total_seconds())
        token = secrets.token_hex(8)
        taken, live = self._guesses.reserve(
            tenant_id, subject_ref, token, now, self._since(now), self.limit, now + window
        )
        if not taken:
            return self._retry_after(live, now)
        return Guess(tenant_id, subject_ref, token, len(live))

    def give_back(self, guess: Guess) -> None:
        self._guesses.release(guess.tenant_id, guess.subject_ref, guess.token)

    def _since(self, now: int) -> int:
        """The oldest second still in the window: a guess counts for exactly `window`."""
        return now - int(self._window.total_seconds()) + 1

    def _retry_after(self, live: list[int], now: int) -> int:
        # The oldest guesses age out first; the limit-th newest decides when one place is free.
        return max(1, sorted(live)[-self.limit] + int(self._window.total_seconds()) - now)


def remaining_methods(methods: list[str]) -> list[str]:
    """What a session still offers while the code methods are locked (manual review always)."""
    left = [m for m in methods if m not in CODED_METHODS]
    return left if "manual_review" in left else [*left, "manual_review"]


# ---------------------------------------------------------------- views


def session_context(tenant_id: str, subject_ref: str, session_id: str) -> dict[str, str]:
    return {"tenant": tenant_id, "subject": subject_ref, "field": "verification-session", "session": session_id}


def totp_context(tenant_id: str, subject_ref: str) -> dict[str, str]:
    return {"tenant": tenant_id, "subject": subject_ref, "field": "totp"}


# ---------------------------------------------------------------- sessions


class SessionService:
    def __init__(
        self,
        notices: Purposes,
        consents: ConsentStates,
        templates: TemplateStore,
        attempts: AttemptStore,
        sessions: SessionStore,
        totp: TotpStore,
        limiter: RateLimiter,
        budget: OtpGuessBudget,
        cipher: Cipher,
        hasher: SubjectHasher,
        auditor: Auditor,
        clock: Clock = utcnow,
    ) -> None:
        self._notices = notices
        self._consents = consents
        self._templates = templates
        self._attempts = attempts
        self._sessions = sessions
        self._totp = totp
        self._limiter = limiter
        self._budget = budget
        self._cipher = cipher
        self._hasher = hasher
        self._auditor = auditor
        self._clock = clock

    def start(
        self,
        caller: CallerContext,
        subject_id: str,
        purpose: str,
        locale: str,
        email: str | None = None,
        phone: str | None = None,
    ) -> SessionView:
        """The methods this person may choose now. Face only with active consent, an enrolment and no
        lockout; manual review always, so that no request can leave face as the only way."""
        self._notices.purpose(caller.tenant_id, purpose)
        ref = self._hasher.ref(caller.tenant_id, subject_id)
        self._limiter.check(caller.tenant_id, ref, "sessions")
        now = self._clock()
        face, consent = self._face_available(caller.tenant_id, ref, purpose, now)
        methods = (["face"] if face else []) + self._non_face_methods(caller.tenant_id, ref, email, phone)
        session_id = new_id(ref)
        sealed = self._cipher.seal(
            json.dumps({"subject_id": subject_id, "email": email, "phone": phone}).encode(),
            session_context(caller.tenant_id, ref, session_id),
        )
        valid_until = epoch(now + SESSION_LIFETIME)
        session = VerificationSession(
            tenant_id=caller.tenant_id,
            subject_ref=ref,
            session_id=session_id,
            purpose=purpose,
            status="open",
            methods=methods,
            locale=locale,
            sealed=sealed,
            created_at=iso(now),
            valid_until=valid_until,
            expires_at=valid_until,
        )
        self._sessions.create(session)
        self._auditor.record(
            caller, "verification_session.started", "ok", ref, purpose, methods=methods, consent=consent
        )
        count("VerificationSessionStarted", face_offered="yes" if face else "no")
        if consent != "granted":
            # The operator's evidence that refusing (or never giving) consent still got a way through.
            count("ConsentRefusedServed", consent=consent)
        logger.info("verification session started", subject_ref=ref, purpose=purpose, methods=methods)
        return _session_view(session)

    def get(self, caller: CallerContext, session_id: str) -> SessionView:
        session = self._sessions.find(caller.tenant_id, session_id)
        if session is None:
            raise SessionNotFoundError()
        view = _session_view(session)
        if session.status == "open" and self._budget.locked_for(caller.tenant_id, session.subject_ref) is not None:
            return replace(view, methods=remaining_methods(view.methods))
        return view

    def _face_available(self, tenant_id: str, ref: str, purpose: str, now: datetime) -> tuple[bool, str]:
        state = self._consents.state(tenant_id, ref, purpose)
        consent = state.status if state else "absent"
        if consent != "granted":
            return False, consent
        if not usable_templates(self._templates.for_subject(tenant_id, ref, purpose), state):
            return False, consent
        if self._attempts.recent_failures(tenant_id, ref, purpose, now - LOCKOUT_WINDOW) >= LOCKOUT_FAILURES:
            count("FaceLockoutServed")
            return False, consent
        return True, consent

    def _non_face_methods(self, tenant_id: str, ref: str, email: str | None, phone: str | None) -> list[str]:
        methods = []
        if email:
            methods.append("email_otp")
        if phone:
            methods.append("sms_otp")
        if self._totp.exists(tenant_id, ref):
            methods.append("totp")
        if methods and self._budget.locked_for(tenant_id, ref) is not None:
            count("FallbackOtpLockServed")
            methods = []  # too many wrong codes lately: no code method until the lock ends
        methods.append("manual_review")  # always: the method nobody can be unable to use
        return methods


def _session_view(session: VerificationSession) -> SessionView:
    return SessionView(
        session_id=session.session_id,
        purpose=session.purpose,
        status=session.status,
        methods=session.methods,
        expires_at=from_epoch(session.valid_until),
        verification_id=session.verification_id,
    )


# ---------------------------------------------------------------- challenges

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
    ) -> None:
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
        _check_session(session, now)
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
        return _challenge_view(challenge)

    # -- reading and deciding

    def subject_ref_of_session(self, caller: CallerContext, session_id: str) -> str:
        """Where a request about this session keeps its idempotency record (the id starts with it)."""
        return ref_of(session_id)

    def review(self, caller: CallerContext, review_id: str) -> Challenge:
        challenge = self._challenges.find(caller.tenant_id, review_id)
        if challenge is None or challenge.method != "manual_review":
            raise ReviewNotFoundError()
        return challenge

    def get(self, caller: CallerContext, challenge_id: str) -> ChallengeView:
        challenge = self._challenges.find(caller.tenant_id, challenge_id)
        if challenge is None:
            raise ChallengeNotFoundError()
        return _challenge_view(challenge)

    def decide_review(
        self, caller: CallerContext, review_id: str, decision: str, reason_code: str | None = None
    ) -> Challenge:
        challenge = self.review(caller, review_id)
        now = self._clock()
        if challenge.status != "pending":
            raise ReviewDecidedError(status=challenge.status)
        if now.timestamp() >= challenge.valid_until:
            raise ChallengeExpiredError("the review request has expired")
        fields = {"decided_at": iso(now), "decided_by": caller.client_id}
        if reason_code:
            fields["reason_code"] = reason_code
        if not self._challenges.set_status(challenge, decision, fields=fields):
            raise ReviewDecidedError()
        self._auditor.record(
            caller, "fallback.review_decided", decision, challenge.subject_ref, None, review_id=review_id
        )
        count("ManualReviewDecided", decision=decision)
        return replace(challenge, status=decision, decided_at=iso(now))

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
        _check_session(session, now)
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


def _check_session(session: VerificationSession, now: datetime) -> None:
    if session.status != "open":
        raise SessionUsedError(verification_id=session.verification_id)
    if now.timestamp() >= session.valid_until:
        raise SessionExpiredError()


def _challenge_view(challenge: Challenge) -> ChallengeView:
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


# ---------------------------------------------------------------- TOTP set-up


class TotpService:
    """TOTP set-up. The first secret of a subject needs only the `fallback` scope; replacing one needs proof,
    or else whoever holds a `fallback` token could swap in their own secret and get a signed match."""

    def __init__(
        self,
        totp: TotpStore,
        sessions: SessionStore,
        results: ResultTokenReader,
        issuer: str,
        limiter: RateLimiter,
        cipher: Cipher,
        hasher: SubjectHasher,
        auditor: Auditor,
        clock: Clock = utcnow,
    ) -> None:
        self._totp = totp
        self._sessions = sessions
        self._results = results
        self._issuer = issuer
        self._limiter = limiter
        self._cipher = cipher
        self._hasher = hasher
        self._auditor = auditor
        self._clock = clock

    def set_up(
        self,
        caller: CallerContext,
        subject_id: str,
        label: str | None = None,
        proof_session_id: str | None = None,
        proof_result_token: str | None = None,
    ) -> TotpSetUp:
        """A new secret, stored sealed; the caller shows it once as a QR code. An existing secret is
        replaced only with proof: a verification of this subject by another method (a verified session or
        a signed match, each usable once), or the admin scope."""
        ref = self._hasher.ref(caller.tenant_id, subject_id)
        self._limiter.check(caller.tenant_id, ref, "totp")
        now = self._clock()
        proof = self._proof(caller, subject_id, ref, proof_session_id, proof_result_token, now)
        secret = pyotp.random_base32()
        sealed: Sealed = self._cipher.seal(secret.encode(), totp_context(caller.tenant_id, ref))
        uri = pyotp.TOTP(secret).provisioning_uri(name=label or subject_id, issuer_name=TOTP_ISSUER)
        # Create-if-absent: two first set-ups at once cannot both win, the second one needs proof.
        if self._totp.create(caller.tenant_id, ref, sealed, iso(now)):
            self._auditor.record(caller, "fallback.totp_set_up", "ok", ref)
            count("TotpSetUp")
            return TotpSetUp(secret=secret, otpauth_uri=uri)
        if proof is None:
            self._auditor.record(caller, "fallback.totp_replaced", "refused", ref, basis="none")
            count("TotpReplacementRefused")
            raise TotpReplacementRequiresProofError(
                "pass proof_session_id or proof_result_token of a fresh verification by another method"
            )
        basis, verification_id = proof
        if verification_id is not None and not self._totp.use_proof(
            caller.tenant_id, ref, verification_id, epoch(now), epoch(now + PROOF_LIFETIME + EXPIRED_GRACE)
        ):
            self._auditor.record(caller, "fallback.totp_replaced", "refused", ref, basis=basis, reason="proof_used")
            count("TotpReplacementRefused")
            raise TotpReplacementRequiresProofError("this verification has already proved a replacement")
        self._totp.replace(caller.tenant_id, ref, sealed, iso(now))
        self._auditor.record(
            caller, "fallback.totp_replaced", "ok", ref, basis=basis, proof_verification_id=verification_id
        )
        count("TotpReplaced", basis=basis)
        logger.info("totp secret replaced", subject_ref=ref, basis=basis)
        return TotpSetUp(secret=secret, otpauth_uri=uri)

    def _proof(
        self,
        caller: CallerContext,
        subject_id: str,
        ref: str,
        session_id: str | None,
        token: str | None,
        now: datetime,
    ) -> tuple[str, str | None] | None:
        """(basis, the verification to spend) for a valid proof, None for none; a proof given is checked
        even when no secret exists yet, so that a tenant learns at once that its proofs are wrong."""
        if session_id is not None and token is not None:
            raise InvalidRequestError("pass one proof: proof_session_id or proof_result_token")
        if session_id is not None:
            session = self._sessions.find(caller.tenant_id, session_id) if ref_of(session_id) == ref else None
            if (
                session is None
                or session.status != "verified"
                or session.verified_method not in PROOF_METHODS
                or session.verification_id is None
                or session.verified_at is None
                or now.timestamp() >= session.verified_at + PROOF_LIFETIME.total_seconds()
            ):
                raise self._bad_proof(caller, ref, "session")
            return f"session:{session.verified_method}", session.verification_id
        if token is not None:
            claims = self._results.claims(token)
            if (
                claims is None
                or claims.get("typ") != "verification-result"
                or claims.get("iss") != self._issuer
                or claims.get("aud") != caller.tenant_id
                or claims.get("sub") != subject_id
                or claims.get("decision") != "match"
                or claims.get("method") not in PROOF_METHODS
                or not isinstance(claims.get("jti"), str)
                or not isinstance(claims.get("exp"), int)
                or now.timestamp() >= claims["exp"]
            ):
                raise self._bad_proof(caller, ref, "result_token")
            return f"result:{claims['method']}", str(claims["jti"])
        if "admin" in caller.scopes:
            return "admin", None
        return None

    def _bad_proof(self, caller: CallerContext, ref: str, kind: str) -> TotpReplacementRequiresProofError:
        self._auditor.record(caller, "fallback.totp_replaced", "refused", ref, basis=kind, reason="proof_invalid")
        count("TotpReplacementRefused")
        return TotpReplacementRequiresProofError(
            f"the {kind.replace('_', ' ')} is no proof: it must be a match of this subject by face, e-mail, SMS or "
            f"manual review, at most {int(PROOF_LIFETIME.total_seconds() // 60)} minutes old, and used once"
        )

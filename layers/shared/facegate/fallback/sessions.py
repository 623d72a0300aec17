"""Verification sessions: the methods a person may choose now. Every session offers at least one non-face
method (manual review always), so that no request can leave face as the only way."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime

from facegate.consent.ports import ConsentStates, Purposes
from facegate.core.audit import Auditor
from facegate.core.clock import Clock, iso, utcnow
from facegate.core.errors import SessionNotFoundError
from facegate.core.hashing import Subject
from facegate.core.observability import count, logger
from facegate.core.ports import Cipher
from facegate.core.tenancy import CallerContext
from facegate.fallback.budget import OtpGuessBudget, RateLimiter
from facegate.fallback.entities import SessionView, VerificationSession, new_id
from facegate.fallback.ports import SessionStore, TotpStore
from facegate.fallback.rules import SESSION_LIFETIME, epoch, remaining_methods, session_context, session_view
from facegate.matching.entities import LOCKOUT_FAILURES, LOCKOUT_WINDOW, usable_templates
from facegate.matching.ports import AttemptStore, TemplateStore


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
        self._auditor = auditor
        self._clock = clock

    def start(
        self,
        caller: CallerContext,
        subject: Subject,
        purpose: str,
        locale: str,
        email: str | None = None,
        phone: str | None = None,
    ) -> SessionView:
        """The methods this person may choose now. Face only with active consent, an enrolment and no
        lockout; manual review always, so that no request can leave face as the only way."""
        self._notices.purpose(caller.tenant_id, purpose)
        ref = subject.ref
        self._limiter.check(caller.tenant_id, ref, "sessions")
        now = self._clock()
        face, consent = self._face_available(caller.tenant_id, ref, purpose, now)
        methods = (["face"] if face else []) + self._non_face_methods(caller.tenant_id, ref, email, phone)
        session_id = new_id(ref)
        sealed = self._cipher.seal(
            json.dumps({"subject_id": subject.id, "email": email, "phone": phone}).encode(),
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
        return session_view(session)

    def get(self, caller: CallerContext, session_id: str) -> SessionView:
        session = self._sessions.find(caller.tenant_id, session_id)
        if session is None:
            raise SessionNotFoundError()
        view = session_view(session)
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

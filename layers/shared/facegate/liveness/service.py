"""Liveness: challenges issued per subject and purpose, judged once on a burst of frames, and the per-purpose
policy that decides whether a face may be used without one.

A session is bound to its subject (stored under the subject's keyed hash, so erasure finds it) and purpose,
valid for SESSION_SECONDS, and used at most once: one conditional write marks it used *before* the engine runs,
so two requests with the same session can never both be judged. The frames are decoded before that write, so a
burst that cannot be read costs the client nothing but the request.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from facegate.consent.ports import Purposes
from facegate.core.audit import Auditor
from facegate.core.clock import iso, utcnow
from facegate.core.errors import (
    FacegateError,
    InvalidRequestError,
    LivenessRequiredError,
    LivenessSessionExpiredError,
    LivenessSessionMismatchError,
    LivenessSessionUsedError,
)
from facegate.core.events import DomainEvents
from facegate.core.hashing import SubjectHasher
from facegate.core.observability import count, logger
from facegate.core.tenancy import CallerContext
from facegate.liveness.entities import (
    ACTIONS,
    CHALLENGE_LENGTH,
    MAX_FRAME_PIXELS,
    METHOD,
    NO_METHOD,
    SESSION_RECORD_SECONDS,
    SESSION_SECONDS,
    ClaimedBurst,
    LivenessOutcome,
    LivenessPolicy,
    LivenessProof,
    LivenessSession,
    Policy,
)
from facegate.liveness.ports import LivenessEngine, LivenessPolicies, LivenessSessions

DEFAULT_ALTERNATIVES = ["email_otp", "sms_otp", "totp", "manual_review"]


def random_challenge(choice: Callable[[Sequence[str]], str] = secrets.choice) -> tuple[str, ...]:
    """CHALLENGE_LENGTH distinct actions in a random order, from a cryptographic source."""
    pool = list(ACTIONS)
    picked = []
    for _ in range(CHALLENGE_LENGTH):
        action = choice(pool)
        pool.remove(action)
        picked.append(action)
    return tuple(picked)


def not_checked() -> LivenessOutcome:
    """A single photo where the purpose's policy is `optional`: no liveness was judged, and the result says so."""
    return LivenessOutcome(decision="not_checked", reasons=[], method=NO_METHOD)


class LivenessService:
    def __init__(
        self,
        sessions: LivenessSessions,
        policies: LivenessPolicies,
        notices: Purposes,
        hasher: SubjectHasher,
        auditor: Auditor,
        engine: Callable[[], LivenessEngine],
        clock: Callable[[], datetime] = utcnow,
        challenge: Callable[[], tuple[str, ...]] = random_challenge,
        events: DomainEvents | None = None,
    ) -> None:
        self._events = events  # webhooks: liveness.failed
        self._sessions = sessions
        self._policies = policies
        self._notices = notices
        self._hasher = hasher
        self._auditor = auditor
        self._engine = engine
        self._clock = clock
        self._challenge = challenge

    # -- sessions

    def start(self, caller: CallerContext, subject_id: str, purpose: str) -> LivenessSession:
        """A new challenge for this subject and purpose (the purpose must exist)."""
        self._notices.purpose(caller.tenant_id, purpose)
        ref = self._hasher.ref(caller.tenant_id, subject_id)
        now = self._clock()
        valid_until = int((now + timedelta(seconds=SESSION_SECONDS)).timestamp())
        session = LivenessSession(
            session_id=uuid.uuid4().hex,
            tenant_id=caller.tenant_id,
            subject_ref=ref,
            purpose=purpose,
            actions=self._challenge(),
            created_at=iso(now),
            valid_until=valid_until,
            expires_at=valid_until + SESSION_RECORD_SECONDS,
        )
        self._sessions.create(session)
        self._auditor.record(caller, "liveness.session_started", "ok", ref, purpose, session_id=session.session_id)
        count("LivenessSessionStarted")
        return session

    def claim(self, caller: CallerContext, subject_ref: str, purpose: str, proof: LivenessProof) -> ClaimedBurst:
        """Decode the frames, then use the session (once). Raises the session's and the decoding's errors."""
        if len(proof.frames) != len(proof.timestamps_ms):
            raise InvalidRequestError(
                "send one timestamp per frame",
                errors=[{"loc": ["body", "liveness", "timestamps_ms"], "msg": "one per frame", "type": "length"}],
            )
        session = self._sessions.get(caller.tenant_id, subject_ref, proof.session_id)
        if session is None or session.purpose != purpose:
            raise LivenessSessionMismatchError()
        self._refuse_unusable(session)
        images = self._engine().decode_frames(proof.frames, MAX_FRAME_PIXELS)
        now = self._clock()
        if not self._sessions.consume(session, int(now.timestamp()), iso(now)):
            current = self._sessions.get(caller.tenant_id, subject_ref, proof.session_id)
            self._refuse_unusable(current or replace(session, status="used"))
            raise LivenessSessionUsedError()  # the write was refused, so someone used it
        return ClaimedBurst(replace(session, status="used"), images, list(proof.timestamps_ms))

    def judge(self, caller: CallerContext, burst: ClaimedBurst, subject_id: str | None = None) -> LivenessOutcome:
        """The engine's decision on a claimed burst (audited with its reasons; numbers only in the log). A burst
        that is not live is announced (liveness.failed, with the tenant's subject id when the caller has it)."""
        session = burst.session
        judgement = self._engine().judge(burst.images, burst.timestamps_ms, session.actions)
        self._auditor.record(
            caller,
            "liveness.judged",
            judgement.decision,
            session.subject_ref,
            session.purpose,
            session_id=session.session_id,
            reasons=judgement.reasons,
        )
        count("LivenessJudged", decision=judgement.decision)
        logger.info(
            "liveness judged",
            subject_ref=session.subject_ref,
            purpose=session.purpose,
            decision=judgement.decision,
            reasons=judgement.reasons,
            details=judgement.details,
        )
        if self._events is not None and not judgement.live:
            self._events.liveness_failed(
                caller.tenant_id,
                session.purpose,
                session.session_id,
                judgement.decision,
                list(judgement.reasons),
                subject_id=subject_id,
            )
        return LivenessOutcome(
            decision=judgement.decision,
            reasons=list(judgement.reasons),
            method=METHOD,
            session_id=session.session_id,
            actions=session.actions,
            template=judgement.template if judgement.live else None,
        )

    def _refuse_unusable(self, session: LivenessSession) -> None:
        if session.status == "used":
            raise LivenessSessionUsedError()
        if int(self._clock().timestamp()) > session.valid_until:
            raise LivenessSessionExpiredError()

    # -- policy

    def policy(self, tenant_id: str, purpose: str) -> LivenessPolicy:
        """The purpose's policy; `required` unless a tenant admin made it optional (absent = required)."""
        return self._policies.get(tenant_id, purpose) or LivenessPolicy(purpose=purpose)

    def configure(self, caller: CallerContext, purpose: str, mode: Policy, reason: str | None) -> LivenessPolicy:
        """Set the purpose's policy; `optional` needs a reason. Every change is audited with its reason."""
        self._notices.purpose(caller.tenant_id, purpose)
        if mode == "optional" and not (reason or "").strip():
            raise InvalidRequestError(
                "making liveness optional needs a reason (liveness_reason)",
                errors=[{"loc": ["body", "liveness_reason"], "msg": "required with optional", "type": "missing"}],
            )
        policy = LivenessPolicy(
            purpose=purpose, mode=mode, reason=reason, updated_at=iso(self._clock()), updated_by=caller.client_id
        )
        self._policies.put(caller.tenant_id, policy)
        self._auditor.record(caller, "purpose.liveness_configured", mode, None, purpose, reason=reason)
        count("LivenessPolicySet", policy=mode)
        return policy

    def require(self, caller: CallerContext, purpose: str, proof: LivenessProof | None) -> LivenessOutcome | None:
        """Refuse a face without a liveness proof where the purpose requires one (offering the non-face methods);
        None when a proof was given (it is judged later), `not_checked` when the policy allows a single photo."""
        if proof is not None:
            return None
        if self.policy(caller.tenant_id, purpose).required:
            count("LivenessRequired")
            raise LivenessRequiredError(methods=self.alternatives(caller.tenant_id, purpose))
        return not_checked()

    def alternatives(self, tenant_id: str, purpose: str) -> list[str]:
        """The non-face methods the purpose's notice offers (always at least the defaults)."""
        for locale in ("en", "zh-CN"):
            try:
                return list(self._notices.current(tenant_id, purpose, locale).content["alternatives"])
            except FacegateError:
                continue
        return list(DEFAULT_ALTERNATIVES)

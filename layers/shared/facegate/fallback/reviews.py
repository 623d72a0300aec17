"""Manual review decisions by the tenant's operators (admin scope)."""

from __future__ import annotations

from dataclasses import replace

from facegate.core.audit import Auditor
from facegate.core.clock import Clock, iso, utcnow
from facegate.core.errors import ChallengeExpiredError, ReviewDecidedError, ReviewNotFoundError
from facegate.core.observability import count
from facegate.core.tenancy import CallerContext
from facegate.fallback.entities import Challenge
from facegate.fallback.ports import ChallengeStore


class ReviewService:
    """Manual reviews as the operator sees them: read one, decide it (once, before it expires). The person
    collects the decision through ChallengeService.verify."""

    def __init__(self, challenges: ChallengeStore, auditor: Auditor, clock: Clock = utcnow) -> None:
        self._challenges = challenges
        self._auditor = auditor
        self._clock = clock

    def get(self, caller: CallerContext, review_id: str) -> Challenge:
        challenge = self._challenges.find(caller.tenant_id, review_id)
        if challenge is None or challenge.method != "manual_review":
            raise ReviewNotFoundError()
        return challenge

    def decide(self, caller: CallerContext, review_id: str, decision: str, reason_code: str | None = None) -> Challenge:
        challenge = self.get(caller, review_id)
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

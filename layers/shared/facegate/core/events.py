"""Domain events that tenants receive as webhooks (verification decided, liveness failed, erasure completed).

Services announce what happened through `DomainEvents`; it puts a small detail on the EventBridge bus, where a
rule sends it to the webhook queue (facegate.webhooks). The detail names the tenant and, where the tenant gave it,
the tenant's own subject id (the tenant receives it back); never an image, an embedding, a score or a threshold.
Each detail carries a deterministic `event_id`, so an event published twice (a retried job) is delivered with the
same `webhook-id`.

Publishing is best effort: the decision already stands (signed, audited) when it is announced. When the bus is down
the event goes straight onto the webhook queue (FailoverPublisher, wired in facegate.wiring); if that fails too, the
webhook is lost, not the person's verification, and the failure is logged (without the subject) and counted.
"""

from __future__ import annotations

from typing import Any, Protocol

from facegate.core.errors import EventPublishError
from facegate.core.observability import count, logger

VERIFICATION_DECIDED = "VerificationDecided"
LIVENESS_FAILED = "LivenessFailed"
ERASURE_COMPLETED = "ErasureCompleted"
# Published by proctoring (source facegate.proctoring); listed here so that webhooks know every type.
PROCTORING_INCIDENT_OPENED = "ProctoringIncidentOpened"
PROCTORING_REPORT_READY = "ProctoringReportReady"

# Never in a detail: what would identify a face or help fake one.
NEVER_PUBLISHED = frozenset({"image", "embedding", "template", "score", "threshold", "frames", "subject_ref"})


class Publisher(Protocol):
    def publish(self, detail_type: str, detail: dict[str, Any]) -> None: ...


class FailoverPublisher:
    """Publishes through `primary` (the EventBridge bus) and, when that fails, through `fallback` (the queue the bus's
    rule would have delivered to). For events that must not be lost, such as ConsentWithdrawn, which starts an
    erasure. Raises EventPublishError only when both fail."""

    def __init__(self, primary: Publisher, fallback: Publisher) -> None:
        self._primary = primary
        self._fallback = fallback

    def publish(self, detail_type: str, detail: dict[str, Any]) -> None:
        try:
            self._primary.publish(detail_type, detail)
            return
        except EventPublishError:
            count("EventPublishedByFallback", detail_type=detail_type)
            logger.warning("event bus failed; event sent by the fallback queue", detail_type=detail_type)
        self._fallback.publish(detail_type, detail)


class DomainEvents:
    """Best-effort announcements of one source (facegate.matching, facegate.fallback, facegate.deletion)."""

    def __init__(self, publisher: Publisher) -> None:
        self._publisher = publisher

    def announce(self, detail_type: str, detail: dict[str, Any]) -> bool:
        leaked = NEVER_PUBLISHED & detail.keys()
        if leaked:
            raise ValueError(f"an event never carries {sorted(leaked)}")
        try:
            self._publisher.publish(detail_type, detail)
        except Exception as error:  # the decision stands; only its announcement is lost
            count("EventNotPublished", detail_type=detail_type)
            logger.warning("event not published", detail_type=detail_type, error=type(error).__name__)
            return False
        return True

    def verification_decided(
        self,
        tenant_id: str,
        subject_id: str,
        purpose: str,
        method: str,
        decision: str,
        verification_id: str,
        decided_at: int,
        liveness: str | None = None,
    ) -> bool:
        detail: dict[str, Any] = {
            "event_id": f"verification-{verification_id}",
            "tenant_id": tenant_id,
            "subject_id": subject_id,
            "purpose": purpose,
            "method": method,
            "decision": decision,
            "verification_id": verification_id,
            "decided_at": decided_at,
        }
        if liveness is not None:
            detail["liveness"] = liveness
        return self.announce(VERIFICATION_DECIDED, detail)

    def liveness_failed(
        self,
        tenant_id: str,
        purpose: str,
        session_id: str,
        decision: str,
        reasons: list[str],
        subject_id: str | None = None,
    ) -> bool:
        detail: dict[str, Any] = {
            "event_id": f"liveness-{session_id}",
            "tenant_id": tenant_id,
            "purpose": purpose,
            "liveness_session_id": session_id,
            "decision": decision,
            "reasons": list(reasons),
        }
        if subject_id is not None:
            detail["subject_id"] = subject_id
        return self.announce(LIVENESS_FAILED, detail)

    def erasure_completed(
        self, tenant_id: str, deletion_id: str, scope: str, purposes: list[str] | None, completed_at: str
    ) -> bool:
        """The erasure job names no subject once it completes: the tenant knows its deletion id."""
        return self.announce(
            ERASURE_COMPLETED,
            {
                "event_id": f"erasure-{deletion_id}",
                "tenant_id": tenant_id,
                "deletion_id": deletion_id,
                "scope": scope,
                "purposes": purposes or "all",
                "completed_at": completed_at,
            },
        )

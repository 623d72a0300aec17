"""Recording who did what to which hashed subject; every read of biometric data goes through here."""

from __future__ import annotations

import uuid
from typing import Any

from facegate.repositories.audit import AuditEvent, AuditRepository
from facegate.tenancy import CallerContext


class Auditor:
    def __init__(self, repository: AuditRepository) -> None:
        self._repository = repository

    def record(
        self,
        caller: CallerContext,
        action: str,
        outcome: str,
        subject_ref: str | None = None,
        purpose: str | None = None,
        **details: Any,
    ) -> None:
        self._repository.append(
            AuditEvent(
                event_id=uuid.uuid4().hex,
                tenant_id=caller.tenant_id,
                action=action,
                actor=caller.client_id,
                outcome=outcome,
                subject_ref=subject_ref,
                purpose=purpose,
                request_id=caller.request_id,
                details=details,
            )
        )

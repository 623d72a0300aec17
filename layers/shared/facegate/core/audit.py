"""The append-only audit log: who did what, to which (hashed) subject, for which purpose, when.

Every read of biometric data is recorded through the Auditor. No biometric data is ever written here; the
functions' IAM policies allow PutItem and nothing else on the audit table (facegate.core.dynamo).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol

from facegate.core.tenancy import CallerContext


@dataclass(frozen=True)
class AuditEvent:
    event_id: str
    tenant_id: str
    action: str
    actor: str
    outcome: str
    subject_ref: str | None = None
    purpose: str | None = None
    request_id: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    at: str = ""


class AuditLog(Protocol):
    def append(self, event: AuditEvent) -> None: ...


class Auditor:
    def __init__(self, repository: AuditLog) -> None:
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

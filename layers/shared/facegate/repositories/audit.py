"""The append-only audit log: who did what, to which (hashed) subject, for which purpose, when.

Items are only ever put with a does-not-exist condition; the functions' IAM policies allow PutItem
and nothing else on this table. No biometric data is ever written here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.models import Model

from facegate.repositories.base import bind, iso, subject_pk, utcnow


class AuditItem(Model):
    class Meta:
        table_name = ""

    pk = UnicodeAttribute(hash_key=True)  # T#<tenant>#S#<subject_ref> or T#<tenant>
    sk = UnicodeAttribute(range_key=True)  # <timestamp>#<event_id>
    tenant_id = UnicodeAttribute()
    action = UnicodeAttribute()
    actor = UnicodeAttribute()
    subject_ref = UnicodeAttribute(null=True)
    purpose = UnicodeAttribute(null=True)
    outcome = UnicodeAttribute()
    request_id = UnicodeAttribute(null=True)
    details = UnicodeAttribute(null=True)  # JSON; counts and codes, never biometrics
    at = UnicodeAttribute()
    expires_at = NumberAttribute()


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


class AuditRepository:
    def __init__(self, table_name: str, region: str, retention_days: int) -> None:
        bind(AuditItem, table_name, region)
        self._retention = timedelta(days=retention_days)

    def append(self, event: AuditEvent) -> None:
        now = utcnow()
        pk = subject_pk(event.tenant_id, event.subject_ref) if event.subject_ref else f"T#{event.tenant_id}"
        AuditItem(
            pk=pk,
            sk=f"{iso(now)}#{event.event_id}",
            tenant_id=event.tenant_id,
            action=event.action,
            actor=event.actor,
            subject_ref=event.subject_ref,
            purpose=event.purpose,
            outcome=event.outcome,
            request_id=event.request_id,
            details=json.dumps(event.details, sort_keys=True) if event.details else None,
            at=iso(now),
            expires_at=int((now + self._retention).timestamp()),
        ).save(condition=AuditItem.pk.does_not_exist())

    def for_subject(self, tenant_id: str, subject_ref: str) -> list[AuditEvent]:
        return [
            AuditEvent(
                event_id=item.sk.split("#", 1)[1],
                tenant_id=item.tenant_id,
                action=item.action,
                actor=item.actor,
                outcome=item.outcome,
                subject_ref=item.subject_ref,
                purpose=item.purpose,
                request_id=item.request_id,
                details=json.loads(item.details) if item.details else {},
                at=item.at,
            )
            for item in AuditItem.query(subject_pk(tenant_id, subject_ref))
        ]

"""Failed face attempts per subject and purpose, for the lockout (SessionsTable, TTL-expired)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pynamodb.attributes import ListAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.models import Model

from facegate.repositories.base import bind, subject_pk


class AttemptsItem(Model):
    class Meta:
        table_name = ""

    pk = UnicodeAttribute(hash_key=True)  # T#<tenant>#S#<subject_ref>
    sk = UnicodeAttribute(range_key=True)  # FACE_FAILURES#<purpose>
    failures = ListAttribute(of=NumberAttribute, default=list)  # epoch seconds of recent failures
    expires_at = NumberAttribute()


class AttemptRepository:
    def __init__(self, table_name: str, region: str) -> None:
        bind(AttemptsItem, table_name, region)

    def recent_failures(self, tenant_id: str, subject_ref: str, purpose: str, since: datetime) -> int:
        try:
            item = AttemptsItem.get(subject_pk(tenant_id, subject_ref), f"FACE_FAILURES#{purpose}")
        except AttemptsItem.DoesNotExist:
            return 0
        return sum(1 for at in item.failures if at >= since.timestamp())

    def add_failure(self, tenant_id: str, subject_ref: str, purpose: str, at: datetime, window: timedelta) -> None:
        key = (subject_pk(tenant_id, subject_ref), f"FACE_FAILURES#{purpose}")
        try:
            failures: list[Any] = [f for f in AttemptsItem.get(*key).failures if f >= (at - window).timestamp()]
        except AttemptsItem.DoesNotExist:
            failures = []
        failures.append(int(at.timestamp()))
        AttemptsItem(key[0], key[1], failures=failures[-20:], expires_at=int((at + window).timestamp())).save()

    def clear(self, tenant_id: str, subject_ref: str, purpose: str) -> None:
        AttemptsItem(subject_pk(tenant_id, subject_ref), f"FACE_FAILURES#{purpose}").delete()

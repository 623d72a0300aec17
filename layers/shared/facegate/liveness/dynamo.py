"""Liveness sessions (SessionsTable, under the subject's partition: erasure and TTL reach them) and per-purpose
liveness policies (TenantsTable, next to the purpose)."""

from __future__ import annotations

from pynamodb.attributes import ListAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import UpdateError
from pynamodb.models import Model

from facegate.core.dynamo import bind, is_condition_failure
from facegate.core.tenancy import subject_pk
from facegate.liveness.entities import LivenessPolicy, LivenessSession

SESSION_PREFIX = "LIVENESS#"
POLICY_PREFIX = "LIVENESS_POLICY#"


class LivenessSessionItem(Model):
    class Meta:
        table_name = ""

    pk = UnicodeAttribute(hash_key=True)  # T#<tenant>#S#<subject_ref>
    sk = UnicodeAttribute(range_key=True)  # LIVENESS#<session_id>
    purpose = UnicodeAttribute()  # a withdrawal of this purpose erases it with the purpose's face data
    actions = ListAttribute(of=UnicodeAttribute)
    status = UnicodeAttribute()  # open | used
    created_at = UnicodeAttribute()
    used_at = UnicodeAttribute(null=True)
    valid_until = NumberAttribute()  # epoch seconds
    expires_at = NumberAttribute()  # DynamoDB TTL


class LivenessPolicyItem(Model):
    class Meta:
        table_name = ""

    pk = UnicodeAttribute(hash_key=True)  # T#<tenant>
    sk = UnicodeAttribute(range_key=True)  # LIVENESS_POLICY#<purpose>
    mode = UnicodeAttribute()  # required | optional
    reason = UnicodeAttribute(null=True)
    updated_at = UnicodeAttribute()
    updated_by = UnicodeAttribute()


class DynamoLivenessSessions:
    def __init__(self, table_name: str, region: str) -> None:
        bind(LivenessSessionItem, table_name, region)

    def create(self, session: LivenessSession) -> None:
        LivenessSessionItem(
            subject_pk(session.tenant_id, session.subject_ref),
            SESSION_PREFIX + session.session_id,
            purpose=session.purpose,
            actions=list(session.actions),
            status=session.status,
            created_at=session.created_at,
            valid_until=session.valid_until,
            expires_at=session.expires_at,
        ).save(condition=LivenessSessionItem.sk.does_not_exist())

    def get(self, tenant_id: str, subject_ref: str, session_id: str) -> LivenessSession | None:
        try:
            item = LivenessSessionItem.get(
                subject_pk(tenant_id, subject_ref), SESSION_PREFIX + session_id, consistent_read=True
            )
        except LivenessSessionItem.DoesNotExist:
            return None
        return LivenessSession(
            session_id=session_id,
            tenant_id=tenant_id,
            subject_ref=subject_ref,
            purpose=item.purpose,
            actions=tuple(str(a) for a in item.actions or ()),
            created_at=item.created_at,
            valid_until=int(item.valid_until),
            expires_at=int(item.expires_at),
            status="used" if item.status == "used" else "open",
            used_at=item.used_at,
        )

    def consume(self, session: LivenessSession, now: int, used_at: str) -> bool:
        item = LivenessSessionItem(
            subject_pk(session.tenant_id, session.subject_ref), SESSION_PREFIX + session.session_id
        )
        try:
            item.update(
                actions=[LivenessSessionItem.status.set("used"), LivenessSessionItem.used_at.set(used_at)],
                condition=(LivenessSessionItem.status == "open")
                & (LivenessSessionItem.purpose == session.purpose)
                & (LivenessSessionItem.valid_until >= now),
            )
        except UpdateError as error:
            if is_condition_failure(error):
                return False
            raise
        return True


class DynamoLivenessPolicies:
    def __init__(self, table_name: str, region: str) -> None:
        bind(LivenessPolicyItem, table_name, region)

    def get(self, tenant_id: str, purpose: str) -> LivenessPolicy | None:
        try:
            item = LivenessPolicyItem.get(f"T#{tenant_id}", POLICY_PREFIX + purpose)
        except LivenessPolicyItem.DoesNotExist:
            return None
        return LivenessPolicy(
            purpose=purpose,
            mode="optional" if item.mode == "optional" else "required",
            reason=item.reason,
            updated_at=item.updated_at,
            updated_by=item.updated_by,
        )

    def put(self, tenant_id: str, policy: LivenessPolicy) -> None:
        LivenessPolicyItem(
            f"T#{tenant_id}",
            POLICY_PREFIX + policy.purpose,
            mode=policy.mode,
            reason=policy.reason,
            updated_at=policy.updated_at or "",
            updated_by=policy.updated_by or "",
        ).save()

"""Device sessions (SessionsTable, under the subject's partition: erasure of the subject and TTL reach them) and their
revocations (SessionsTable, under the tenant's partition: keyed by the session id alone, so that a tenant revokes
with the id it was given; they hold no subject data)."""

from __future__ import annotations

from pynamodb.attributes import ListAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.models import Model

from facegate.core.dynamo import bind
from facegate.core.tenancy import subject_pk
from facegate.devices.entities import DeviceSession
from facegate.devices.ports import SessionState

SESSION_PREFIX = "DEVICE#"
REVOCATION_PREFIX = "DEVICE_REVOKED#"


class DeviceSessionItem(Model):
    class Meta:
        table_name = ""

    pk = UnicodeAttribute(hash_key=True)  # T#<tenant>#S#<subject_ref>
    sk = UnicodeAttribute(range_key=True)  # DEVICE#<session_id>
    # Not named `purpose`: a withdrawal of the purpose (a refusal that ends a grant, too) erases the purpose's face
    # data, but must not end the device session, through which the person goes on with the non-face alternative
    # (a refusal never blocks the flow). Erasure of the subject removes it with the whole partition; TTL in any case.
    purpose = UnicodeAttribute(attr_name="device_purpose")
    operations = ListAttribute(of=UnicodeAttribute)
    created_at = UnicodeAttribute()
    valid_until = NumberAttribute()  # epoch seconds: the token's exp
    expires_at = NumberAttribute()  # DynamoDB TTL


class DeviceRevocationItem(Model):
    class Meta:
        table_name = ""

    pk = UnicodeAttribute(hash_key=True)  # T#<tenant>
    sk = UnicodeAttribute(range_key=True)  # DEVICE_REVOKED#<session_id>
    expires_at = NumberAttribute()  # DynamoDB TTL: after every token it can concern has expired


class DynamoDeviceSessions:
    def __init__(self, table_name: str, region: str) -> None:
        bind(DeviceSessionItem, table_name, region)
        bind(DeviceRevocationItem, table_name, region)

    def create(self, session: DeviceSession) -> None:
        DeviceSessionItem(
            subject_pk(session.tenant_id, session.subject_ref),
            SESSION_PREFIX + session.session_id,
            purpose=session.purpose,
            operations=list(session.operations),
            created_at=session.created_at,
            valid_until=session.valid_until,
            expires_at=session.expires_at,
        ).save(condition=DeviceSessionItem.sk.does_not_exist())

    def state(self, tenant_id: str, subject_ref: str, session_id: str, purpose: str) -> SessionState:
        try:
            DeviceRevocationItem.get(f"T#{tenant_id}", REVOCATION_PREFIX + session_id, consistent_read=True)
            return "revoked"
        except DeviceRevocationItem.DoesNotExist:
            pass
        try:
            item = DeviceSessionItem.get(
                subject_pk(tenant_id, subject_ref), SESSION_PREFIX + session_id, consistent_read=True
            )
        except DeviceSessionItem.DoesNotExist:
            return "unknown"
        return "active" if item.purpose == purpose else "unknown"

    def revoke(self, tenant_id: str, session_id: str, until: int) -> None:
        DeviceRevocationItem(f"T#{tenant_id}", REVOCATION_PREFIX + session_id, expires_at=until).save()

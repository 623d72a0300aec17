"""Enrolment jobs (JobsTable): pending → completed | failed with a reason code. No biometric data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pynamodb.attributes import BinaryAttribute, BooleanAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import UpdateError
from pynamodb.models import Model

from facegate.repositories.base import bind, conflict_from, subject_pk


class EnrolmentItem(Model):
    class Meta:
        table_name = ""

    pk = UnicodeAttribute(hash_key=True)  # T#<tenant>#S#<subject_ref>
    sk = UnicodeAttribute(range_key=True)  # ENROLMENT#<enrolment_id>
    tenant_id = UnicodeAttribute()
    subject_ref = UnicodeAttribute()
    purpose = UnicodeAttribute()
    status = UnicodeAttribute()
    reason = UnicodeAttribute(null=True)
    detail = UnicodeAttribute(null=True)
    template_id = UnicodeAttribute(null=True)
    model_id = UnicodeAttribute(null=True)
    model_version = UnicodeAttribute(null=True)
    template_expires_at = NumberAttribute(null=True)
    actor = UnicodeAttribute()
    subject_sealed = BinaryAttribute(legacy_encoding=False, null=True)
    consent_epoch = UnicodeAttribute(null=True)  # the consent period the enrolment was started under
    replace = BooleanAttribute(null=True)  # a deliberate replacement of the subject's templates
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()
    expires_at = NumberAttribute()  # the job record itself is kept for 30 days


@dataclass(frozen=True)
class Enrolment:
    enrolment_id: str
    tenant_id: str
    subject_ref: str
    purpose: str
    status: str
    actor: str
    created_at: str
    updated_at: str
    expires_at: int
    reason: str | None = None
    detail: str | None = None
    template_id: str | None = None
    model_id: str | None = None
    model_version: str | None = None
    template_expires_at: int | None = None
    subject_sealed: bytes | None = None
    consent_epoch: str | None = None
    replace: bool = False


def _key(tenant_id: str, subject_ref: str, enrolment_id: str) -> tuple[str, str]:
    return subject_pk(tenant_id, subject_ref), f"ENROLMENT#{enrolment_id}"


class EnrolmentRepository:
    def __init__(self, table_name: str, region: str) -> None:
        bind(EnrolmentItem, table_name, region)

    def create(self, job: Enrolment) -> None:
        pk, sk = _key(job.tenant_id, job.subject_ref, job.enrolment_id)
        EnrolmentItem(
            pk=pk,
            sk=sk,
            tenant_id=job.tenant_id,
            subject_ref=job.subject_ref,
            purpose=job.purpose,
            status=job.status,
            actor=job.actor,
            created_at=job.created_at,
            updated_at=job.updated_at,
            expires_at=job.expires_at,
            subject_sealed=job.subject_sealed,
            consent_epoch=job.consent_epoch,
            replace=job.replace or None,
        ).save(condition=EnrolmentItem.pk.does_not_exist())

    def get(self, tenant_id: str, subject_ref: str, enrolment_id: str) -> Enrolment | None:
        try:
            item = EnrolmentItem.get(*_key(tenant_id, subject_ref, enrolment_id))
        except EnrolmentItem.DoesNotExist:
            return None
        return Enrolment(
            enrolment_id=enrolment_id,
            tenant_id=item.tenant_id,
            subject_ref=item.subject_ref,
            purpose=item.purpose,
            status=item.status,
            actor=item.actor,
            created_at=item.created_at,
            updated_at=item.updated_at,
            expires_at=int(item.expires_at),
            reason=item.reason,
            detail=item.detail,
            template_id=item.template_id,
            model_id=item.model_id,
            model_version=item.model_version,
            template_expires_at=int(item.template_expires_at) if item.template_expires_at else None,
            subject_sealed=bytes(item.subject_sealed) if item.subject_sealed else None,
            consent_epoch=item.consent_epoch,
            replace=bool(item.replace),
        )

    def finish(self, job: Enrolment) -> None:
        """Move a pending job to its outcome; a job finishes once (a redelivered event changes nothing)."""
        pk, sk = _key(job.tenant_id, job.subject_ref, job.enrolment_id)
        item = EnrolmentItem(pk=pk, sk=sk)
        optional: list[tuple[Any, Any]] = [
            (EnrolmentItem.reason, job.reason),
            (EnrolmentItem.detail, job.detail),
            (EnrolmentItem.template_id, job.template_id),
            (EnrolmentItem.model_id, job.model_id),
            (EnrolmentItem.model_version, job.model_version),
            (EnrolmentItem.template_expires_at, job.template_expires_at),
        ]
        actions: list[Any] = [EnrolmentItem.status.set(job.status), EnrolmentItem.updated_at.set(job.updated_at)]
        actions += [attribute.set(value) for attribute, value in optional if value is not None]
        try:
            item.update(actions=actions, condition=EnrolmentItem.status == "pending")
        except UpdateError as error:
            raise conflict_from(error) from error

"""Enrolment jobs (JobsTable): pending → completed | failed with a reason code. No biometric data.

A pending job is in one of two phases, each with a deadline: `upload` (a presigned upload is awaited)
and `processing` (an image is being enrolled). Past its deadline nothing can still be working on it, so
it can be ended (see EnrolmentService): a crash never leaves a job pending for good.
"""

from __future__ import annotations

from typing import Any

from pynamodb.attributes import BinaryAttribute, BooleanAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import UpdateError
from pynamodb.expressions.condition import Condition
from pynamodb.models import Model

from facegate.core.dynamo import bind, conflict_from, is_condition_failure
from facegate.core.tenancy import subject_pk
from facegate.enrolment.entities import Enrolment

SORT_PREFIX = "ENROLMENT#"


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
    phase = UnicodeAttribute(null=True)  # while pending: "upload" | "processing"
    deadline = NumberAttribute(null=True)  # epoch seconds: the pending phase ends by then


def _key(tenant_id: str, subject_ref: str, enrolment_id: str) -> tuple[str, str]:
    return subject_pk(tenant_id, subject_ref), f"{SORT_PREFIX}{enrolment_id}"


def _job(item: EnrolmentItem) -> Enrolment:
    return Enrolment(
        enrolment_id=item.sk.removeprefix(SORT_PREFIX),
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
        phase=item.phase,
        deadline=int(item.deadline) if item.deadline is not None else None,
        consent_epoch=item.consent_epoch,
        replace=bool(item.replace),
    )


def _past_deadline(now: int) -> Condition:
    return (EnrolmentItem.deadline < now) | EnrolmentItem.deadline.does_not_exist()


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
            phase=job.phase,
            deadline=job.deadline,
            consent_epoch=job.consent_epoch,
            replace=job.replace or None,
        ).save(condition=EnrolmentItem.pk.does_not_exist())

    def get(self, tenant_id: str, subject_ref: str, enrolment_id: str) -> Enrolment | None:
        try:
            item = EnrolmentItem.get(*_key(tenant_id, subject_ref, enrolment_id), consistent_read=True)
        except EnrolmentItem.DoesNotExist:
            return None
        return _job(item)

    def claim(self, job: Enrolment, now: int, deadline: int) -> bool:
        """upload → processing, only if the job still awaits its upload and its upload deadline has not
        passed; False when another invocation claimed it first or the job ended meanwhile."""
        pk, sk = _key(job.tenant_id, job.subject_ref, job.enrolment_id)
        awaiting = (EnrolmentItem.phase == "upload") | EnrolmentItem.phase.does_not_exist()
        in_time = (EnrolmentItem.deadline >= now) | EnrolmentItem.deadline.does_not_exist()
        try:
            EnrolmentItem(pk=pk, sk=sk).update(
                actions=[EnrolmentItem.phase.set("processing"), EnrolmentItem.deadline.set(deadline)],
                condition=(EnrolmentItem.status == "pending") & awaiting & in_time,
            )
        except UpdateError as error:
            if is_condition_failure(error):
                return False
            raise
        return True

    def overdue(self, now: int) -> list[Enrolment]:
        """Pending jobs past their deadline, in every tenant (for the hourly sweep)."""
        condition = EnrolmentItem.sk.startswith(SORT_PREFIX) & (EnrolmentItem.status == "pending") & _past_deadline(now)
        return [_job(item) for item in EnrolmentItem.scan(filter_condition=condition)]

    def finish(self, job: Enrolment, overdue_at: int | None = None) -> None:
        """Move a pending job to its outcome; a job finishes once (a redelivered event changes nothing).
        With `overdue_at` (epoch seconds) only a job whose deadline is before then."""
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
        condition = EnrolmentItem.status == "pending"
        if overdue_at is not None:
            condition &= _past_deadline(overdue_at)
        try:
            item.update(actions=actions, condition=condition)
        except UpdateError as error:
            raise conflict_from(error) from error

"""Deletion jobs (JobsTable): queued → running → completed, with per-store counts and a receipt.

While a job runs it holds the subject's keyed hash; when it completes that attribute is removed, so
the finished job names no subject.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pynamodb.attributes import ListAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import PutError
from pynamodb.models import Model

from facegate.repositories.base import bind


class DeletionItem(Model):
    class Meta:
        table_name = ""

    pk = UnicodeAttribute(hash_key=True)  # T#<tenant>#DELETIONS
    sk = UnicodeAttribute(range_key=True)  # <deletion_id>
    tenant_id = UnicodeAttribute()
    subject_ref = UnicodeAttribute(null=True)  # removed on completion
    scope = UnicodeAttribute()  # subject | purpose
    purposes = ListAttribute(of=UnicodeAttribute, null=True)
    ended_epoch = UnicodeAttribute(null=True)  # a withdrawal: the consent period it ended
    status = UnicodeAttribute()
    counts = UnicodeAttribute(null=True)  # JSON {store: removed}
    receipt = UnicodeAttribute(null=True)
    requested_at = UnicodeAttribute()
    completed_at = UnicodeAttribute(null=True)
    seconds = NumberAttribute(null=True)


@dataclass
class DeletionJob:
    deletion_id: str
    tenant_id: str
    scope: str
    requested_at: str
    status: str = "queued"
    subject_ref: str | None = None
    purposes: list[str] | None = None
    ended_epoch: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    receipt: str | None = None
    completed_at: str | None = None
    seconds: float | None = None


def _pk(tenant_id: str) -> str:
    return f"T#{tenant_id}#DELETIONS"


class DeletionRepository:
    def __init__(self, table_name: str, region: str) -> None:
        bind(DeletionItem, table_name, region)

    def create(self, job: DeletionJob) -> bool:
        """False when a job with this id exists already (a redelivered event)."""
        try:
            DeletionItem(
                pk=_pk(job.tenant_id),
                sk=job.deletion_id,
                tenant_id=job.tenant_id,
                subject_ref=job.subject_ref,
                scope=job.scope,
                purposes=job.purposes,
                ended_epoch=job.ended_epoch,
                status=job.status,
                requested_at=job.requested_at,
            ).save(condition=DeletionItem.sk.does_not_exist())
        except PutError as error:
            if error.cause_response_code == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def get(self, tenant_id: str, deletion_id: str) -> DeletionJob | None:
        try:
            item = DeletionItem.get(_pk(tenant_id), deletion_id)
        except DeletionItem.DoesNotExist:
            return None
        return DeletionJob(
            deletion_id=deletion_id,
            tenant_id=item.tenant_id,
            scope=item.scope,
            requested_at=item.requested_at,
            status=item.status,
            subject_ref=item.subject_ref,
            purposes=[str(p) for p in item.purposes] if item.purposes else None,
            ended_epoch=item.ended_epoch,
            counts=json.loads(item.counts) if item.counts else {},
            receipt=item.receipt,
            completed_at=item.completed_at,
            seconds=float(item.seconds) if item.seconds is not None else None,
        )

    def mark_running(self, job: DeletionJob) -> None:
        DeletionItem(pk=_pk(job.tenant_id), sk=job.deletion_id).update(actions=[DeletionItem.status.set("running")])

    def complete(self, job: DeletionJob) -> None:
        actions: list[Any] = [
            DeletionItem.status.set("completed"),
            DeletionItem.counts.set(json.dumps(job.counts, sort_keys=True)),
            DeletionItem.receipt.set(job.receipt or ""),
            DeletionItem.completed_at.set(job.completed_at or ""),
            DeletionItem.seconds.set(job.seconds or 0),
            DeletionItem.subject_ref.remove(),
        ]
        DeletionItem(pk=_pk(job.tenant_id), sk=job.deletion_id).update(actions=actions)

    def all_for_tenant(self, tenant_id: str) -> list[DeletionJob]:
        return [job for item in DeletionItem.query(_pk(tenant_id)) if (job := self.get(tenant_id, item.sk)) is not None]

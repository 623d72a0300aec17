"""Encrypted face templates (TemplatesTable). Only ciphertext and model metadata are stored.

A subject's templates of a purpose are numbered (`seq`, in the sort key): a template is written only
under a number nobody holds yet (a conditional single-item put), so two concurrent enrolments can
never both pass the template cap or both skip comparing against each other (see EnrolmentService).
Templates written before numbering have a random id in the sort key and count as number 0.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from pynamodb.attributes import BinaryAttribute, BooleanAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import DeleteError, PutError, UpdateError
from pynamodb.models import Model

from facegate.core.dynamo import bind, conflict_from, is_condition_failure
from facegate.core.tenancy import subject_pk
from facegate.matching.entities import Reservation, ShardPointer, StoredTemplate


class TemplateItem(Model):
    class Meta:
        table_name = ""

    pk = UnicodeAttribute(hash_key=True)  # T#<tenant>#S#<subject_ref>
    sk = UnicodeAttribute(range_key=True)  # TEMPLATE#<purpose>#<seq, 6 digits> (older: #<template_id>)
    tenant_id = UnicodeAttribute()
    purpose = UnicodeAttribute()
    template_id = UnicodeAttribute()
    enrolment_id = UnicodeAttribute()
    model_id = UnicodeAttribute()
    model_version = UnicodeAttribute()
    ciphertext = BinaryAttribute(legacy_encoding=False)
    encrypted_key = BinaryAttribute(legacy_encoding=False)
    nonce = BinaryAttribute(legacy_encoding=False)
    subject_sealed = BinaryAttribute(legacy_encoding=False, null=True)  # the tenant's subject id, encrypted
    created_at = UnicodeAttribute()
    expires_at = NumberAttribute()  # epoch seconds; DynamoDB TTL
    consent_epoch = UnicodeAttribute(null=True)  # the consent period it was enrolled under
    seq = NumberAttribute(null=True)
    replacement = BooleanAttribute(null=True)  # a deliberate replacement: earlier templates are void


def template_sk(purpose: str, seq: int) -> str:
    return f"TEMPLATE#{purpose}#{seq:06d}"


class TemplateRepository:
    def __init__(self, table_name: str, region: str) -> None:
        bind(TemplateItem, table_name, region)

    def put(self, template: StoredTemplate) -> None:
        """Store the template under its number; ConflictError if another template holds that number."""
        try:
            TemplateItem(
                pk=subject_pk(template.tenant_id, template.subject_ref),
                sk=template_sk(template.purpose, template.seq),
                tenant_id=template.tenant_id,
                purpose=template.purpose,
                template_id=template.template_id,
                enrolment_id=template.enrolment_id,
                model_id=template.model_id,
                model_version=template.model_version,
                ciphertext=template.ciphertext,
                encrypted_key=template.encrypted_key,
                nonce=template.nonce,
                created_at=template.created_at,
                expires_at=template.expires_at,
                subject_sealed=template.subject_sealed,
                consent_epoch=template.consent_epoch,
                seq=template.seq,
                replacement=template.replacement or None,
            ).save(condition=TemplateItem.sk.does_not_exist())
        except PutError as error:
            raise conflict_from(error) from error

    def delete(self, template: StoredTemplate) -> bool:
        """Delete this very template (not another one written under the same number since); False if gone."""
        try:
            TemplateItem(subject_pk(template.tenant_id, template.subject_ref), _sk(template)).delete(
                condition=TemplateItem.template_id == template.template_id
            )
        except DeleteError as error:
            if error.cause_response_code == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def for_subject(
        self, tenant_id: str, subject_ref: str, purpose: str, consistent: bool = False
    ) -> list[StoredTemplate]:
        items = TemplateItem.query(
            subject_pk(tenant_id, subject_ref),
            TemplateItem.sk.startswith(f"TEMPLATE#{purpose}#"),
            consistent_read=consistent,
        )
        return [_stored(item) for item in items]

    def all_for_purpose(self, tenant_id: str, purpose: str) -> list[StoredTemplate]:
        """Every template of a tenant's purpose (a scan: for building a gallery when 1:N is enabled)."""
        items = TemplateItem.scan((TemplateItem.tenant_id == tenant_id) & (TemplateItem.purpose == purpose))
        return [_stored(item) for item in items]


def _stored(item: TemplateItem) -> StoredTemplate:
    return StoredTemplate(
        tenant_id=item.tenant_id,
        subject_ref=item.pk.split("#S#", 1)[1],
        purpose=item.purpose,
        template_id=item.template_id,
        enrolment_id=item.enrolment_id,
        model_id=item.model_id,
        model_version=item.model_version,
        ciphertext=bytes(item.ciphertext),
        encrypted_key=bytes(item.encrypted_key),
        nonce=bytes(item.nonce),
        created_at=item.created_at,
        expires_at=int(item.expires_at),
        subject_sealed=bytes(item.subject_sealed) if item.subject_sealed else None,
        consent_epoch=item.consent_epoch,
        seq=int(item.seq) if item.seq is not None else 0,
        replacement=bool(item.replacement),
    )


def _sk(template: StoredTemplate) -> str:
    return (
        template_sk(template.purpose, template.seq)
        if template.seq
        else f"TEMPLATE#{template.purpose}#{template.template_id}"
    )


class AttemptsItem(Model):
    class Meta:
        table_name = ""

    pk = UnicodeAttribute(hash_key=True)  # T#<tenant>#S#<subject_ref>
    sk = UnicodeAttribute(range_key=True)  # FACE_ATTEMPTS#<purpose>
    attempts = NumberAttribute(null=True)  # reserved or failed attempts in the current window
    window_start = NumberAttribute(null=True)  # epoch seconds
    window_id = UnicodeAttribute(null=True)  # names the window, so a late release cannot touch a newer one
    expires_at = NumberAttribute(null=True)  # TTL: the end of the window


def _key(tenant_id: str, subject_ref: str, purpose: str) -> tuple[str, str]:
    return subject_pk(tenant_id, subject_ref), f"FACE_ATTEMPTS#{purpose}"


class AttemptRepository:
    def __init__(self, table_name: str, region: str) -> None:
        bind(AttemptsItem, table_name, region)

    def reserve(
        self, tenant_id: str, subject_ref: str, purpose: str, at: datetime, limit: int, window: timedelta
    ) -> Reservation | None:
        """Count one attempt if fewer than `limit` were counted in the current window; None if not (locked).

        Two single-item conditional updates, never a read-then-write: (1) add one to a current window
        below the limit; else (2) open a new window if there is none or it has ended. If both are
        refused, the window is current and full, unless another request opened a new window between
        the two: then (1) is tried again.
        """
        now = int(at.timestamp())
        floor = int((at - window).timestamp())
        for _ in range(3):
            item = AttemptsItem(*_key(tenant_id, subject_ref, purpose))
            try:
                item.update(
                    actions=[AttemptsItem.attempts.add(1)],
                    condition=(AttemptsItem.window_start > floor) & (AttemptsItem.attempts < limit),
                )
                return Reservation(tenant_id, subject_ref, purpose, str(item.window_id))
            except UpdateError as error:
                if not is_condition_failure(error):
                    raise
            window_id = uuid.uuid4().hex
            try:
                item.update(
                    actions=[
                        AttemptsItem.attempts.set(1),
                        AttemptsItem.window_start.set(now),
                        AttemptsItem.window_id.set(window_id),
                        AttemptsItem.expires_at.set(now + int(window.total_seconds())),
                    ],
                    condition=AttemptsItem.window_start.does_not_exist() | (AttemptsItem.window_start <= floor),
                )
                return Reservation(tenant_id, subject_ref, purpose, window_id)
            except UpdateError as error:
                if not is_condition_failure(error):
                    raise
            if self.recent_failures(tenant_id, subject_ref, purpose, at - window) >= limit:
                return None
        return None

    def release(self, reservation: Reservation) -> None:
        """Give an attempt back (it ended before a decision); a no-op if its window was cleared or replaced."""
        item = AttemptsItem(*_key(reservation.tenant_id, reservation.subject_ref, reservation.purpose))
        try:
            item.update(
                actions=[AttemptsItem.attempts.add(-1)],
                condition=(AttemptsItem.window_id == reservation.window_id) & (AttemptsItem.attempts > 0),
            )
        except UpdateError as error:
            if not is_condition_failure(error):
                raise

    def recent_failures(self, tenant_id: str, subject_ref: str, purpose: str, since: datetime) -> int:
        """Attempts counted in a window opened after `since` (in-flight reservations included)."""
        try:
            item = AttemptsItem.get(*_key(tenant_id, subject_ref, purpose), consistent_read=True)
        except AttemptsItem.DoesNotExist:
            return 0
        if item.window_start is None or item.window_start <= int(since.timestamp()):
            return 0
        return int(item.attempts or 0)

    def clear(self, tenant_id: str, subject_ref: str, purpose: str) -> None:
        """A match ends the window: the subject proved who they are."""
        AttemptsItem(*_key(tenant_id, subject_ref, purpose)).delete()


class GalleryShardItem(Model):
    class Meta:
        table_name = ""

    pk = UnicodeAttribute(hash_key=True)  # GALLERY#<tenant>#<purpose>#<model>
    sk = UnicodeAttribute(range_key=True)  # SHARD#<nnnn>
    version = NumberAttribute()
    object_key = UnicodeAttribute()
    rows = NumberAttribute()


class GalleryIndexItem(Model):
    """One item per gallery of a tenant, so erasure finds a tenant's galleries by key, not by scanning."""

    class Meta:
        table_name = ""

    pk = UnicodeAttribute(hash_key=True)  # GALLERIES#<tenant>
    sk = UnicodeAttribute(range_key=True)  # <purpose>#<model>


class GalleryRepository:
    def __init__(self, table_name: str, region: str) -> None:
        bind(GalleryShardItem, table_name, region)
        bind(GalleryIndexItem, table_name, region)

    def shards(self, gallery: str) -> list[ShardPointer]:
        return [
            ShardPointer(int(item.sk.removeprefix("SHARD#")), int(item.version), item.object_key, int(item.rows))
            for item in GalleryShardItem.query(f"GALLERY#{gallery}", consistent_read=True)
        ]

    def galleries_of(self, tenant_id: str, prefix: str = "") -> list[str]:
        """Gallery keys of a tenant, optionally of one purpose (`prefix` = "<purpose>#")."""
        condition = GalleryIndexItem.sk.startswith(prefix) if prefix else None
        return [f"{tenant_id}#{item.sk}" for item in GalleryIndexItem.query(f"GALLERIES#{tenant_id}", condition)]

    def advance(self, gallery: str, pointer: ShardPointer, previous: int | None) -> None:
        """Point the shard at its new object, only if nobody else moved it since `previous`."""
        condition = GalleryShardItem.sk.does_not_exist() if previous is None else GalleryShardItem.version == previous
        if previous is None:  # a new shard, maybe a new gallery: make sure the tenant's index names it
            tenant_id, rest = gallery.split("#", 1)
            GalleryIndexItem(pk=f"GALLERIES#{tenant_id}", sk=rest).save()
        try:
            GalleryShardItem(
                pk=f"GALLERY#{gallery}",
                sk=f"SHARD#{pointer.shard_no:04d}",
                version=pointer.version,
                object_key=pointer.object_key,
                rows=pointer.rows,
            ).save(condition=condition)
        except PutError as error:
            raise conflict_from(error) from error

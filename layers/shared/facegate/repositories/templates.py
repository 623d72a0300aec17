"""Encrypted face templates (TemplatesTable). Only ciphertext and model metadata are stored.

A subject's templates of a purpose are numbered (`seq`, in the sort key): a template is written only
under a number nobody holds yet (a conditional single-item put), so two concurrent enrolments can
never both pass the template cap or both skip comparing against each other (see EnrolmentService).
Templates written before numbering have a random id in the sort key and count as number 0.
"""

from __future__ import annotations

from dataclasses import dataclass

from pynamodb.attributes import BinaryAttribute, BooleanAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import DeleteError, PutError
from pynamodb.models import Model

from facegate.repositories.base import bind, conflict_from, subject_pk


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


@dataclass(frozen=True)
class StoredTemplate:
    tenant_id: str
    subject_ref: str
    purpose: str
    template_id: str
    enrolment_id: str
    model_id: str
    model_version: str
    ciphertext: bytes
    encrypted_key: bytes
    nonce: bytes
    created_at: str
    expires_at: int
    subject_sealed: bytes | None = None
    consent_epoch: str | None = None
    seq: int = 0
    replacement: bool = False


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

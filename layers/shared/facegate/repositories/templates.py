"""Encrypted face templates (TemplatesTable). Only ciphertext and model metadata are stored."""

from __future__ import annotations

from dataclasses import dataclass

from pynamodb.attributes import BinaryAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.models import Model

from facegate.repositories.base import bind, subject_pk


class TemplateItem(Model):
    class Meta:
        table_name = ""

    pk = UnicodeAttribute(hash_key=True)  # T#<tenant>#S#<subject_ref>
    sk = UnicodeAttribute(range_key=True)  # TEMPLATE#<purpose>#<template_id>
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


class TemplateRepository:
    def __init__(self, table_name: str, region: str) -> None:
        bind(TemplateItem, table_name, region)

    def put(self, template: StoredTemplate) -> None:
        TemplateItem(
            pk=subject_pk(template.tenant_id, template.subject_ref),
            sk=f"TEMPLATE#{template.purpose}#{template.template_id}",
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
        ).save(condition=TemplateItem.sk.does_not_exist())

    def for_subject(self, tenant_id: str, subject_ref: str, purpose: str) -> list[StoredTemplate]:
        items = TemplateItem.query(
            subject_pk(tenant_id, subject_ref), TemplateItem.sk.startswith(f"TEMPLATE#{purpose}#")
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
    )

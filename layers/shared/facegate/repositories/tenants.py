"""Tenants, their app clients, purposes and versioned notices (the TenantsTable)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pynamodb.attributes import BooleanAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import PutError
from pynamodb.models import Model

from facegate.repositories.base import bind, conflict_from


class ClientItem(Model):
    """Maps a Cognito app client (the token's client_id) to the tenant it belongs to."""

    class Meta:
        table_name = ""

    pk = UnicodeAttribute(hash_key=True)  # CLIENT#<client_id>
    sk = UnicodeAttribute(range_key=True)  # TENANT
    tenant_id = UnicodeAttribute()


class PurposeItem(Model):
    class Meta:
        table_name = ""

    pk = UnicodeAttribute(hash_key=True)  # T#<tenant>
    sk = UnicodeAttribute(range_key=True)  # PURPOSE#<purpose>
    name = UnicodeAttribute()
    display_name = UnicodeAttribute()
    retention_days = NumberAttribute(default=365)
    assessment_id = UnicodeAttribute(null=True)
    identification_enabled = BooleanAttribute(default=False)
    identification_assessment_id = UnicodeAttribute(null=True)
    expose_scores = BooleanAttribute(default=False)


class NoticeItem(Model):
    class Meta:
        table_name = ""

    pk = UnicodeAttribute(hash_key=True)  # T#<tenant>
    sk = UnicodeAttribute(range_key=True)  # NOTICE#<purpose>#<locale>#v<000001>
    purpose = UnicodeAttribute()
    locale = UnicodeAttribute()
    version = NumberAttribute()
    sha256 = UnicodeAttribute()
    content = UnicodeAttribute()  # canonical JSON of the notice's text fields
    created_at = UnicodeAttribute()
    created_by = UnicodeAttribute()


@dataclass(frozen=True)
class Purpose:
    name: str
    display_name: str
    retention_days: int
    assessment_id: str | None = None
    identification_enabled: bool = False
    identification_assessment_id: str | None = None
    expose_scores: bool = False  # verification/identification answers carry raw scores (audited)


@dataclass(frozen=True)
class Notice:
    purpose: str
    locale: str
    version: int
    sha256: str
    content: dict[str, Any] = field(default_factory=dict)
    created_at: str = ""


def _tenant_pk(tenant_id: str) -> str:
    return f"T#{tenant_id}"


def _notice_prefix(purpose: str, locale: str) -> str:
    return f"NOTICE#{purpose}#{locale}#v"


class TenantRepository:
    """Reads and writes tenant configuration; notices are append-only versions."""

    def __init__(self, table_name: str, region: str) -> None:
        for model in (ClientItem, PurposeItem, NoticeItem):
            bind(model, table_name, region)

    def tenant_for_client(self, client_id: str) -> str | None:
        try:
            return ClientItem.get(f"CLIENT#{client_id}", "TENANT").tenant_id
        except ClientItem.DoesNotExist:
            return None

    def register_client(self, client_id: str, tenant_id: str) -> None:
        ClientItem(pk=f"CLIENT#{client_id}", sk="TENANT", tenant_id=tenant_id).save()

    def get_purpose(self, tenant_id: str, purpose: str) -> Purpose | None:
        try:
            item = PurposeItem.get(_tenant_pk(tenant_id), f"PURPOSE#{purpose}")
        except PurposeItem.DoesNotExist:
            return None
        return Purpose(
            name=item.name,
            display_name=item.display_name,
            retention_days=int(item.retention_days),
            assessment_id=item.assessment_id,
            identification_enabled=bool(item.identification_enabled),
            identification_assessment_id=item.identification_assessment_id,
            expose_scores=bool(item.expose_scores),
        )

    def put_purpose(self, tenant_id: str, purpose: Purpose) -> None:
        PurposeItem(
            pk=_tenant_pk(tenant_id),
            sk=f"PURPOSE#{purpose.name}",
            name=purpose.name,
            display_name=purpose.display_name,
            retention_days=purpose.retention_days,
            assessment_id=purpose.assessment_id,
            identification_enabled=purpose.identification_enabled,
            identification_assessment_id=purpose.identification_assessment_id,
            expose_scores=purpose.expose_scores,
        ).save()

    def purposes(self, tenant_id: str) -> list[Purpose]:
        return [
            p
            for item in PurposeItem.query(_tenant_pk(tenant_id), PurposeItem.sk.startswith("PURPOSE#"))
            if (p := self.get_purpose(tenant_id, item.name)) is not None
        ]

    def latest_notice(self, tenant_id: str, purpose: str, locale: str) -> Notice | None:
        items = NoticeItem.query(
            _tenant_pk(tenant_id),
            NoticeItem.sk.startswith(_notice_prefix(purpose, locale)),
            scan_index_forward=False,
            limit=1,
        )
        for item in items:
            return _notice(item)
        return None

    def get_notice(self, tenant_id: str, purpose: str, locale: str, version: int) -> Notice | None:
        try:
            item = NoticeItem.get(_tenant_pk(tenant_id), f"{_notice_prefix(purpose, locale)}{version:06d}")
        except NoticeItem.DoesNotExist:
            return None
        return _notice(item)

    def add_notice(self, tenant_id: str, notice: Notice, created_by: str) -> None:
        """Store a new version; never overwrites one (a lost race is a ConflictError)."""
        item = NoticeItem(
            pk=_tenant_pk(tenant_id),
            sk=f"{_notice_prefix(notice.purpose, notice.locale)}{notice.version:06d}",
            purpose=notice.purpose,
            locale=notice.locale,
            version=notice.version,
            sha256=notice.sha256,
            content=json.dumps(notice.content, ensure_ascii=False, sort_keys=True),
            created_at=notice.created_at,
            created_by=created_by,
        )
        try:
            item.save(condition=NoticeItem.sk.does_not_exist())
        except PutError as error:
            raise conflict_from(error) from error


def _notice(item: NoticeItem) -> Notice:
    return Notice(
        purpose=item.purpose,
        locale=item.locale,
        version=int(item.version),
        sha256=item.sha256,
        content=json.loads(item.content),
        created_at=item.created_at,
    )

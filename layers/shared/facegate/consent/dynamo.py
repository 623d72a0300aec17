"""Consent records: an append-only, hash-chained history per subject plus the current state per purpose.

Keys hold only the subject's keyed hash (`subject_ref`), never the tenant's raw subject id.

A purpose's state also names its *consent epoch*: the record id of the grant that began the current
uninterrupted granted period. Face data is stamped with the epoch it was enrolled under and is usable
only while the state is granted with that same epoch (see facegate.matching.entities.usable_templates).
"""

from __future__ import annotations

import json
from dataclasses import replace

from pynamodb.attributes import BooleanAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import PutError, TransactWriteError
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from facegate.consent.entities import GENESIS_HASH, ConsentRecord, ConsentState, Notice, Purpose
from facegate.core.dynamo import bind, conflict_from, connection
from facegate.core.tenancy import subject_pk


class ConsentEventItem(Model):
    class Meta:
        table_name = ""

    pk = UnicodeAttribute(hash_key=True)  # T#<tenant>#S#<subject_ref>
    sk = UnicodeAttribute(range_key=True)  # EVENT#<created_at>#<record_id>
    record_id = UnicodeAttribute()
    purpose = UnicodeAttribute()
    action = UnicodeAttribute()  # granted | refused | withdrawn
    notice_version = NumberAttribute()
    notice_sha256 = UnicodeAttribute()
    locale = UnicodeAttribute()
    channel = UnicodeAttribute()
    age_band = UnicodeAttribute()
    guardian = UnicodeAttribute(null=True)  # JSON
    created_at = UnicodeAttribute()
    prev_hash = UnicodeAttribute()
    record_hash = UnicodeAttribute()
    receipt = UnicodeAttribute()
    request_id = UnicodeAttribute(null=True)


class ConsentStateItem(Model):
    class Meta:
        table_name = ""

    pk = UnicodeAttribute(hash_key=True)  # T#<tenant>#S#<subject_ref>
    sk = UnicodeAttribute(range_key=True)  # STATE#<purpose>
    purpose = UnicodeAttribute()
    status = UnicodeAttribute()
    record_id = UnicodeAttribute()
    notice_version = NumberAttribute()
    notice_sha256 = UnicodeAttribute()
    age_band = UnicodeAttribute()
    updated_at = UnicodeAttribute()
    # Set while granted; absent on states written before epochs existed (derived from the history).
    epoch = UnicodeAttribute(null=True)
    epoch_started_at = UnicodeAttribute(null=True)


class ConsentHeadItem(Model):
    """The head of the subject's hash chain: the guard that keeps the chain linear under races."""

    class Meta:
        table_name = ""

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)  # HEAD
    head_hash = UnicodeAttribute()
    records = NumberAttribute()


class ConsentRepository:
    def __init__(self, table_name: str, region: str) -> None:
        # One connection (one botocore client) for all transactions of this warm container.
        self._connection = connection(region)
        for model in (ConsentEventItem, ConsentStateItem, ConsentHeadItem):
            bind(model, table_name, region)

    def head(self, tenant_id: str, subject_ref: str) -> str:
        try:
            return ConsentHeadItem.get(subject_pk(tenant_id, subject_ref), "HEAD", consistent_read=True).head_hash
        except ConsentHeadItem.DoesNotExist:
            return GENESIS_HASH

    def append(
        self,
        record: ConsentRecord,
        status: str,
        epoch: str | None = None,
        epoch_started_at: str | None = None,
        previous_record_id: str | None = None,
    ) -> None:
        """Append a record and move the purpose's state, atomically, only if the chain head and the
        purpose's state are unchanged (the epoch was derived from `previous_record_id`'s state)."""
        pk = subject_pk(record.tenant_id, record.subject_ref)
        event = ConsentEventItem(
            pk=pk,
            sk=f"EVENT#{record.created_at}#{record.record_id}",
            record_id=record.record_id,
            purpose=record.purpose,
            action=record.action,
            notice_version=record.notice_version,
            notice_sha256=record.notice_sha256,
            locale=record.locale,
            channel=record.channel,
            age_band=record.age_band,
            guardian=json.dumps(record.guardian, ensure_ascii=False) if record.guardian else None,
            created_at=record.created_at,
            prev_hash=record.prev_hash,
            record_hash=record.record_hash,
            receipt=record.receipt,
            request_id=record.request_id,
        )
        state = ConsentStateItem(
            pk=pk,
            sk=f"STATE#{record.purpose}",
            purpose=record.purpose,
            status=status,
            record_id=record.record_id,
            notice_version=record.notice_version,
            notice_sha256=record.notice_sha256,
            age_band=record.age_band,
            updated_at=record.created_at,
            epoch=epoch,
            epoch_started_at=epoch_started_at,
        )
        state_condition = (
            ConsentStateItem.sk.does_not_exist()
            if previous_record_id is None
            else ConsentStateItem.record_id == previous_record_id
        )
        head_condition = (
            ConsentHeadItem.pk.does_not_exist()
            if record.prev_hash == GENESIS_HASH
            else ConsentHeadItem.head_hash == record.prev_hash
        )
        try:
            with TransactWrite(connection=self._connection) as tx:
                tx.update(
                    ConsentHeadItem(pk=pk, sk="HEAD"),
                    actions=[
                        ConsentHeadItem.head_hash.set(record.record_hash),
                        ConsentHeadItem.records.add(1),
                    ],
                    condition=head_condition,
                )
                tx.save(event, condition=ConsentEventItem.sk.does_not_exist())
                tx.save(state, condition=state_condition)
        except TransactWriteError as error:
            raise conflict_from(error) from error

    def states(self, tenant_id: str, subject_ref: str) -> list[ConsentState]:
        items = ConsentStateItem.query(subject_pk(tenant_id, subject_ref), ConsentStateItem.sk.startswith("STATE#"))
        return [_state(item) for item in items]

    def state(self, tenant_id: str, subject_ref: str, purpose: str) -> ConsentState | None:
        """The purpose's current state (a strongly consistent read: a withdrawal counts at once)."""
        try:
            item = ConsentStateItem.get(subject_pk(tenant_id, subject_ref), f"STATE#{purpose}", consistent_read=True)
        except ConsentStateItem.DoesNotExist:
            return None
        state = _state(item)
        if state.status == "granted" and state.epoch is None:
            state = self._derive_epoch(tenant_id, subject_ref, state)
        return state

    def _derive_epoch(self, tenant_id: str, subject_ref: str, state: ConsentState) -> ConsentState:
        """A state written before epochs existed: its epoch is the first grant of the trailing run of
        grants of that purpose in the history (the history is ordered by time)."""
        start: ConsentRecord | None = None
        for record in reversed(self.history(tenant_id, subject_ref)):
            if record.purpose != state.purpose:
                continue
            if record.action != "granted":
                break
            start = record
        if start is None:  # no history to read it from: the state's own record began the period
            return replace(state, epoch=state.record_id, epoch_started_at=state.updated_at)
        return replace(state, epoch=start.record_id, epoch_started_at=start.created_at)

    def history(self, tenant_id: str, subject_ref: str) -> list[ConsentRecord]:
        items = ConsentEventItem.query(subject_pk(tenant_id, subject_ref), ConsentEventItem.sk.startswith("EVENT#"))
        return [_record(tenant_id, subject_ref, item) for item in items]


def _state(item: ConsentStateItem) -> ConsentState:
    return ConsentState(
        purpose=item.purpose,
        status=item.status,
        record_id=item.record_id,
        notice_version=int(item.notice_version),
        notice_sha256=item.notice_sha256,
        age_band=item.age_band,
        updated_at=item.updated_at,
        epoch=item.epoch,
        epoch_started_at=item.epoch_started_at,
    )


def _record(tenant_id: str, subject_ref: str, item: ConsentEventItem) -> ConsentRecord:
    return ConsentRecord(
        record_id=item.record_id,
        tenant_id=tenant_id,
        subject_ref=subject_ref,
        purpose=item.purpose,
        action=item.action,
        notice_version=int(item.notice_version),
        notice_sha256=item.notice_sha256,
        locale=item.locale,
        channel=item.channel,
        age_band=item.age_band,
        guardian=json.loads(item.guardian) if item.guardian else None,
        created_at=item.created_at,
        prev_hash=item.prev_hash,
        record_hash=item.record_hash,
        receipt=item.receipt,
        request_id=item.request_id,
    )


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

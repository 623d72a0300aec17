"""Consent records: an append-only, hash-chained history per subject plus the current state per purpose.

Keys hold only the subject's keyed hash (`subject_ref`), never the tenant's raw subject id.

A purpose's state also names its *consent epoch*: the record id of the grant that began the current
uninterrupted granted period. Face data is stamped with the epoch it was enrolled under and is usable
only while the state is granted with that same epoch (see facegate.services.face_data).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import TransactWriteError
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from facegate.repositories.base import bind, conflict_from, connection, subject_pk

GENESIS_HASH = "0" * 64


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


@dataclass(frozen=True)
class ConsentRecord:
    record_id: str
    tenant_id: str
    subject_ref: str
    purpose: str
    action: str
    notice_version: int
    notice_sha256: str
    locale: str
    channel: str
    age_band: str
    guardian: dict[str, Any] | None
    created_at: str
    prev_hash: str
    record_hash: str = ""
    receipt: str = ""
    request_id: str | None = None


@dataclass(frozen=True)
class ConsentState:
    purpose: str
    status: str
    record_id: str
    notice_version: int
    notice_sha256: str
    age_band: str
    updated_at: str
    epoch: str | None = None  # the record id of the grant that began the current granted period
    epoch_started_at: str | None = None  # that grant's created_at

    @property
    def active(self) -> bool:
        return self.status == "granted" and self.epoch is not None


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

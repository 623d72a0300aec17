"""Proctoring sessions and incidents (ProctoringTable).

One partition per session (`T#<tenant>#PROCTOR#<session_id>`), so every request of a session reads and writes it
strongly consistently by id: the session item (`SESSION`) and one item per incident (`INCIDENT#<id>`). The session
item alone carries `subject_pk` (`T#<tenant>#S#<subject_ref>`), the key of the sparse index `BySubject` through
which erasure finds a subject's sessions. Every item carries the purpose, the session's start (`created_at`,
erasure's cutoff compares it) and the purpose's retention as `expires_at` (TTL). No frame is ever written.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pynamodb.attributes import BooleanAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import DeleteError, TransactWriteError, UpdateError
from pynamodb.indexes import GlobalSecondaryIndex, KeysOnlyProjection
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from facegate.core.dynamo import bind, connection, is_condition_failure
from facegate.core.tenancy import subject_pk
from facegate.proctoring.entities import IncidentRecord, ProctoringSession

SESSION_SK = "SESSION"
INCIDENT_PREFIX = "INCIDENT#"
BATCH_PREFIX = "BATCH#"  # an applied batch's digest and answer (no frame), for its retries


def batch_sk(sequence: int) -> str:
    return f"{BATCH_PREFIX}{sequence:08d}"


INDEX = "BySubject"


def session_pk(tenant_id: str, session_id: str) -> str:
    return f"T#{tenant_id}#PROCTOR#{session_id}"


class BySubjectIndex(GlobalSecondaryIndex["ProctoringItem"]):
    class Meta:
        index_name = INDEX
        projection = KeysOnlyProjection()

    subject_pk = UnicodeAttribute(hash_key=True)


class ProctoringItem(Model):
    """A session (sk SESSION) or an incident (sk INCIDENT#<id>); attributes of the other kind stay empty."""

    class Meta:
        table_name = ""

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    purpose = UnicodeAttribute()
    created_at = UnicodeAttribute()  # the session's start, on its incidents too: erasure takes a session whole
    expires_at = NumberAttribute()  # DynamoDB TTL: the purpose's retention
    # -- session
    subject_pk = UnicodeAttribute(null=True)
    by_subject = BySubjectIndex()
    tenant_id = UnicodeAttribute(null=True)
    subject_ref = UnicodeAttribute(null=True)
    exam_id = UnicodeAttribute(null=True)
    mode = UnicodeAttribute(null=True)
    status = UnicodeAttribute(null=True)
    next_sequence = NumberAttribute(null=True)
    frame_interval_s = NumberAttribute(null=True)
    consent_epoch = UnicodeAttribute(null=True)
    verification_id = UnicodeAttribute(null=True)
    liveness = UnicodeAttribute(null=True)  # JSON
    model_id = UnicodeAttribute(null=True)
    model_version = UnicodeAttribute(null=True)
    state = UnicodeAttribute(null=True)  # JSON: the engine's counters and timestamps (no image, no embedding)
    last_ts = NumberAttribute(null=True)
    last_digest = UnicodeAttribute(null=True)
    last_answer = UnicodeAttribute(null=True)  # JSON
    totals = UnicodeAttribute(null=True)  # JSON
    ended_at = UnicodeAttribute(null=True)
    report = UnicodeAttribute(null=True)  # JSON claims of the signed report
    report_token = UnicodeAttribute(null=True)
    # -- applied batch (last_digest and last_answer hold its digest and answer)
    sequence = NumberAttribute(null=True)
    # -- incident
    incident_id = UnicodeAttribute(null=True)
    type = UnicodeAttribute(null=True)
    start_ts = NumberAttribute(null=True)
    end_ts = NumberAttribute(null=True)
    frames = NumberAttribute(null=True)
    confidence = NumberAttribute(null=True)
    incident_model_version = UnicodeAttribute(null=True)
    open = BooleanAttribute(null=True)
    review_status = UnicodeAttribute(null=True)
    review_note = UnicodeAttribute(null=True)
    reviewed_by = UnicodeAttribute(null=True)
    reviewed_at = UnicodeAttribute(null=True)


def _dump(value: Any) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True, allow_nan=False)


def _load(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _session_item(session: ProctoringSession) -> ProctoringItem:
    return ProctoringItem(
        session_pk(session.tenant_id, session.session_id),
        SESSION_SK,
        purpose=session.purpose,
        created_at=session.created_at,
        expires_at=session.expires_at,
        subject_pk=subject_pk(session.tenant_id, session.subject_ref),
        tenant_id=session.tenant_id,
        subject_ref=session.subject_ref,
        exam_id=session.exam_id,
        mode=session.mode,
        status=session.status,
        next_sequence=session.next_sequence,
        frame_interval_s=session.frame_interval_s,
        consent_epoch=session.consent_epoch,
        verification_id=session.verification_id,
        liveness=_dump(session.liveness),
        model_id=session.model_id,
        model_version=session.model_version,
        state=_dump(session.state),
        last_ts=session.last_ts,
        last_digest=session.last_digest,
        last_answer=_dump(session.last_answer),
        totals=_dump(session.totals),
        ended_at=session.ended_at,
        report=_dump(session.report),
        report_token=session.report_token,
    )


def _session(item: ProctoringItem, session_id: str) -> ProctoringSession:
    return ProctoringSession(
        session_id=session_id,
        tenant_id=str(item.tenant_id),
        subject_ref=str(item.subject_ref),
        purpose=item.purpose,
        exam_id=str(item.exam_id),
        created_at=item.created_at,
        expires_at=int(item.expires_at),
        mode=item.mode or "face",
        status=item.status or "active",  # type: ignore[arg-type]
        next_sequence=int(item.next_sequence or 0),
        frame_interval_s=int(item.frame_interval_s or 2),
        consent_epoch=item.consent_epoch,
        verification_id=item.verification_id,
        liveness=_load(item.liveness) or {},
        model_id=item.model_id or "",
        model_version=item.model_version or "",
        state=_load(item.state),
        last_ts=float(item.last_ts) if item.last_ts is not None else None,
        last_digest=item.last_digest,
        last_answer=_load(item.last_answer),
        totals=_load(item.totals) or {},
        ended_at=item.ended_at,
        report=_load(item.report),
        report_token=item.report_token,
    )


def _incident(item: ProctoringItem) -> IncidentRecord:
    return IncidentRecord(
        incident_id=str(item.incident_id),
        type=str(item.type),
        start_ts=float(item.start_ts or 0),
        end_ts=float(item.end_ts or 0),
        frames=int(item.frames or 0),
        confidence=float(item.confidence or 0),
        model_version=str(item.incident_model_version or ""),
        open=bool(item.open),
        review_status=item.review_status or "pending",  # type: ignore[arg-type]
        review_note=item.review_note,
        reviewed_by=item.reviewed_by,
        reviewed_at=item.reviewed_at,
    )


class DynamoProctoringSessions:
    store_name = "proctoring"  # in erasure receipts and sweep counts

    def __init__(self, table_name: str, region: str) -> None:
        bind(ProctoringItem, table_name, region)
        self._region = region

    def create(self, session: ProctoringSession) -> None:
        _session_item(session).save(condition=ProctoringItem.sk.does_not_exist())

    def get(self, tenant_id: str, session_id: str) -> ProctoringSession | None:
        try:
            item = ProctoringItem.get(session_pk(tenant_id, session_id), SESSION_SK, consistent_read=True)
        except ProctoringItem.DoesNotExist:
            return None
        return _session(item, session_id)

    def incidents(self, tenant_id: str, session_id: str) -> list[IncidentRecord]:
        items = ProctoringItem.query(
            session_pk(tenant_id, session_id),
            ProctoringItem.sk.startswith(INCIDENT_PREFIX),
            consistent_read=True,
        )
        return [_incident(item) for item in items]

    def _write(
        self,
        before: ProctoringSession,
        after: ProctoringSession,
        incidents: Sequence[IncidentRecord],
        keep_batch: bool = False,
    ) -> bool:
        """`after` and the incidents at once (and, for a batch, its answer), only if the stored session is
        `before`'s (active, same sequence)."""
        pk = session_pk(before.tenant_id, before.session_id)
        try:
            with TransactWrite(connection=connection(self._region)) as tx:
                tx.save(
                    _session_item(after),
                    condition=(ProctoringItem.status == "active")
                    & (ProctoringItem.next_sequence == before.next_sequence),
                )
                if keep_batch:
                    tx.save(
                        ProctoringItem(
                            pk,
                            batch_sk(before.next_sequence),
                            purpose=before.purpose,
                            created_at=before.created_at,
                            expires_at=before.expires_at,
                            sequence=before.next_sequence,
                            last_digest=after.last_digest,
                            last_answer=_dump(after.last_answer),
                        ),
                        condition=ProctoringItem.sk.does_not_exist(),
                    )
                for incident in incidents:
                    tx.update(
                        ProctoringItem(pk, INCIDENT_PREFIX + incident.incident_id),
                        actions=[
                            ProctoringItem.purpose.set(before.purpose),
                            ProctoringItem.created_at.set(before.created_at),
                            ProctoringItem.expires_at.set(before.expires_at),
                            ProctoringItem.incident_id.set(incident.incident_id),
                            ProctoringItem.type.set(incident.type),
                            ProctoringItem.start_ts.set(float(incident.start_ts)),
                            ProctoringItem.end_ts.set(float(incident.end_ts)),
                            ProctoringItem.frames.set(int(incident.frames)),
                            ProctoringItem.confidence.set(float(incident.confidence)),
                            ProctoringItem.incident_model_version.set(incident.model_version),
                            ProctoringItem.open.set(bool(incident.open)),
                            # The review is the admin's: an update by the engine never resets it.
                            ProctoringItem.review_status.set(ProctoringItem.review_status | "pending"),
                        ],
                    )
        except TransactWriteError as error:
            if is_condition_failure(error):
                return False
            raise
        return True

    def apply_batch(
        self, session: ProctoringSession, applied: ProctoringSession, incidents: Sequence[IncidentRecord]
    ) -> bool:
        return self._write(session, applied, incidents, keep_batch=True)

    def batch_answer(self, tenant_id: str, session_id: str, sequence: int) -> tuple[str, dict[str, Any]] | None:
        try:
            item = ProctoringItem.get(session_pk(tenant_id, session_id), batch_sk(sequence), consistent_read=True)
        except ProctoringItem.DoesNotExist:
            return None
        return str(item.last_digest), _load(item.last_answer)

    def end(self, session: ProctoringSession, ended: ProctoringSession, incidents: Sequence[IncidentRecord]) -> bool:
        return self._write(session, ended, incidents)

    def review(self, tenant_id: str, session_id: str, incident: IncidentRecord) -> bool:
        item = ProctoringItem(session_pk(tenant_id, session_id), INCIDENT_PREFIX + incident.incident_id)
        actions: list[Any] = [
            ProctoringItem.review_status.set(incident.review_status),
            ProctoringItem.reviewed_by.set(incident.reviewed_by or ""),
            ProctoringItem.reviewed_at.set(incident.reviewed_at or ""),
        ]
        actions.append(
            ProctoringItem.review_note.set(incident.review_note)
            if incident.review_note
            else ProctoringItem.review_note.remove()
        )
        try:
            item.update(actions=actions, condition=ProctoringItem.sk.exists())
        except UpdateError as error:
            if is_condition_failure(error):
                return False
            raise
        return True

    # -- erasure and retention (facegate.deletion runs these)

    def erase_subject(
        self, tenant_id: str, subject_ref: str, purposes: list[str] | None, cutoff: str, ended_epoch: str | None
    ) -> int:
        """Every session of the subject started before the cutoff (or, for a withdrawal, under the consent period it
        ended), with all its incidents. Each delete is conditional on the item read (a newer one stays)."""
        erased = 0
        for key in ProctoringItem.by_subject.query(subject_pk(tenant_id, subject_ref)):
            try:
                head = ProctoringItem.get(key.pk, SESSION_SK, consistent_read=True)
            except ProctoringItem.DoesNotExist:
                continue
            if purposes and head.purpose not in purposes:
                continue
            ended = ended_epoch is not None and head.consent_epoch == ended_epoch
            if not (head.created_at < cutoff or ended):
                continue
            for item in ProctoringItem.query(key.pk, consistent_read=True):
                erased += self._delete(item)
        return erased

    def sweep(self, now: int) -> int:
        """Items past their retention that DynamoDB's TTL has not removed yet."""
        return sum(self._delete(item) for item in ProctoringItem.scan(ProctoringItem.expires_at < now))

    @staticmethod
    def _delete(item: ProctoringItem) -> int:
        try:
            item.delete(condition=ProctoringItem.created_at == item.created_at)
        except DeleteError as error:
            if error.cause_response_code == "ConditionalCheckFailedException":
                return 0
            raise
        return 1

"""Notices and consent: separate, informed, withdrawable consent per subject and purpose."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

from facegate.consent.api import NoticeContent, RecordConsentRequest
from facegate.consent.entities import ACTIVE, ConsentRecord, ConsentState, Notice, Purpose, notice_sha256, record_hash
from facegate.consent.ports import ConsentStore, TenantStore
from facegate.core.audit import Auditor
from facegate.core.clock import iso, utcnow
from facegate.core.errors import (
    ConflictError,
    ConsentNotFoundError,
    GuardianRequiredError,
    NoticeNotFoundError,
    NoticeOutdatedError,
    PurposeNotFoundError,
)
from facegate.core.hashing import Subject
from facegate.core.observability import count, logger
from facegate.core.ports import Publisher, Signer
from facegate.core.tenancy import CallerContext


class NoticeService:
    def __init__(self, tenants: TenantStore, auditor: Auditor, clock: Callable[[], datetime] = utcnow):
        self._tenants = tenants
        self._auditor = auditor
        self._clock = clock

    def purpose(self, tenant_id: str, purpose: str) -> Purpose:
        found = self._tenants.get_purpose(tenant_id, purpose)
        if found is None:
            raise PurposeNotFoundError(f"purpose '{purpose}' is not configured for this tenant")
        return found

    def current(self, tenant_id: str, purpose: str, locale: str) -> Notice:
        self.purpose(tenant_id, purpose)
        notice = self._tenants.latest_notice(tenant_id, purpose, locale)
        if notice is None:
            raise NoticeNotFoundError(f"no notice for purpose '{purpose}' in locale '{locale}'")
        return notice

    def publish(self, caller: CallerContext, purpose: str, locale: str, content: NoticeContent) -> Notice:
        """Add a new version; earlier versions stay readable and consents keep pointing at them."""
        self.purpose(caller.tenant_id, purpose)
        latest = self._tenants.latest_notice(caller.tenant_id, purpose, locale)
        version = (latest.version if latest else 0) + 1
        body = content.model_dump(mode="json")
        notice = Notice(
            purpose=purpose,
            locale=locale,
            version=version,
            sha256=notice_sha256(purpose, locale, version, body),
            content=body,
            created_at=iso(self._clock()),
        )
        self._tenants.add_notice(caller.tenant_id, notice, created_by=caller.client_id)
        self._auditor.record(caller, "notice.published", "ok", purpose=purpose, locale=locale, version=version)
        count("NoticePublished")
        return notice


class ConsentService:
    def __init__(
        self,
        notices: NoticeService,
        consents: ConsentStore,
        signer: Signer,
        publisher: Publisher,
        auditor: Auditor,
        issuer: str,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._notices = notices
        self._consents = consents
        self._signer = signer
        self._publisher = publisher
        self._auditor = auditor
        self._issuer = issuer
        self._clock = clock

    def record(self, caller: CallerContext, subject: Subject, request: RecordConsentRequest) -> ConsentRecord:
        """Record a grant or a refusal against the notice the person was shown."""
        current = self._notices.current(caller.tenant_id, request.purpose, request.locale)
        if request.notice_version != current.version or request.notice_sha256 != current.sha256:
            raise NoticeOutdatedError(
                "the notice shown is not the current one; show the current notice and ask again",
                current_version=current.version,
                current_sha256=current.sha256,
            )
        _check_guardian(request)
        ref = subject.ref
        record, ended = self._append(
            caller,
            ref,
            action=request.decision,
            purpose=request.purpose,
            notice_version=request.notice_version,
            notice_sha256=request.notice_sha256,
            locale=request.locale,
            channel=request.channel,
            age_band=request.age_band,
            guardian=request.guardian.model_dump() if request.guardian else None,
        )
        self._auditor.record(caller, f"consent.{request.decision}", "ok", ref, request.purpose)
        if ended is not None:
            # A refusal that ends a granted period is a withdrawal of it: its face data is erased too.
            self._announce_withdrawal(record, ended)
        elif request.decision != ACTIVE:
            self._announce_again(caller.tenant_id, ref, request.purpose)
        count("ConsentGranted" if request.decision == "granted" else "ConsentRefused")
        logger.info("consent recorded", subject_ref=ref, purpose=request.purpose, decision=request.decision)
        return record

    def withdraw(self, caller: CallerContext, subject: Subject, purpose: str, announce: bool = True) -> ConsentRecord:
        """Withdraw at once; announces ConsentWithdrawn so that the face data is erased (a subject's
        erasure withdraws without announcing: its own job erases every purpose)."""
        self._notices.purpose(caller.tenant_id, purpose)
        return self._withdraw(caller, subject.ref, purpose, announce)

    def withdraw_all(self, caller: CallerContext, subject: Subject) -> list[ConsentRecord]:
        """Withdraw every granted purpose, unannounced: a subject's erasure request, whose own job
        erases every purpose. From then on the subject's face data is never used again."""
        ref = subject.ref
        return [
            self._withdraw(caller, ref, state.purpose, announce=False)
            for state in self._consents.states(caller.tenant_id, ref)
            if state.status == ACTIVE
        ]

    def _withdraw(self, caller: CallerContext, ref: str, purpose: str, announce: bool) -> ConsentRecord:
        state = self._consents.state(caller.tenant_id, ref, purpose)
        if state is None:
            raise ConsentNotFoundError(f"no consent record for purpose '{purpose}'")
        if state.status != ACTIVE:
            # Withdrawing twice, or withdrawing a refusal, changes nothing: answer the last record. It announces
            # again the period that ended, in case the first announcement failed (see _announce_again).
            if announce:
                self._announce_again(caller.tenant_id, ref, purpose)
            return self._find(caller.tenant_id, ref, state.record_id)
        last = self._find(caller.tenant_id, ref, state.record_id)
        record, ended = self._append(
            caller,
            ref,
            action="withdrawn",
            purpose=purpose,
            notice_version=state.notice_version,
            notice_sha256=state.notice_sha256,
            locale=last.locale,
            channel="api",
            age_band=state.age_band,
            guardian=None,
        )
        self._auditor.record(caller, "consent.withdrawn", "ok", ref, purpose)
        if announce and ended is not None:
            self._announce_withdrawal(record, ended)
        count("ConsentWithdrawn")
        logger.info("consent withdrawn", subject_ref=ref, purpose=purpose)
        return record

    def states(self, caller: CallerContext, subject: Subject) -> list[ConsentState]:
        return self._consents.states(caller.tenant_id, subject.ref)

    def history(self, caller: CallerContext, subject: Subject) -> list[ConsentRecord]:
        return self._consents.history(caller.tenant_id, subject.ref)

    def is_active(self, tenant_id: str, subject: Subject, purpose: str) -> bool:
        """What the face functions ask before touching any face data."""
        state = self._consents.state(tenant_id, subject.ref, purpose)
        return state is not None and state.active

    def _announce_withdrawal(self, record: ConsentRecord, ended_epoch: str) -> None:
        """ConsentWithdrawn → the deletion queue: erase the face data of the period that ended."""
        self._publisher.publish(
            "ConsentWithdrawn",
            {
                "tenant_id": record.tenant_id,
                "subject_ref": record.subject_ref,
                "purpose": record.purpose,
                "record_id": record.record_id,
                "withdrawn_at": record.created_at,
                "epoch": ended_epoch,
            },
        )

    def _announce_again(self, tenant_id: str, ref: str, purpose: str) -> None:
        """Announce once more the last end of a granted period of the purpose (the withdrawal or refusal that
        followed a grant), if there is one. The withdrawal is stored before it is announced; if the bus and the
        fallback queue both failed, the person was answered 503 `event_publish_failed` and asked to retry, and the
        retry finds the purpose already ended. Announcing again is harmless: the erasure job is named by the record
        that ended the period (`withdrawal-<record_id>`), so a second announcement finds the same job."""
        records = [r for r in self._consents.history(tenant_id, ref) if r.purpose == purpose]
        for k in range(len(records) - 1, 0, -1):
            if records[k].action != ACTIVE and records[k - 1].action == ACTIVE:
                first = k - 1
                while first > 0 and records[first - 1].action == ACTIVE:
                    first -= 1
                self._announce_withdrawal(records[k], records[first].record_id)
                return

    def _find(self, tenant_id: str, ref: str, record_id: str) -> ConsentRecord:
        for record in reversed(self._consents.history(tenant_id, ref)):
            if record.record_id == record_id:
                return record
        raise ConsentNotFoundError()

    def _append(self, caller: CallerContext, ref: str, **fields: Any) -> tuple[ConsentRecord, str | None]:
        """Link the record to the subject's chain, sign it, store it; retry if another write won.

        Also moves the purpose's consent epoch: a grant after a grant keeps it (e.g. consent to a new
        notice version), a grant after anything else begins a new one, and a refusal or withdrawal ends
        it. Returns the record and the epoch it ended, if any. The state is read after the chain head and
        the write is conditional on both, so the epoch is never derived from a stale state.
        """
        for attempt in range(3):
            head = self._consents.head(caller.tenant_id, ref)
            previous = self._consents.state(caller.tenant_id, ref, fields["purpose"])
            record = ConsentRecord(
                record_id=uuid.uuid4().hex,
                tenant_id=caller.tenant_id,
                subject_ref=ref,
                created_at=iso(self._clock()),
                prev_hash=head,
                request_id=caller.request_id,
                **fields,
            )
            record = replace(record, record_hash=record_hash(record))
            record = replace(record, receipt=self._signer.sign(self._receipt_claims(record), typ="JWT"))
            was_active = previous is not None and previous.active
            epoch: str | None = None
            started: str | None = None
            if record.action == ACTIVE:
                if previous is not None and previous.active:
                    epoch, started = previous.epoch, previous.epoch_started_at
                else:
                    epoch, started = record.record_id, record.created_at
            try:
                self._consents.append(
                    record,
                    status=record.action,
                    epoch=epoch,
                    epoch_started_at=started,
                    previous_record_id=previous.record_id if previous else None,
                )
                ended = previous.epoch if was_active and record.action != ACTIVE and previous else None
                return record, ended
            except ConflictError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _receipt_claims(self, record: ConsentRecord) -> dict[str, Any]:
        return {
            "iss": self._issuer,
            "typ": "consent-receipt",
            "tenant": record.tenant_id,
            "sub": record.subject_ref,
            "purpose": record.purpose,
            "action": record.action,
            "notice_version": record.notice_version,
            "notice_sha256": record.notice_sha256,
            "record_id": record.record_id,
            "record_hash": record.record_hash,
            "prev_hash": record.prev_hash,
            "iat": int(datetime.fromisoformat(record.created_at).timestamp()),
        }


def _check_guardian(request: RecordConsentRequest) -> None:
    """Under 14, the guardian decides (CAC art. 7; PIPL art. 31)."""
    if request.age_band != "child_under_14":
        return
    if request.guardian is None:
        raise GuardianRequiredError("a child under 14 needs the guardian's name, relation, contact and decision")
    if request.decision == "granted" and request.guardian.decision != "granted":
        raise GuardianRequiredError("the guardian has not granted consent; record the decision as refused")

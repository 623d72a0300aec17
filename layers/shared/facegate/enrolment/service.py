"""Enrolment: one photo of a consenting person → one encrypted template. The photo never outlives it.

A subject's enrolment for a purpose is one person: a further enrolment must match the templates
already usable at the `high` level (else 409 `enrolment_mismatch`), at most TEMPLATE_CAP templates are
kept (else 409 `too_many_templates`), and only an explicit, audited replacement starts again.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from facegate.consent.entities import ConsentState, Purpose
from facegate.consent.ports import ConsentStates, Purposes
from facegate.core.audit import Auditor
from facegate.core.clock import iso, utcnow
from facegate.core.envelope import Sealed, pack_sealed
from facegate.core.errors import (
    ConflictError,
    ConsentRequiredError,
    EnrolmentMismatchError,
    EnrolmentNotFoundError,
    FacegateError,
    ImageTooLargeError,
    InvalidRequestError,
    LivenessFailedError,
    ProcessingInterruptedError,
    TooManyTemplatesError,
    UploadNotReceivedError,
)
from facegate.core.hashing import Subject
from facegate.core.observability import count, logger
from facegate.core.ports import Cipher, Uploads
from facegate.core.tenancy import CallerContext
from facegate.enrolment.entities import (
    CONSISTENCY_LEVEL,
    JOB_RECORD_DAYS,
    PROCESSING_SECONDS,
    TEMPLATE_CAP,
    UPLOAD_SECONDS,
    Enrolment,
    EnrolmentStarted,
    parse_upload_key,
    upload_key,
)
from facegate.enrolment.ports import EnrolmentJobs, GalleryHook, GalleryRemoveHook
from facegate.matching.entities import (
    FAR_BY_LEVEL,
    EngineTemplate,
    StoredTemplate,
    subject_id_context,
    template_context,
    usable_templates,
)
from facegate.matching.ports import Biometrics, TemplateStore
from facegate.matching.templates import TemplateOpener

if TYPE_CHECKING:
    from facegate.liveness.entities import LivenessProof
    from facegate.liveness.service import LivenessService


class EnrolmentService:
    def __init__(
        self,
        notices: Purposes,
        consents: ConsentStates,
        jobs: EnrolmentJobs,
        templates: TemplateStore,
        cipher: Cipher,
        opener: TemplateOpener,
        uploads: Uploads,
        engine: Callable[[], Biometrics],
        auditor: Auditor,
        gallery_add: GalleryHook | None = None,
        gallery_remove: GalleryRemoveHook | None = None,
        clock: Callable[[], datetime] = utcnow,
        liveness: LivenessService | None = None,
    ) -> None:
        self._liveness = liveness
        self._notices = notices
        self._consents = consents
        self._jobs = jobs
        self._templates = templates
        self._cipher = cipher
        self._opener = opener
        self._uploads = uploads
        self._engine = engine
        self._auditor = auditor
        self._gallery_add = gallery_add
        self._gallery_remove = gallery_remove
        self._clock = clock

    def start(
        self,
        caller: CallerContext,
        subject: Subject,
        purpose: str,
        image: bytes | None,
        content_type: str,
        replace_existing: bool = False,
        liveness: LivenessProof | None = None,
    ) -> EnrolmentStarted:
        """Inline image: processed now (errors raised, job marked failed). Otherwise: a presigned upload.

        With `replace_existing`, the subject's earlier templates of the purpose are void once the new one is
        stored, and erased (audited); otherwise the new face must match them.
        """
        found = self._notices.purpose(caller.tenant_id, purpose)
        ref = subject.ref
        state = self._consents.state(caller.tenant_id, ref, purpose)
        if state is None or not state.active:
            raise ConsentRequiredError(f"the subject has no active consent for '{purpose}'")
        if image is not None and len(image) > self._uploads.max_bytes:
            raise ImageTooLargeError(f"the image may be at most {self._uploads.max_bytes} bytes")
        # liveness hook (facegate.liveness)
        live = self._live_template(caller, ref, purpose, image, liveness, subject.id)
        now = self._clock()
        # Inline: processed in this request. Presigned: the upload may come until the URL expires.
        inline = image is not None or live is not None
        phase, seconds = ("processing", PROCESSING_SECONDS) if inline else ("upload", UPLOAD_SECONDS)
        job = Enrolment(
            enrolment_id=uuid.uuid4().hex,
            tenant_id=caller.tenant_id,
            subject_ref=ref,
            purpose=purpose,
            status="pending",
            actor=caller.client_id,
            created_at=iso(now),
            updated_at=iso(now),
            expires_at=int((now + timedelta(days=JOB_RECORD_DAYS)).timestamp()),
            # Kept encrypted so a 1:N match can name the tenant's subject; erased with the template.
            subject_sealed=pack_sealed(
                self._cipher.seal(subject.id.encode(), subject_id_context(caller.tenant_id, ref))
            ),
            phase=phase,
            deadline=int((now + timedelta(seconds=seconds)).timestamp()),
            consent_epoch=state.epoch,
            replace=replace_existing,
        )
        self._jobs.create(job)
        if not inline:
            upload = self._uploads.presign(upload_key(caller.tenant_id, ref, job.enrolment_id), content_type)
            return EnrolmentStarted(job, upload)
        # Purpose and consent were read just now, under which the job was made: not read again before the engine.
        finished, error = self._process(job, image or b"", caller.request_id, found, state, live=live)
        if error is not None:
            raise error
        return EnrolmentStarted(finished)

    # -- liveness hook (facegate.liveness)

    def _live_template(
        self,
        caller: CallerContext,
        ref: str,
        purpose: str,
        image: bytes | None,
        liveness: LivenessProof | None,
        subject_id: str | None = None,
    ) -> EngineTemplate | None:
        """The template of a live burst's best frontal frame (a reference photo must not be a photo of a photo);
        None for a single photo or an upload, which only a purpose with an optional liveness policy accepts."""
        if self._liveness is None:
            return None
        if liveness is not None and image is not None:
            raise InvalidRequestError(
                "send a liveness burst or a single image, not both",
                errors=[{"loc": ["body", "liveness"], "msg": "not allowed with image", "type": "liveness_and_image"}],
            )
        self._liveness.require(caller, purpose, liveness)
        if liveness is None:
            return None
        checked = self._liveness.judge(
            caller, self._liveness.claim(caller, ref, purpose, liveness), subject_id=subject_id
        )
        if checked.template is None:
            count("EnrolmentRefused", reason="liveness_failed")
            raise LivenessFailedError(
                liveness={"decision": checked.decision, "reasons": checked.reasons, "method": checked.method},
                methods=self._liveness.alternatives(caller.tenant_id, purpose),
            )
        template: EngineTemplate = checked.template
        return template

    # -- end liveness hook

    def on_upload(self, key: str, request_id: str | None = None) -> Enrolment | None:
        """An upload arrived: claim its job, check the image, enrol it, and delete it whatever happens."""
        parsed = parse_upload_key(key)
        if parsed is None:
            logger.warning("upload with unexpected key deleted")
            self._uploads.delete(key)
            return None
        job = self._jobs.get(*parsed)
        claimed = self._claim(job) if job is not None else None
        if claimed is None:
            # Re-read: another invocation may have claimed it (a repeated S3 event), or it is overdue.
            current = self._end_if_overdue(self._jobs.get(*parsed))
            if current is not None and current.status == "pending" and current.phase == "processing":
                logger.info("upload already being processed", enrolment_id=current.enrolment_id)
                return current  # that invocation deletes the upload
            self._uploads.delete(key)
            logger.warning("upload without pending enrolment deleted", enrolment_id=parsed[2])
            return current
        try:
            try:
                image = self._uploads.fetch(key)
            except FacegateError as error:
                return self._fail(claimed, error, request_id)
            return self._process(claimed, image, request_id)[0]
        finally:
            self._uploads.delete(key)

    def status(self, caller: CallerContext, subject: Subject, enrolment_id: str) -> Enrolment:
        job = self._jobs.get(caller.tenant_id, subject.ref, enrolment_id)
        current = self._end_if_overdue(job, caller.request_id) if job is not None else None
        if current is None:
            raise EnrolmentNotFoundError()
        return current

    def end_overdue(self) -> int:
        """End every pending job past its deadline (the hourly sweep): how many were ended."""
        now = int(self._clock().timestamp())
        return sum(self._expire(job) is not None for job in self._jobs.overdue(now))

    # -- internals

    def _claim(self, job: Enrolment) -> Enrolment | None:
        """The job, now being processed by this invocation; None if it is not awaiting its upload."""
        if job.status != "pending" or job.phase not in ("upload", None):
            return None
        now = self._clock()
        deadline = int((now + timedelta(seconds=PROCESSING_SECONDS)).timestamp())
        if not self._jobs.claim(job, int(now.timestamp()), deadline):
            return None
        return replace(job, phase="processing", deadline=deadline)

    def _end_if_overdue(self, job: Enrolment | None, request_id: str | None = None) -> Enrolment | None:
        """The job as it stands, after ending it if its deadline has passed while it was pending."""
        if job is None:
            return None
        ended = self._expire(job, request_id)
        if ended is not None:
            return ended
        if job.status == "pending" and self._overdue(job):  # it finished meanwhile: show how
            return self._jobs.get(job.tenant_id, job.subject_ref, job.enrolment_id)
        return job

    def _expire(self, job: Enrolment, request_id: str | None = None) -> Enrolment | None:
        """Fail a pending job past its deadline: nothing can still be working on it (a crash, or an upload
        that never came). None if it is not overdue or finished first."""
        if job.status != "pending" or not self._overdue(job):
            return None
        error = UploadNotReceivedError() if job.phase == "upload" else ProcessingInterruptedError()
        try:
            failed = self._fail(job, error, request_id, overdue_at=int(self._clock().timestamp()))
        except ConflictError:
            return None
        # A crashed run leaves its upload behind; an upload may also have come without its event.
        self._uploads.delete(upload_key(job.tenant_id, job.subject_ref, job.enrolment_id))
        return failed

    def _overdue(self, job: Enrolment) -> bool:
        deadline = job.deadline
        if deadline is None:  # a job from before deadlines were kept: the longest a job can take
            created = datetime.fromisoformat(job.created_at)
            deadline = int(created.timestamp()) + UPLOAD_SECONDS + PROCESSING_SECONDS
        return int(self._clock().timestamp()) > deadline  # whole seconds, as the stored deadline

    def _consent_epoch(self, job: Enrolment) -> ConsentState:
        """The consent state whose period the template will belong to: the one the enrolment started under, if
        it is still the active one. A photo that arrives after that period ended is refused."""
        state = self._consents.state(job.tenant_id, job.subject_ref, job.purpose)
        if state is None or not state.active or state.epoch is None:
            raise ConsentRequiredError(f"the subject has no active consent for '{job.purpose}'")
        started_in_period = (
            job.consent_epoch == state.epoch
            if job.consent_epoch is not None  # jobs started before epochs existed: by time
            else job.created_at >= (state.epoch_started_at or "")
        )
        if not started_in_period:
            raise ConsentRequiredError("consent was withdrawn after this enrolment started; start again")
        return state

    def _process(
        self,
        job: Enrolment,
        image: bytes,
        request_id: str | None,
        purpose: Purpose | None = None,
        state: ConsentState | None = None,
        live: EngineTemplate | None = None,
    ) -> tuple[Enrolment, FacegateError | None]:
        """Enrol the image for the job, or `live`: the template of a live burst's best frontal frame. `purpose`
        and `state` when the caller has just read them (inline)."""
        caller = CallerContext(job.tenant_id, job.actor, frozenset(), request_id)
        try:
            # Consent may have been withdrawn between the presigned POST and the upload.
            if state is None:
                state = self._consent_epoch(job)
            engine = self._engine()
            template = live if live is not None else engine.enrol(image)
        except FacegateError as error:
            return self._fail(job, error, request_id), error
        finally:
            del image  # the only copy of the raw image in this process
        if purpose is None:
            purpose = self._notices.purpose(job.tenant_id, job.purpose)
        now = self._clock()
        expires_at = int((now + timedelta(days=purpose.retention_days)).timestamp())
        template_id = uuid.uuid4().hex
        context = template_context(job.tenant_id, job.subject_ref, job.purpose)
        sealed = self._cipher.seal(engine.to_bytes(template), context)
        try:
            stored, earlier = self._store_numbered(
                caller, job, template, state, template_id, sealed, iso(now), expires_at
            )
        except FacegateError as error:
            return self._fail(job, error, request_id), error
        gallery = purpose.identification_enabled
        if gallery and self._gallery_add is not None:
            self._gallery_add(job.tenant_id, job.purpose, job.subject_ref, template_id, template)
        try:
            # Consent may have ended while we wrote; then an erasure job may have missed what we wrote.
            self._consent_epoch(job)
        except ConsentRequiredError as error:
            self._templates.delete(stored)
            if gallery and self._gallery_remove is not None:
                self._gallery_remove(job.tenant_id, job.purpose, job.subject_ref, template_id)
            return self._fail(job, error, request_id), error
        if job.replace:
            replaced = sum(self._templates.delete(old) for old in earlier)
            self._auditor.record(caller, "enrolment.replaced", "ok", job.subject_ref, job.purpose, replaced=replaced)
            count("EnrolmentReplaced")
        done = replace(
            job,
            status="completed",
            template_id=template_id,
            model_id=template.model_id,
            model_version=template.model_version,
            template_expires_at=expires_at,
            updated_at=iso(now),
        )
        self._jobs.finish(done)
        self._auditor.record(caller, "enrolment.completed", "ok", job.subject_ref, job.purpose, model=template.model_id)
        count("FaceEnrolled")
        logger.info("enrolment completed", subject_ref=job.subject_ref, purpose=job.purpose)
        return done, None

    def _store_numbered(
        self,
        caller: CallerContext,
        job: Enrolment,
        template: EngineTemplate,
        state: ConsentState,
        template_id: str,
        sealed: Sealed,
        created_at: str,
        expires_at: int,
    ) -> tuple[StoredTemplate, list[StoredTemplate]]:
        """Check the new template against the subject's usable ones, then store it under the next free
        number (a conditional single-item put). Whoever loses the number to a concurrent enrolment reads
        again, so it is compared with the winner's template and counted against the cap with it.
        Returns the stored template and the templates there were before it. `state` is the consent state read
        before the engine ran (a change since is caught by the check after the write)."""
        opened: dict[str, EngineTemplate] = {}
        epoch = state.epoch
        current: ConsentState | None = state
        for attempt in range(2 * TEMPLATE_CAP + 2):
            if attempt:
                current = self._consents.state(job.tenant_id, job.subject_ref, job.purpose)
            existing = self._templates.for_subject(job.tenant_id, job.subject_ref, job.purpose, consistent=True)
            if not job.replace:
                self._check_same_person(caller, template, usable_templates(existing, current), opened)
            stored = StoredTemplate(
                tenant_id=job.tenant_id,
                subject_ref=job.subject_ref,
                purpose=job.purpose,
                template_id=template_id,
                enrolment_id=job.enrolment_id,
                model_id=template.model_id,
                model_version=template.model_version,
                ciphertext=sealed.ciphertext,
                encrypted_key=sealed.encrypted_key,
                nonce=sealed.nonce,
                created_at=created_at,
                expires_at=expires_at,
                subject_sealed=job.subject_sealed,
                consent_epoch=epoch,
                seq=max((t.seq for t in existing), default=0) + 1,
                replacement=job.replace,
            )
            try:
                self._templates.put(stored)
            except ConflictError:
                logger.info("template number taken by a concurrent enrolment; reading again")
                continue
            return stored, existing
        raise ConflictError("too many concurrent enrolments for this subject; retry")

    def _check_same_person(
        self,
        caller: CallerContext,
        template: EngineTemplate,
        usable: list[StoredTemplate],
        opened: dict[str, EngineTemplate],
    ) -> None:
        """A further enrolment must be the enrolled person (best score at `high`), within the cap."""
        if not usable:
            return
        if len(usable) >= TEMPLATE_CAP:
            count("EnrolmentRefused", reason="too_many_templates")
            raise TooManyTemplatesError(
                f"at most {TEMPLATE_CAP} templates per subject and purpose; enrol with replace: true to start again",
                limit=TEMPLATE_CAP,
            )
        model = (template.model_id, template.model_version)
        comparable = [t for t in usable if (t.model_id, t.model_version) == model]
        if not comparable:
            count("EnrolmentRefused", reason="enrolment_mismatch")
            raise EnrolmentMismatchError(
                "the subject's enrolment was made by another model version and cannot be compared; "
                "enrol with replace: true to replace it"
            )
        engine = self._engine()
        best = max(engine.similarity(template, self._open(caller, stored, opened)) for stored in comparable)
        if best < engine.threshold(FAR_BY_LEVEL[CONSISTENCY_LEVEL]):
            count("EnrolmentRefused", reason="enrolment_mismatch")
            raise EnrolmentMismatchError()

    def _open(self, caller: CallerContext, stored: StoredTemplate, opened: dict[str, EngineTemplate]) -> EngineTemplate:
        """A stored template for the comparison, opened (and audited) once per enrolment."""
        if stored.template_id not in opened:
            opened[stored.template_id] = self._opener.open(caller, stored, reason="enrolment_check")
        return opened[stored.template_id]

    def _fail(
        self, job: Enrolment, error: FacegateError, request_id: str | None, overdue_at: int | None = None
    ) -> Enrolment:
        caller = CallerContext(job.tenant_id, job.actor, frozenset(), request_id)
        failed = replace(job, status="failed", reason=error.code, detail=error.detail, updated_at=iso(self._clock()))
        self._jobs.finish(failed, overdue_at)
        self._auditor.record(caller, "enrolment.failed", error.code, job.subject_ref, job.purpose)
        count("EnrolmentFailed", reason=error.code)
        logger.info("enrolment failed", subject_ref=job.subject_ref, reason=error.code)
        return failed

"""Enrolment: one photo of a consenting person → one encrypted template. The photo never outlives it."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Protocol

from facegate.adapters.envelope import EnvelopeCipher, pack_sealed
from facegate.adapters.uploads import PRESIGN_SECONDS, PresignedUpload, UploadStore
from facegate.biometrics import EngineTemplate
from facegate.errors import (
    ConflictError,
    ConsentRequiredError,
    EnrolmentNotFoundError,
    FacegateError,
    ImageTooLargeError,
    ProcessingInterruptedError,
    UploadNotReceivedError,
)
from facegate.hashing import SubjectHasher
from facegate.observability import count, logger
from facegate.repositories.base import iso, utcnow
from facegate.repositories.consents import ConsentRepository
from facegate.repositories.enrolments import Enrolment, EnrolmentRepository
from facegate.repositories.templates import StoredTemplate, TemplateRepository
from facegate.services.audit import Auditor
from facegate.services.consent import NoticeService
from facegate.tenancy import CallerContext

JOB_RECORD_DAYS = 30
UPLOAD_PREFIX = "enrolments/"
# Deadlines of a pending job. A processing run lives inside one invocation of the embedding function, so it
# ends (or is killed) within the function's Timeout (30 s); the margin covers clocks of other instances.
PROCESSING_SECONDS = 120
# S3's event for an upload made just before the presigned URL expired reaches the function within this.
UPLOAD_GRACE_SECONDS = 120
UPLOAD_SECONDS = PRESIGN_SECONDS + UPLOAD_GRACE_SECONDS


class Enroller(Protocol):
    """What the service needs of the face engine (facegate.biometrics.FaceBiometrics)."""

    def enrol(self, image: bytes) -> EngineTemplate: ...


@dataclass(frozen=True)
class EnrolmentStarted:
    job: Enrolment
    upload: PresignedUpload | None = None


def upload_key(tenant_id: str, subject_ref: str, enrolment_id: str) -> str:
    """Object keys carry the tenant, the subject's keyed hash (so erasure finds pending uploads) and a
    random id; never the subject id."""
    return f"{UPLOAD_PREFIX}{tenant_id}/{subject_ref}/{enrolment_id}"


def parse_upload_key(key: str) -> tuple[str, str, str] | None:
    parts = key.split("/")
    if len(parts) != 4 or parts[0] + "/" != UPLOAD_PREFIX or not all(parts[1:]):
        return None
    return parts[1], parts[2], parts[3]


def template_context(tenant_id: str, subject_ref: str, purpose: str) -> dict[str, str]:
    return {"tenant": tenant_id, "subject": subject_ref, "purpose": purpose}


def subject_id_context(tenant_id: str, subject_ref: str) -> dict[str, str]:
    return {"tenant": tenant_id, "subject": subject_ref, "field": "subject_id"}


GalleryHook = Callable[[str, str, str, EngineTemplate], None]  # tenant, purpose, subject_ref, template


class EnrolmentService:
    def __init__(
        self,
        notices: NoticeService,
        consents: ConsentRepository,
        hasher: SubjectHasher,
        jobs: EnrolmentRepository,
        templates: TemplateRepository,
        cipher: EnvelopeCipher,
        uploads: UploadStore,
        engine: Callable[[], Enroller],
        auditor: Auditor,
        gallery_add: GalleryHook | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._notices = notices
        self._consents = consents
        self._hasher = hasher
        self._jobs = jobs
        self._templates = templates
        self._cipher = cipher
        self._uploads = uploads
        self._engine = engine
        self._auditor = auditor
        self._gallery_add = gallery_add
        self._clock = clock

    def start(
        self, caller: CallerContext, subject_id: str, purpose: str, image: bytes | None, content_type: str
    ) -> EnrolmentStarted:
        """Inline image: processed now (errors raised, job marked failed). Otherwise: a presigned upload."""
        self._notices.purpose(caller.tenant_id, purpose)
        ref = self._hasher.ref(caller.tenant_id, subject_id)
        self._require_consent(caller.tenant_id, ref, purpose)
        if image is not None and len(image) > self._uploads.max_bytes:
            raise ImageTooLargeError(f"the image may be at most {self._uploads.max_bytes} bytes")
        now = self._clock()
        # Inline: processed in this request. Presigned: the upload may come until the URL expires.
        phase, seconds = ("processing", PROCESSING_SECONDS) if image is not None else ("upload", UPLOAD_SECONDS)
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
                self._cipher.seal(subject_id.encode(), subject_id_context(caller.tenant_id, ref))
            ),
            phase=phase,
            deadline=int((now + timedelta(seconds=seconds)).timestamp()),
        )
        self._jobs.create(job)
        if image is None:
            upload = self._uploads.presign(upload_key(caller.tenant_id, ref, job.enrolment_id), content_type)
            return EnrolmentStarted(job, upload)
        finished, error = self._process(job, image, request_id=caller.request_id)
        if error is not None:
            raise error
        return EnrolmentStarted(finished)

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

    def status(self, caller: CallerContext, subject_id: str, enrolment_id: str) -> Enrolment:
        job = self._jobs.get(caller.tenant_id, self._hasher.ref(caller.tenant_id, subject_id), enrolment_id)
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

    def _require_consent(self, tenant_id: str, ref: str, purpose: str) -> None:
        state = self._consents.state(tenant_id, ref, purpose)
        if state is None or state.status != "granted":
            raise ConsentRequiredError(f"the subject has no active consent for '{purpose}'")

    def _process(self, job: Enrolment, image: bytes, request_id: str | None) -> tuple[Enrolment, FacegateError | None]:
        caller = CallerContext(job.tenant_id, job.actor, frozenset(), request_id)
        try:
            # Consent may have been withdrawn between the presigned POST and the upload.
            self._require_consent(job.tenant_id, job.subject_ref, job.purpose)
            template = self._engine().enrol(image)
        except FacegateError as error:
            return self._fail(job, error, request_id), error
        finally:
            del image  # the only copy of the raw image in this process
        purpose = self._notices.purpose(job.tenant_id, job.purpose)
        now = self._clock()
        expires_at = int((now + timedelta(days=purpose.retention_days)).timestamp())
        template_id = uuid.uuid4().hex
        sealed = self._cipher.seal(template.data, template_context(job.tenant_id, job.subject_ref, job.purpose))
        self._templates.put(
            StoredTemplate(
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
                created_at=iso(now),
                expires_at=expires_at,
                subject_sealed=job.subject_sealed,
            )
        )
        if purpose.identification_enabled and self._gallery_add is not None:
            self._gallery_add(job.tenant_id, job.purpose, job.subject_ref, template)
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

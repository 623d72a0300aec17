"""1:1 face verification at a chosen security level, with lockout and a signed result."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from facegate.adapters.envelope import EnvelopeCipher, Sealed
from facegate.adapters.uploads import PresignedUpload, UploadStore
from facegate.biometrics import EngineTemplate
from facegate.errors import (
    ConsentRequiredError,
    FacegateError,
    FallbackRequiredError,
    NotEnrolledError,
    ProbeNotFoundError,
    ReenrolmentRequiredError,
)
from facegate.hashing import SubjectHasher
from facegate.models.verification import FAR_BY_LEVEL
from facegate.observability import count, logger
from facegate.repositories.attempts import AttemptRepository
from facegate.repositories.base import utcnow
from facegate.repositories.consents import ConsentRepository
from facegate.repositories.templates import StoredTemplate, TemplateRepository
from facegate.services.audit import Auditor
from facegate.services.consent import NoticeService
from facegate.services.enrolment import template_context
from facegate.services.face_data import usable_templates
from facegate.services.results import ResultIssuer
from facegate.tenancy import CallerContext

LOCKOUT_FAILURES = 5
LOCKOUT_WINDOW = timedelta(minutes=15)
PROBE_PREFIX = "probes/"


class Matcher(Protocol):
    @property
    def model_id(self) -> str: ...
    @property
    def model_version(self) -> str: ...

    def enrol(self, image: bytes) -> EngineTemplate: ...
    def similarity(self, a: EngineTemplate, b: EngineTemplate) -> float: ...
    def threshold(self, far: float) -> float: ...


@dataclass(frozen=True)
class Verification:
    verification_id: str
    decision: str
    score: float
    threshold: float
    security_level: str
    model_id: str
    model_version: str
    result_token: str


def probe_key(tenant_id: str, probe_id: str) -> str:
    return f"{PROBE_PREFIX}{tenant_id}/{probe_id}"


def take_probe(uploads: UploadStore, tenant_id: str, probe_id: str | None) -> bytes:
    """Read an uploaded probe (size and type checked) and delete it, whatever happens."""
    if probe_id is None:
        raise ProbeNotFoundError("send an inline image or the probe_id of an upload")
    key = probe_key(tenant_id, probe_id)
    try:
        return uploads.fetch(key)
    except FacegateError:
        raise
    except Exception as error:  # NoSuchKey and the like: an unknown or expired probe
        raise ProbeNotFoundError() from error
    finally:
        uploads.delete(key)


class VerificationService:
    def __init__(
        self,
        notices: NoticeService,
        consents: ConsentRepository,
        hasher: SubjectHasher,
        templates: TemplateRepository,
        attempts: AttemptRepository,
        cipher: EnvelopeCipher,
        uploads: UploadStore,
        engine: Callable[[], Matcher],
        results: ResultIssuer,
        auditor: Auditor,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._notices = notices
        self._consents = consents
        self._hasher = hasher
        self._templates = templates
        self._attempts = attempts
        self._cipher = cipher
        self._uploads = uploads
        self._engine = engine
        self._results = results
        self._auditor = auditor
        self._clock = clock

    def presign_probe(self, caller: CallerContext, content_type: str) -> tuple[str, PresignedUpload]:
        probe_id = uuid.uuid4().hex
        return probe_id, self._uploads.presign(probe_key(caller.tenant_id, probe_id), content_type)

    def verify(
        self,
        caller: CallerContext,
        subject_id: str,
        purpose: str,
        security_level: str,
        image: bytes | None = None,
        probe_id: str | None = None,
    ) -> Verification:
        """Checks in order: purpose, consent, lockout, enrolment; then embeds the probe and decides.

        The probe upload (if any) is deleted on every path, before anything else can fail.
        """
        if image is None:
            image = self._take_probe(caller.tenant_id, probe_id)
        notice_purpose = self._notices.purpose(caller.tenant_id, purpose)
        ref = self._hasher.ref(caller.tenant_id, subject_id)
        state = self._consents.state(caller.tenant_id, ref, purpose)
        if state is None or not state.active:
            raise ConsentRequiredError(f"the subject has no active consent for '{purpose}'")
        now = self._clock()
        if self._attempts.recent_failures(caller.tenant_id, ref, purpose, now - LOCKOUT_WINDOW) >= LOCKOUT_FAILURES:
            count("FaceLockedOut")
            raise FallbackRequiredError(
                "too many failed face attempts; verify another way",
                methods=self._alternatives(caller.tenant_id, purpose),
            )
        engine = self._engine()
        # Only templates enrolled under the consent active now: never one of a withdrawn period.
        stored = usable_templates(self._templates.for_subject(caller.tenant_id, ref, purpose), state)
        if not stored:
            raise NotEnrolledError()
        current = [t for t in stored if (t.model_id, t.model_version) == (engine.model_id, engine.model_version)]
        if not current:
            raise ReenrolmentRequiredError(model_id=engine.model_id, model_version=engine.model_version)
        probe = engine.enrol(image)
        del image
        score = max(engine.similarity(probe, self._decrypt(caller, ref, template)) for template in current)
        threshold = engine.threshold(FAR_BY_LEVEL[security_level])
        decision = "match" if score >= threshold else "no_match"
        if decision == "match":
            self._attempts.clear(caller.tenant_id, ref, purpose)
        else:
            self._attempts.add_failure(caller.tenant_id, ref, purpose, now, LOCKOUT_WINDOW)
        token, claims = self._results.issue(
            caller.tenant_id,
            subject_id,
            purpose,
            method="face",
            decision=decision,
            score=round(score, 4),
            threshold=round(threshold, 4),
            security_level=security_level,
            model_id=engine.model_id,
            model_version=engine.model_version,
        )
        self._auditor.record(
            caller,
            "face.verified",
            decision,
            ref,
            purpose,
            level=security_level,
            retention=notice_purpose.retention_days,
        )
        count("FaceVerified" if decision == "match" else "FaceNotMatched", level=security_level)
        logger.info("verification decided", subject_ref=ref, purpose=purpose, decision=decision)
        return Verification(
            verification_id=claims["jti"],
            decision=decision,
            score=round(score, 4),
            threshold=round(threshold, 4),
            security_level=security_level,
            model_id=engine.model_id,
            model_version=engine.model_version,
            result_token=token,
        )

    def _take_probe(self, tenant_id: str, probe_id: str | None) -> bytes:
        return take_probe(self._uploads, tenant_id, probe_id)

    def _decrypt(self, caller: CallerContext, ref: str, template: StoredTemplate) -> EngineTemplate:
        """Every decryption of a template is audited before the plaintext exists."""
        self._auditor.record(
            caller, "template.decrypted", "ok", ref, template.purpose, template_id=template.template_id
        )
        data = self._cipher.open(
            Sealed(template.ciphertext, template.encrypted_key, template.nonce),
            template_context(caller.tenant_id, ref, template.purpose),
        )
        return EngineTemplate(template.model_id, template.model_version, data)

    def _alternatives(self, tenant_id: str, purpose: str) -> list[str]:
        for locale in ("en", "zh-CN"):
            try:
                return list(self._notices.current(tenant_id, purpose, locale).content["alternatives"])
            except FacegateError:
                continue
        return ["email_otp", "sms_otp", "totp", "manual_review"]

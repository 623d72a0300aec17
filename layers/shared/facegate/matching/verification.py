"""1:1 face verification at a chosen security level, with lockout and a signed result."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from facegate.consent.ports import ConsentStates, Purposes
from facegate.core.audit import Auditor
from facegate.core.clock import utcnow
from facegate.core.errors import (
    ConsentRequiredError,
    FacegateError,
    FallbackRequiredError,
    InvalidRequestError,
    NotEnrolledError,
    ProbeNotFoundError,
    ReenrolmentRequiredError,
)
from facegate.core.events import DomainEvents
from facegate.core.hashing import Subject
from facegate.core.observability import count, logger
from facegate.core.ports import Uploads
from facegate.core.results import ResultIssuer
from facegate.core.tenancy import CallerContext
from facegate.core.uploads import PresignedUpload
from facegate.matching.entities import (
    FAR_BY_LEVEL,
    LOCKOUT_FAILURES,
    LOCKOUT_WINDOW,
    Verification,
    probe_key,
    usable_templates,
)
from facegate.matching.ports import AttemptStore, Biometrics, TemplateStore
from facegate.matching.templates import TemplateOpener

if TYPE_CHECKING:
    from facegate.liveness.entities import LivenessOutcome, LivenessProof
    from facegate.liveness.service import LivenessService


def refuse_image_and_probe(uploads: Uploads, key: str) -> InvalidRequestError:
    """Both an inline image and an uploaded probe: ambiguous. The unused probe is deleted all the same."""
    uploads.delete(key)
    return InvalidRequestError(
        "send either an inline image or the probe_id of an upload, not both",
        errors=[{"loc": ["body", "probe_id"], "msg": "not allowed with image", "type": "image_and_probe_id"}],
    )


def take_probe(uploads: Uploads, tenant_id: str, probe_id: str | None, subject_ref: str | None = None) -> bytes:
    """Read an uploaded probe (size and type checked) and delete it, whatever happens."""
    if probe_id is None:
        raise ProbeNotFoundError("send an inline image or the probe_id of an upload")
    key = probe_key(tenant_id, probe_id, subject_ref)
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
        notices: Purposes,
        consents: ConsentStates,
        templates: TemplateStore,
        attempts: AttemptStore,
        opener: TemplateOpener,
        uploads: Uploads,
        engine: Callable[[], Biometrics],
        results: ResultIssuer,
        auditor: Auditor,
        clock: Callable[[], datetime] = utcnow,
        liveness: LivenessService | None = None,
        events: DomainEvents | None = None,
    ) -> None:
        self._liveness = liveness
        self._events = events  # webhooks: verification.decided
        self._notices = notices
        self._consents = consents
        self._templates = templates
        self._attempts = attempts
        self._opener = opener
        self._uploads = uploads
        self._engine = engine
        self._results = results
        self._auditor = auditor
        self._clock = clock

    def presign_probe(
        self, caller: CallerContext, content_type: str, subject: Subject | None = None
    ) -> tuple[str, PresignedUpload]:
        """A probe for verification is bound to its subject (only that subject's verification takes it,
        and the subject's erasure deletes it); one without a subject serves identification."""
        probe_id = uuid.uuid4().hex
        ref = subject.ref if subject is not None else None
        return probe_id, self._uploads.presign(probe_key(caller.tenant_id, probe_id, ref), content_type)

    def verify(
        self,
        caller: CallerContext,
        subject: Subject,
        purpose: str,
        security_level: str,
        image: bytes | None = None,
        probe_id: str | None = None,
        liveness: LivenessProof | None = None,
    ) -> Verification:
        """Checks in order: purpose, consent, lockout, enrolment; then embeds the probe and decides.

        The probe upload (if any) is deleted on every path, before anything else can fail. The lockout
        read only answers a locked subject early; what holds the limit under parallel requests is the
        attempt reserved atomically just before the engine runs. A no_match keeps its reservation as
        the failure, a match clears the count, and an attempt that ends before a decision (no_face,
        invalid_image, unsupported or too large image, ...) gives its reservation back.
        """
        ref = subject.ref
        if image is not None and probe_id is not None:
            raise refuse_image_and_probe(self._uploads, probe_key(caller.tenant_id, probe_id, ref))
        # -- liveness hook (facegate.liveness): a burst replaces the single photo
        if liveness is not None and (image is not None or probe_id is not None):
            if probe_id is not None:
                self._uploads.delete(probe_key(caller.tenant_id, probe_id, ref))
            raise InvalidRequestError(
                "send a liveness burst or a single photo, not both",
                errors=[{"loc": ["body", "liveness"], "msg": "not allowed with image", "type": "liveness_and_image"}],
            )
        if image is None and liveness is None:
            image = take_probe(self._uploads, caller.tenant_id, probe_id, ref)
        notice_purpose = self._notices.purpose(caller.tenant_id, purpose)
        checked = self._liveness.require(caller, purpose, liveness) if self._liveness is not None else None
        # -- end liveness hook
        state = self._consents.state(caller.tenant_id, ref, purpose)
        if state is None or not state.active:
            raise ConsentRequiredError(f"the subject has no active consent for '{purpose}'")
        now = self._clock()
        if self._attempts.recent_failures(caller.tenant_id, ref, purpose, now - LOCKOUT_WINDOW) >= LOCKOUT_FAILURES:
            raise self._locked_out(caller.tenant_id, purpose)
        engine = self._engine()
        # Only templates enrolled under the consent active now: never one of a withdrawn period.
        stored = usable_templates(self._templates.for_subject(caller.tenant_id, ref, purpose), state)
        if not stored:
            raise NotEnrolledError()
        current = [t for t in stored if (t.model_id, t.model_version) == (engine.model_id, engine.model_version)]
        if not current:
            raise ReenrolmentRequiredError(model_id=engine.model_id, model_version=engine.model_version)
        # -- liveness hook: the session is used (once) before the attempt is reserved and the engine runs
        burst = None
        if liveness is not None and self._liveness is not None:
            burst = self._liveness.claim(caller, ref, purpose, liveness)
        # -- end liveness hook
        reservation = self._attempts.reserve(caller.tenant_id, ref, purpose, now, LOCKOUT_FAILURES, LOCKOUT_WINDOW)
        if reservation is None:
            raise self._locked_out(caller.tenant_id, purpose)
        try:
            # -- liveness hook: identity is verified on the live burst's best frontal frame, and only if live
            if burst is not None and self._liveness is not None:
                checked = self._liveness.judge(caller, burst, subject_id=subject.id)
                probe = checked.template  # None unless live
            # -- end liveness hook
            else:
                assert image is not None
                probe = engine.enrol(image)
                del image
            if probe is not None:
                score = max(engine.similarity(probe, self._opener.open(caller, template)) for template in current)
                threshold = engine.threshold(FAR_BY_LEVEL[security_level])
        except BaseException:
            self._attempts.release(reservation)  # no decision was made: the attempt does not count
            raise
        # -- liveness hook: not live is never a match and no comparison is made
        if probe is None and checked is not None:
            if checked.decision != "spoof":
                # retry: the person could not do the challenge, which is not a failed face attempt
                self._attempts.release(reservation)
            # spoof: the reservation stays, as a counted failure
            return self._not_live(caller, subject.id, ref, purpose, security_level, engine, checked)
        # -- end liveness hook
        decision = "match" if score >= threshold else "no_match"
        if decision == "match":
            self._attempts.clear(caller.tenant_id, ref, purpose)
        # A no_match keeps its reservation: that is the counted failure.
        token, claims = self._results.issue(
            caller.tenant_id,
            subject.id,
            purpose,
            method="face",
            decision=decision,
            security_level=security_level,
            model_id=engine.model_id,
            model_version=engine.model_version,
            **({"liveness": checked.claims()} if checked is not None else {}),
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
        self._announce(caller, subject.id, purpose, claims, checked)
        exposed = notice_purpose.expose_scores
        if exposed:
            self._auditor.record(caller, "face.scores_exposed", decision, ref, purpose, verification_id=claims["jti"])
        return Verification(
            verification_id=claims["jti"],
            decision=decision,
            security_level=security_level,
            model_id=engine.model_id,
            model_version=engine.model_version,
            result_token=token,
            score=round(score, 4) if exposed else None,
            threshold=round(threshold, 4) if exposed else None,
            liveness=checked,
        )

    def _not_live(
        self,
        caller: CallerContext,
        subject_id: str,
        ref: str,
        purpose: str,
        security_level: str,
        engine: Biometrics,
        checked: LivenessOutcome,
    ) -> Verification:
        """A spoof or retry: never a match, no comparison made; signed as a no_match with the liveness decision,
        and the non-face methods offered."""
        token, claims = self._results.issue(
            caller.tenant_id,
            subject_id,
            purpose,
            method="face",
            decision="no_match",
            security_level=security_level,
            model_id=engine.model_id,
            model_version=engine.model_version,
            liveness=checked.claims(),
        )
        self._auditor.record(
            caller, "face.verified", "no_match", ref, purpose, level=security_level, liveness=checked.decision
        )
        count("FaceNotLive", decision=checked.decision)
        logger.info("verification refused: not live", subject_ref=ref, purpose=purpose, liveness=checked.decision)
        self._announce(caller, subject_id, purpose, claims, checked)
        return Verification(
            verification_id=claims["jti"],
            decision="no_match",
            security_level=security_level,
            model_id=engine.model_id,
            model_version=engine.model_version,
            result_token=token,
            liveness=checked,
            alternatives=self._alternatives(caller.tenant_id, purpose),
        )

    # -- webhooks hook
    def _announce(
        self,
        caller: CallerContext,
        subject_id: str,
        purpose: str,
        claims: dict[str, Any],
        checked: LivenessOutcome | None,
    ) -> None:
        if self._events is not None:
            self._events.verification_decided(
                caller.tenant_id,
                subject_id,
                purpose,
                method="face",
                decision=str(claims["decision"]),
                verification_id=str(claims["jti"]),
                decided_at=int(claims["iat"]),
                liveness=checked.decision if checked is not None else None,
            )

    # -- end webhooks hook

    def _locked_out(self, tenant_id: str, purpose: str) -> FallbackRequiredError:
        count("FaceLockedOut")
        return FallbackRequiredError(
            "too many failed face attempts; verify another way", methods=self._alternatives(tenant_id, purpose)
        )

    def _alternatives(self, tenant_id: str, purpose: str) -> list[str]:
        for locale in ("en", "zh-CN"):
            try:
                return list(self._notices.current(tenant_id, purpose, locale).content["alternatives"])
            except FacegateError:
                continue
        return ["email_otp", "sms_otp", "totp", "manual_review"]

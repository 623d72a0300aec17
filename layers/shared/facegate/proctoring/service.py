"""Exam proctoring: start (consent, then a live verification against the enrolment), frame batches applied in
order and exactly once, the signed report at the end, and the human review of each incident.

Frames are decoded and tracked in memory by the engine and never stored or logged: only incidents (type, times,
frame count, confidence, model version) and counters are kept, with the purpose's retention as their TTL.
A batch is applied by one conditional write on the session's `next_sequence` (with the batch's incidents in the
same transaction): a retry of any applied batch gets its stored answer and changes nothing, a batch out of
order or one that lost a race gets 409 `sequence_conflict` with the sequence expected.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from facegate.consent.entities import ConsentState
from facegate.consent.ports import ConsentStates, Purposes
from facegate.core.audit import Auditor
from facegate.core.clock import iso, utcnow
from facegate.core.errors import (
    ConsentRequiredError,
    EventPublishError,
    FacegateError,
    IdentityNotVerifiedError,
    ImageTooLargeError,
    IncidentNotFoundError,
    InvalidRequestError,
    LivenessRequiredError,
    NotEnrolledError,
    ProctoringBatchTooLargeError,
    ProctoringSessionEndedError,
    ProctoringSessionExpiredError,
    ProctoringSessionNotFoundError,
    ReenrolmentRequiredError,
    SequenceConflictError,
    TimestampsNotIncreasingError,
    UnsupportedMediaTypeError,
)
from facegate.core.hashing import Subject
from facegate.core.observability import count, logger
from facegate.core.ports import Signer
from facegate.core.tenancy import CallerContext
from facegate.matching.entities import EngineTemplate, Verification, usable_templates
from facegate.matching.ports import TemplateStore
from facegate.matching.templates import TemplateOpener
from facegate.proctoring.entities import (
    ALTERNATIVES,
    INCIDENT_TYPES,
    MAX_BATCH_FRAMES,
    MAX_FRAME_BYTES,
    MAX_SESSION_SECONDS,
    MODE_FACE,
    NO_ADVERSE_DECISION,
    SECURITY_LEVEL,
    Batch,
    BatchOutcome,
    IncidentRecord,
    ProctoringSession,
    ReviewStatus,
    SessionView,
    guidance_text,
)
from facegate.proctoring.ports import Events, ProctorEngine, ProctoringSessions

if TYPE_CHECKING:  # the liveness proof travels through to the verification
    from facegate.liveness.entities import LivenessProof

DEFAULT_METHODS = ["email_otp", "sms_otp", "totp", "manual_review"]
REPORT_TYPE = "proctoring-report"
END_ATTEMPTS = 3  # an end that loses to a batch applied meanwhile is made again over it
SOURCE = "facegate.proctoring"

Verify = Callable[..., Verification]  # VerificationService.verify


def _is_jpeg(frame: bytes) -> bool:
    return frame[:3] == b"\xff\xd8\xff"


def batch_digest(batch: Batch) -> str:
    """Identifies a batch's content: a retry must be the same frames at the same times."""
    h = hashlib.sha256(f"{batch.sequence}|{','.join(repr(float(t)) for t in batch.timestamps_ms)}".encode())
    for frame in batch.frames:
        h.update(hashlib.sha256(frame).digest())
    return h.hexdigest()


class ProctoringService:
    def __init__(
        self,
        sessions: ProctoringSessions,
        notices: Purposes,
        consents: ConsentStates,
        templates: TemplateStore,
        opener: TemplateOpener,
        verify: Verify,
        engine: Callable[[], ProctorEngine],
        signer: Signer,
        events: Events,
        auditor: Auditor,
        issuer: str,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._sessions = sessions
        self._notices = notices
        self._consents = consents
        self._templates = templates
        self._opener = opener
        self._verify = verify
        self._engine = engine
        self._signer = signer
        self._events = events
        self._auditor = auditor
        self._issuer = issuer
        self._clock = clock

    # -- start

    def start(
        self,
        caller: CallerContext,
        subject: Subject,
        purpose: str,
        exam_id: str,
        liveness: LivenessProof | None,
        frame_interval_s: int,
    ) -> tuple[ProctoringSession, Verification]:
        """Consent first (else the non-face sittings are offered), then a live 1:1 verification of the candidate
        against their enrolment; only a live match starts the session."""
        notice_purpose = self._notices.purpose(caller.tenant_id, purpose)
        state = self._consents.state(caller.tenant_id, subject.ref, purpose)
        if state is None or not state.active:
            count("ProctoringConsentMissing")
            self._auditor.record(caller, "proctoring.refused", "consent_required", subject.ref, purpose)
            raise ConsentRequiredError(
                f"the candidate has no active consent for '{purpose}': offer a sitting without face processing",
                consent=state.status if state is not None else "none",
                alternatives=list(ALTERNATIVES),
                methods=self.methods(caller.tenant_id, purpose),
            )
        if liveness is None:  # whatever the purpose's policy: a sitting starts only with a live burst
            raise LivenessRequiredError(
                methods=self.methods(caller.tenant_id, purpose), alternatives=list(ALTERNATIVES)
            )
        verification = self._verify(caller, subject, purpose, SECURITY_LEVEL, liveness=liveness)
        live = verification.liveness is not None and verification.liveness.decision == "live"
        if verification.decision != "match" or not live:
            count("ProctoringNotVerified")
            checked = verification.liveness
            raise IdentityNotVerifiedError(
                verification_id=verification.verification_id,
                decision=verification.decision,
                liveness={"decision": checked.decision, "reasons": list(checked.reasons)} if checked else None,
                alternatives=list(ALTERNATIVES),
                methods=self.methods(caller.tenant_id, purpose),
            )
        now = self._clock()
        engine = self._engine()
        session = ProctoringSession(
            session_id=uuid.uuid4().hex,
            tenant_id=caller.tenant_id,
            subject_ref=subject.ref,
            purpose=purpose,
            exam_id=exam_id,
            created_at=iso(now),
            expires_at=int((now + timedelta(days=notice_purpose.retention_days)).timestamp()),
            frame_interval_s=frame_interval_s,
            consent_epoch=state.epoch,
            verification_id=verification.verification_id,
            liveness=verification.liveness.claims() if verification.liveness is not None else {},
            model_id=engine.model_id,
            model_version=engine.model_version,
        )
        self._sessions.create(session)
        self._auditor.record(
            caller, "proctoring.session_started", "ok", subject.ref, purpose, session_id=session.session_id
        )
        count("ProctoringSessionStarted")
        logger.info("proctoring started", subject_ref=subject.ref, session_id=session.session_id)
        return session, verification

    def choose_alternative(
        self, caller: CallerContext, subject: Subject, purpose: str, exam_id: str, mode: str
    ) -> ProctoringSession:
        """The candidate sits the exam without face processing (human proctor, in person): recorded as such,
        with no consent needed and nothing biometric processed."""
        notice_purpose = self._notices.purpose(caller.tenant_id, purpose)
        if mode not in ALTERNATIVES:
            raise InvalidRequestError(f"mode must be face or one of {list(ALTERNATIVES)}")
        now = self._clock()
        session = ProctoringSession(
            session_id=uuid.uuid4().hex,
            tenant_id=caller.tenant_id,
            subject_ref=subject.ref,
            purpose=purpose,
            exam_id=exam_id,
            created_at=iso(now),
            expires_at=int((now + timedelta(days=notice_purpose.retention_days)).timestamp()),
            mode=mode,
            status="alternative",
        )
        self._sessions.create(session)
        self._auditor.record(
            caller, "proctoring.alternative_chosen", mode, subject.ref, purpose, session_id=session.session_id
        )
        count("ProctoringAlternativeChosen", mode=mode)
        return session

    def methods(self, tenant_id: str, purpose: str) -> list[str]:
        """The non-face verification methods the purpose's notice offers."""
        for locale in ("en", "zh-CN"):
            try:
                return list(self._notices.current(tenant_id, purpose, locale).content["alternatives"])
            except FacegateError:
                continue
        return list(DEFAULT_METHODS)

    # -- frames

    def submit(
        self, caller: CallerContext, session_id: str, batch: Batch, owner: Subject | None = None
    ) -> BatchOutcome:
        """`owner`: for a device caller, the token's subject (a session of anyone else is not found)."""
        session = self._session(caller, session_id, owner)
        if session.mode != MODE_FACE:
            raise ProctoringSessionEndedError("a sitting without face processing takes no frames")
        digest = batch_digest(batch)
        replay = self._replay(session, batch, digest)
        if replay is not None:
            return replay
        if session.ended:
            raise ProctoringSessionEndedError()
        if batch.sequence != session.next_sequence:
            raise SequenceConflictError(expected_sequence=session.next_sequence, sequence=batch.sequence)
        if (self._clock() - datetime.fromisoformat(session.created_at)).total_seconds() > MAX_SESSION_SECONDS:
            raise ProctoringSessionExpiredError()
        self._check_frames(session, batch)
        state = self._consents.state(caller.tenant_id, session.subject_ref, session.purpose)
        if state is None or not state.active or state.epoch != session.consent_epoch:
            raise ConsentRequiredError(
                "consent for this purpose was withdrawn: the session takes no more frames",
                alternatives=list(ALTERNATIVES),
            )
        template = self._template(caller, session, state)
        engine = self._engine()
        known = {i.incident_id: i for i in self._sessions.incidents(caller.tenant_id, session_id)}
        result = engine.process(session.state, batch.frames, batch.timestamps_ms, template)
        del template
        opened = [i for i in result.incidents if i.incident_id not in known]
        incidents = [self._keep_review(i, known.get(i.incident_id)) for i in result.incidents]
        after = {**known, **{i.incident_id: i for i in incidents}}
        totals = dict(session.totals)
        for key, value in result.stats.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                totals[key] = totals.get(key, 0) + value
        totals["batches"] = totals.get("batches", 0) + 1
        answer = {
            "session_id": session.session_id,
            "status": "active",
            "sequence": batch.sequence,
            "next_sequence": batch.sequence + 1,
            "state": {
                "frames": int(totals.get("frames", 0)),
                "batches": int(totals["batches"]),
                "last_ts": batch.timestamps_ms[-1],
                "incidents": len(after),
                "open_incidents": sorted(i.type for i in after.values() if i.open),
            },
            "incidents": [{**i.public(), "new": i in opened} for i in incidents],
            "guidance": [{"code": code, "text": guidance_text(code)} for code in dict.fromkeys(result.guidance)],
            "batch": {k: v for k, v in result.stats.items() if isinstance(v, int | float)},
        }
        applied = replace(
            session,
            next_sequence=batch.sequence + 1,
            state=result.state,
            last_ts=batch.timestamps_ms[-1],
            last_digest=digest,
            last_answer=answer,
            totals=totals,
        )
        if not self._sessions.apply_batch(session, applied, incidents):
            # Another request applied a batch first (or ended the session): the same batch is a retry.
            current = self._session(caller, session_id, owner)
            replay = self._replay(current, batch, digest)
            if replay is not None:
                return replay
            if current.ended:
                raise ProctoringSessionEndedError()
            raise SequenceConflictError(expected_sequence=current.next_sequence, sequence=batch.sequence)
        for incident in opened:
            self._publish(
                "ProctoringIncidentOpened",
                {
                    "tenant_id": session.tenant_id,
                    "session_id": session.session_id,
                    "exam_id": session.exam_id,
                    "purpose": session.purpose,
                    "incident_id": incident.incident_id,
                    "type": incident.type,
                    "technical": incident.technical,
                    "start_ts": incident.start_ts,
                    "confidence": round(float(incident.confidence), 4),
                    "model_version": incident.model_version,
                },
            )
            count("ProctoringIncidentOpened", type=incident.type)
        logger.info(
            "proctoring batch applied",
            session_id=session.session_id,
            sequence=batch.sequence,
            frames=len(batch.frames),
            incidents=len(incidents),
            guidance=result.guidance,
        )
        return BatchOutcome(answer)

    def _replay(self, session: ProctoringSession, batch: Batch, digest: str) -> BatchOutcome | None:
        """The stored answer if this batch was applied already (a client's retry: same sequence, same frames and
        times), else None. The last batch's answer is on the session item; older ones are read from their own."""
        if batch.sequence >= session.next_sequence:
            return None
        if batch.sequence == session.next_sequence - 1 and session.last_answer is not None:
            stored: tuple[str, dict[str, Any]] | None = (str(session.last_digest), session.last_answer)
        else:
            stored = self._sessions.batch_answer(session.tenant_id, session.session_id, batch.sequence)
        if stored is None or stored[0] != digest:
            return None
        count("ProctoringBatchReplayed")
        return BatchOutcome(dict(stored[1]), replayed=True)

    def _check_frames(self, session: ProctoringSession, batch: Batch) -> None:
        if len(batch.frames) > MAX_BATCH_FRAMES:
            raise ProctoringBatchTooLargeError(
                f"send at most {MAX_BATCH_FRAMES} frames a batch", max_frames=MAX_BATCH_FRAMES
            )
        if len(batch.frames) != len(batch.timestamps_ms):
            raise InvalidRequestError("send one timestamp per frame")
        previous = session.last_ts
        for n, ts in enumerate(batch.timestamps_ms):
            if (previous is not None and ts <= previous) or ts < 0:
                raise TimestampsNotIncreasingError(frame=n, after=previous)
            previous = ts
        for n, frame in enumerate(batch.frames):
            if len(frame) > MAX_FRAME_BYTES:
                raise ImageTooLargeError(f"frame {n} is larger than {MAX_FRAME_BYTES} bytes", frame=n)
            if not _is_jpeg(frame):
                raise UnsupportedMediaTypeError("proctoring frames are JPEG images", frame=n)

    def _template(self, caller: CallerContext, session: ProctoringSession, state: ConsentState) -> EngineTemplate:
        """The enrolment the frames are checked against (the newest usable one), opened through the audited opener."""
        engine = self._engine()
        stored = usable_templates(
            self._templates.for_subject(caller.tenant_id, session.subject_ref, session.purpose), state
        )
        if not stored:
            raise NotEnrolledError()
        current = [t for t in stored if (t.model_id, t.model_version) == (engine.model_id, engine.model_version)]
        if not current:
            raise ReenrolmentRequiredError(model_id=engine.model_id, model_version=engine.model_version)
        return self._opener.open(caller, current[-1], reason="proctoring", session_id=session.session_id)

    @staticmethod
    def _keep_review(incident: IncidentRecord, stored: IncidentRecord | None) -> IncidentRecord:
        if stored is None:
            return incident
        return replace(
            incident,
            review_status=stored.review_status,
            review_note=stored.review_note,
            reviewed_by=stored.reviewed_by,
            reviewed_at=stored.reviewed_at,
        )

    # -- end and report

    def end(self, caller: CallerContext, session_id: str, owner: Subject | None = None) -> SessionView:
        """Close the open incidents and sign the report; ending an ended session answers the same report. A batch
        applied while the report was being made is not lost: the end is made again over it."""
        for _ in range(END_ATTEMPTS):
            session = self._session(caller, session_id, owner)
            if session.mode != MODE_FACE:
                raise ProctoringSessionEndedError("a sitting without face processing has no report")
            if session.ended:
                return self.view(caller, session_id)
            known = {i.incident_id: i for i in self._sessions.incidents(caller.tenant_id, session_id)}
            closed = self._engine().finish(session.state) if session.state is not None else []
            closed = [self._keep_review(i, known.get(i.incident_id)) for i in closed]
            for stale in known.values():  # anything the engine did not close is closed at the end, as it stands
                if stale.open and stale.incident_id not in {c.incident_id for c in closed}:
                    closed.append(replace(stale, open=False))
            final = {**known, **{i.incident_id: i for i in closed}}
            now = self._clock()
            claims = self._report(session, list(final.values()), now)
            token = self._signer.sign(claims)
            ended = replace(session, status="ended", ended_at=iso(now), report=claims, report_token=token)
            if self._sessions.end(session, ended, closed):
                break
        else:
            current = self._session(caller, session_id, owner)
            raise SequenceConflictError(expected_sequence=current.next_sequence)
        summary = claims["summary"]
        self._auditor.record(
            caller,
            "proctoring.session_ended",
            "ok",
            session.subject_ref,
            session.purpose,
            session_id=session.session_id,
            incidents_for_review=summary["incidents_for_review"],
            technical_conditions=summary["technical_conditions"],
        )
        self._publish(
            "ProctoringReportReady",
            {
                "tenant_id": session.tenant_id,
                "session_id": session.session_id,
                "exam_id": session.exam_id,
                "purpose": session.purpose,
                "ended_at": ended.ended_at,
                "incidents_for_review": summary["incidents_for_review"],
                "technical_conditions": summary["technical_conditions"],
                "totals": claims["totals"],
            },
        )
        count("ProctoringReportReady")
        return SessionView(ended, sorted(final.values(), key=lambda i: (i.start_ts, i.incident_id)))

    def _report(self, session: ProctoringSession, incidents: list[IncidentRecord], now: datetime) -> dict[str, Any]:
        timeline = sorted(incidents, key=lambda i: (i.start_ts, i.incident_id))
        totals = {kind: sum(1 for i in timeline if i.type == kind) for kind in INCIDENT_TYPES}
        for i in timeline:
            totals.setdefault(i.type, 0)
        technical = sum(1 for i in timeline if i.technical)
        capture = {k: v for k, v in session.totals.items()}
        capture["frame_interval_s"] = session.frame_interval_s
        started = datetime.fromisoformat(session.created_at)
        return {
            "iss": self._issuer,
            "aud": session.tenant_id,
            "typ": REPORT_TYPE,
            "jti": session.session_id,
            "iat": int(now.timestamp()),
            "session_id": session.session_id,
            "exam_id": session.exam_id,
            "purpose": session.purpose,
            "started_at": session.created_at,
            "ended_at": iso(now),
            "duration_s": max(0, int((now - started).total_seconds())),
            "start": {"verification_id": session.verification_id, "liveness": session.liveness},
            "model": {"id": session.model_id, "version": session.model_version},
            "capture": capture,
            "timeline": [{**i.public(), "open": False} for i in timeline],
            "totals": totals,
            "summary": {
                "incidents_for_review": len(timeline) - technical,
                "technical_conditions": technical,
                "counted_against_candidate": 0,
                "decision": "none_without_human_review",
                "statement": NO_ADVERSE_DECISION,
            },
        }

    def view(self, caller: CallerContext, session_id: str, owner: Subject | None = None) -> SessionView:
        session = self._session(caller, session_id, owner)
        incidents = sorted(
            self._sessions.incidents(caller.tenant_id, session_id), key=lambda i: (i.start_ts, i.incident_id)
        )
        return SessionView(session, incidents)

    # -- review

    def review(
        self, caller: CallerContext, session_id: str, incident_id: str, status: ReviewStatus, note: str | None
    ) -> IncidentRecord:
        """An admin confirms or dismisses an incident (audited; the note is kept with the incident, not audited)."""
        session = self._session(caller, session_id)
        found = next(
            (i for i in self._sessions.incidents(caller.tenant_id, session_id) if i.incident_id == incident_id), None
        )
        if found is None:
            raise IncidentNotFoundError()
        reviewed = replace(
            found, review_status=status, review_note=note, reviewed_by=caller.client_id, reviewed_at=iso(self._clock())
        )
        if not self._sessions.review(caller.tenant_id, session_id, reviewed):
            raise IncidentNotFoundError()
        self._auditor.record(
            caller,
            "proctoring.incident_reviewed",
            status,
            session.subject_ref,
            session.purpose,
            session_id=session_id,
            incident_id=incident_id,
            type=found.type,
            previous=found.review_status,
        )
        count("ProctoringIncidentReviewed", status=status)
        return reviewed

    # -- helpers

    def _session(self, caller: CallerContext, session_id: str, owner: Subject | None = None) -> ProctoringSession:
        """The tenant's session; for a device caller, only its own subject's for its own purpose (`owner`: the
        token's subject): anyone else's is not found, as another tenant's is (no probing of session ids)."""
        session = self._sessions.get(caller.tenant_id, session_id)
        if session is None:
            raise ProctoringSessionNotFoundError()
        device = caller.device_session
        if device is not None and (
            owner is None or session.subject_ref != owner.ref or session.purpose != device.purpose
        ):
            raise ProctoringSessionNotFoundError()
        return session

    def _publish(self, detail_type: str, detail: dict[str, Any]) -> None:
        """After the write that it announces: a bus that does not answer costs the event, never the batch."""
        try:
            self._events.publish(detail_type, detail)
        except EventPublishError:
            count("ProctoringEventNotPublished", detail_type=detail_type)
            logger.error("proctoring event not published", detail_type=detail_type)

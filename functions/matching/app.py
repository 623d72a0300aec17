"""Matching function: 1:1 verification and 1:N identification (inline probe or presigned upload),
the per-purpose switch for 1:N, the model's calibration as data, and exam proctoring (sessions, frame
batches, the signed report, incident review).

Thin adapter: parse and validate, call the verification service, map the result to a response.
"""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.utilities.typing import LambdaContext

from facegate.api.docs import returns
from facegate.api.handler import NO_STORE, lambda_entry, once
from facegate.api.idempotency import Idempotency
from facegate.api.images import decode_base64_image
from facegate.api.resolver import caller, create_resolver, device_caller, require_scope
from facegate.consent.api import PurposeName
from facegate.core.config import get_settings
from facegate.core.errors import OperationNotAllowedError
from facegate.core.hashing import Subject
from facegate.core.tenancy import CallerContext
from facegate.devices.api import DeviceVerificationRequest, StartDeviceLivenessSessionRequest
from facegate.devices.service import require_operation
from facegate.liveness.api import (
    LivenessBurst,
    LivenessPolicyView,
    LivenessResult,
    LivenessSessionResponse,
    StartLivenessSessionRequest,
)
from facegate.matching.api import (
    Candidate,
    ConfigurePurposeRequest,
    CreateIdentificationRequest,
    CreateProbeRequest,
    CreateVerificationRequest,
    IdentificationResponse,
    ModelCalibrationResponse,
    ProbeResponse,
    PurposeResponse,
    VerificationResponse,
)
from facegate.proctoring.api import (
    CapturePolicy,
    DeviceStartProctoringRequest,
    FramesResponse,
    IncidentView,
    NoticeView,
    ProctoringReportResponse,
    ProctoringSessionResponse,
    ReviewCounts,
    ReviewIncidentRequest,
    StartProctoringSessionRequest,
    SubmitFramesRequest,
)
from facegate.wiring import container

PurposePath = Annotated[PurposeName, Path()]

settings = get_settings()
app = create_resolver(max_body_bytes=settings.max_image_bytes * 4 // 3 + 64 * 1024)
idempotency = Idempotency(settings.idempotency_table, settings.client_limits)


def _inline(image: str | None, probe_id: str | None) -> bytes | None:
    """The inline image's bytes. With a probe_id as well the service refuses the pair (and deletes the
    probe) before it looks at the image, so the text is passed undecoded: a bad base64 must not skip that."""
    if image is None:
        return None
    return image.encode() if probe_id is not None else decode_base64_image(image)


@app.post("/v1/probes", responses=returns(ProbeResponse, 201))
def start_probe_upload(body: CreateProbeRequest) -> Response[dict[str, Any]]:
    who = caller(app, container().tenant_for_client)
    probe_id, upload = container().verifications.presign_probe(
        who, body.content_type, container().subject(who, body.subject_id) if body.subject_id is not None else None
    )
    answer = ProbeResponse.model_validate({"probe_id": probe_id, "upload": upload.__dict__})
    return Response(status_code=201, content_type="application/json", body=answer.model_dump(mode="json"))


@app.post("/v1/liveness/sessions", responses=returns(LivenessSessionResponse, 201))
def start_liveness_session(body: StartLivenessSessionRequest) -> Response[dict[str, Any]]:
    """A challenge (2 random actions) for this subject and purpose, to answer with a burst within 2 minutes."""
    who = caller(app, container().tenant_for_client)
    require_scope(who, "verify")
    session = container().liveness.start(who, body.subject_id, body.purpose)
    answer = LivenessSessionResponse.of(session, body.subject_id)
    return Response(status_code=201, content_type="application/json", body=answer.model_dump(mode="json"))


@app.post("/v1/verifications", responses=returns(VerificationResponse))
def verify(body: CreateVerificationRequest) -> Response[dict[str, Any]]:
    return _verify(caller(app, container().tenant_for_client), body)


def _verify(who: CallerContext, body: CreateVerificationRequest) -> Response[dict[str, Any]]:
    """POST /v1/verifications and POST /v1/device/verifications (the device's subject and purpose in `body`)."""
    subject = container().subject(who, body.subject_id)
    # A retried request (same Idempotency-Key) gets the first answer and never counts as a second attempt.

    def operation(parsed: CreateVerificationRequest) -> dict[str, Any]:
        burst = parsed.liveness if isinstance(parsed.liveness, LivenessBurst) else None
        result = container().verifications.verify(
            who,
            subject,
            parsed.purpose,
            parsed.security_level,
            image=_inline(parsed.image, parsed.probe_id),
            probe_id=parsed.probe_id,
            liveness=burst.proof() if burst is not None else None,
        )
        liveness: LivenessResult | str = "unavailable" if parsed.liveness == "advisory" else "off"
        if burst is not None and result.liveness is not None:
            liveness = LivenessResult.of(result.liveness, result.alternatives)
        return VerificationResponse(
            verification_id=result.verification_id,
            subject_id=parsed.subject_id,
            purpose=parsed.purpose,
            decision=result.decision,  # type: ignore[arg-type]
            # Never to a device, whatever the purpose's expose_scores: whoever holds it could hill-climb a fake face.
            score=result.score if who.device_session is None else None,
            threshold=result.threshold if who.device_session is None else None,
            security_level=parsed.security_level,
            model_id=result.model_id,
            model_version=result.model_version,
            liveness=liveness,  # type: ignore[arg-type]
            result_token=result.result_token,
        ).model_dump(mode="json", exclude_none=True)

    answer = once(app, idempotency, "verify", who.tenant_id, subject.ref, body, operation)
    # The signed result proves the person's identity (it can even prove a TOTP replacement): never cached.
    return Response(status_code=200, content_type="application/json", body=answer, headers=NO_STORE)


@app.post("/v1/identifications", responses=returns(IdentificationResponse))
def identify(body: CreateIdentificationRequest) -> dict[str, Any]:
    who = caller(app, container().tenant_for_client)
    image = _inline(body.image, body.probe_id)
    found = container().identifications.identify(who, body.purpose, body.top_k, image, body.probe_id)
    return IdentificationResponse(
        purpose=body.purpose,
        candidates=[Candidate(subject_id=s, score=score) for s, score in found.candidates],
        threshold=found.threshold,
        per_comparison_far=found.far,
        gallery_size=found.gallery_size,
        expected_false_candidate_rate=min(1.0, found.gallery_size * found.far),
        model_id=found.model_id,
        model_version=found.model_version,
    ).model_dump(mode="json", exclude_none=True)


@app.put("/v1/purposes/<purpose>", responses=returns(PurposeResponse))
def configure_purpose(purpose: PurposePath, body: ConfigurePurposeRequest) -> dict[str, Any]:
    who = caller(app, container().tenant_for_client)
    updated, size = container().identifications.configure(
        who, purpose, body.identification_enabled, body.assessment_id, body.retention_days, body.expose_scores
    )
    # The liveness policy (its reason was checked with the body): audited, `required` unless set otherwise.
    if body.liveness is not None:
        policy = container().liveness.configure(who, purpose, body.liveness, body.liveness_reason)
    else:
        policy = container().liveness.policy(who.tenant_id, purpose)
    return PurposeResponse(
        purpose=updated.name,
        display_name=updated.display_name,
        retention_days=updated.retention_days,
        identification_enabled=updated.identification_enabled,
        identification_assessment_id=updated.identification_assessment_id,
        expose_scores=updated.expose_scores,
        gallery_size=size,
        **LivenessPolicyView.fields(policy),
    ).model_dump(mode="json")


@app.get("/v1/models/calibration")
def model_calibration() -> ModelCalibrationResponse:
    """Per security level: the threshold and the false- and true-match rates each population measured at it."""
    require_scope(caller(app, container().tenant_for_client), "verify")
    return ModelCalibrationResponse.from_engine(container().biometrics.calibration())


# ---------------------------------------------------------------- proctoring (facegate.proctoring)
SessionIdPath = Annotated[str, Path(max_length=64)]
IncidentIdPath = Annotated[str, Path(max_length=96)]


def _report(view: Any) -> dict[str, Any]:
    session, incidents = view.session, view.incidents
    counts = {s: sum(1 for i in incidents if i.review_status == s) for s in ("pending", "confirmed", "dismissed")}
    return ProctoringReportResponse(
        session_id=session.session_id,
        exam_id=session.exam_id,
        purpose=session.purpose,
        mode=session.mode,
        status=session.status,
        started_at=session.created_at,
        ended_at=session.ended_at,
        next_sequence=session.next_sequence,
        report=session.report,
        report_token=session.report_token,
        incidents=[IncidentView.of(i) for i in incidents],
        review=ReviewCounts(**counts),
    ).model_dump(mode="json", exclude_none=True)


@app.post("/v1/proctoring/sessions", responses=returns(ProctoringSessionResponse, 201))
def start_proctoring(body: StartProctoringSessionRequest) -> Response[dict[str, Any]]:
    """Start a sitting: consent, then a live verification against the enrolment; answers the capture policy and
    the notice. Without consent: 403 consent_required with the sittings without face processing."""
    who = caller(app, container().tenant_for_client)
    require_scope(who, "verify")
    return _start_proctoring(who, body)


def _start_proctoring(who: CallerContext, body: StartProctoringSessionRequest) -> Response[dict[str, Any]]:
    """POST /v1/proctoring/sessions and POST /v1/device/proctoring/sessions (the device's subject and purpose in
    `body`)."""
    subject = container().subject(who, body.subject_id)

    def operation(parsed: StartProctoringSessionRequest) -> dict[str, Any]:
        service = container().proctoring
        if parsed.mode != "face":
            session = service.choose_alternative(who, subject, parsed.purpose, parsed.exam_id, parsed.mode)
            return ProctoringSessionResponse.of(session, parsed.subject_id).model_dump(mode="json", exclude_none=True)
        proof = parsed.liveness.proof() if parsed.liveness is not None else None
        session, verification = service.start(
            who, subject, parsed.purpose, parsed.exam_id, proof, parsed.frame_interval_s
        )
        notice = container().notices.current(who.tenant_id, parsed.purpose, parsed.locale)
        return ProctoringSessionResponse.of(
            session,
            parsed.subject_id,
            capture=CapturePolicy(frame_interval_s=session.frame_interval_s),
            notice=NoticeView(
                locale=notice.locale, version=notice.version, sha256=notice.sha256, content=notice.content
            ),
            verification_id=verification.verification_id,
            liveness=LivenessResult.of(verification.liveness) if verification.liveness is not None else None,
            result_token=verification.result_token,
        ).model_dump(mode="json", exclude_none=True)

    answer = once(app, idempotency, "proctor_start", who.tenant_id, subject.ref, body, operation)
    return Response(status_code=201, content_type="application/json", body=answer, headers=NO_STORE)


@app.post("/v1/proctoring/sessions/<session_id>/frames", responses=returns(FramesResponse))
def submit_proctoring_frames(session_id: SessionIdPath, body: SubmitFramesRequest) -> dict[str, Any]:
    """A batch of frames, applied in order and exactly once (`sequence`); tracked in memory, never stored."""
    who = caller(app, container().tenant_for_client)
    require_scope(who, "verify")
    return _submit_frames(who, session_id, body)


def _submit_frames(
    who: CallerContext, session_id: str, body: SubmitFramesRequest, owner: Subject | None = None
) -> dict[str, Any]:
    outcome = container().proctoring.submit(who, session_id, body.batch(), owner)
    return FramesResponse.model_validate({**outcome.answer, "replayed": outcome.replayed}).model_dump(
        mode="json", exclude_none=True, by_alias=True
    )


@app.post("/v1/proctoring/sessions/<session_id>/end", responses=returns(ProctoringReportResponse))
def end_proctoring(session_id: SessionIdPath) -> dict[str, Any]:
    """End the sitting: the signed report (idempotent: ending again answers the same report)."""
    who = caller(app, container().tenant_for_client)
    require_scope(who, "verify")
    return _report(container().proctoring.end(who, session_id))


@app.get("/v1/proctoring/sessions/<session_id>", responses=returns(ProctoringReportResponse))
def get_proctoring_session(session_id: SessionIdPath) -> dict[str, Any]:
    """The report (after the end) or the state so far, with each incident's review."""
    who = caller(app, container().tenant_for_client)
    require_scope(who, "verify")
    return _report(container().proctoring.view(who, session_id))


def _review(session_id: str, incident_id: str, body: ReviewIncidentRequest) -> dict[str, Any]:
    who = caller(app, container().tenant_for_client)
    require_scope(who, "admin")
    incident = container().proctoring.review(who, session_id, incident_id, body.status, body.note)
    return IncidentView.of(incident).model_dump(mode="json", exclude_none=True)


@app.put("/v1/proctoring/sessions/<session_id>/incidents/<incident_id>/review", responses=returns(IncidentView))
def review_incident(
    session_id: SessionIdPath, incident_id: IncidentIdPath, body: ReviewIncidentRequest
) -> dict[str, Any]:
    """An admin confirms or dismisses an incident, with a note (audited)."""
    return _review(session_id, incident_id, body)


@app.post("/v1/proctoring/sessions/<session_id>/incidents/<incident_id>/review", responses=returns(IncidentView))
def review_incident_post(
    session_id: SessionIdPath, incident_id: IncidentIdPath, body: ReviewIncidentRequest
) -> dict[str, Any]:
    """The same as PUT (for clients that only POST)."""
    return _review(session_id, incident_id, body)


# ---------------------------------------------------------------- end proctoring


# ---------------------------------------------------------------- device sessions (issue 15)
# The device token (functions/authorizer checked it) names the subject and purpose; the services are the tenant
# routes' own.


@app.post("/v1/device/liveness/sessions", responses=returns(LivenessSessionResponse, 201))
def device_start_liveness_session(body: StartDeviceLivenessSessionRequest) -> Response[dict[str, Any]]:
    """A challenge for the token's subject and purpose (as POST /v1/liveness/sessions)."""
    who = device_caller(app)
    grant = require_operation(who, "liveness", container().now())
    session = container().liveness.start(who, grant.subject_id, grant.purpose)
    answer = LivenessSessionResponse.of(session, grant.subject_id)
    return Response(status_code=201, content_type="application/json", body=answer.model_dump(mode="json"))


@app.post("/v1/device/verifications", responses=returns(VerificationResponse))
def device_verify(body: DeviceVerificationRequest) -> Response[dict[str, Any]]:
    """1:1 verification of the token's subject for its purpose (as POST /v1/verifications, with result_token)."""
    who = device_caller(app)
    grant = require_operation(who, "verify", container().now())
    request = CreateVerificationRequest(subject_id=grant.subject_id, purpose=grant.purpose, **dict(body))
    return _verify(who, request)


@app.post("/v1/device/proctoring/sessions", responses=returns(ProctoringSessionResponse, 201))
def device_start_proctoring(body: DeviceStartProctoringRequest) -> Response[dict[str, Any]]:
    """Start a sitting for the token's subject (as POST /v1/proctoring/sessions); the token's purpose must be
    exam_proctoring."""
    who = device_caller(app)
    grant = require_operation(who, "proctoring", container().now())
    if grant.purpose != "exam_proctoring":
        raise OperationNotAllowedError("proctoring is for device sessions of the purpose exam_proctoring")
    request = StartProctoringSessionRequest(subject_id=grant.subject_id, purpose="exam_proctoring", **dict(body))
    return _start_proctoring(who, request)


@app.post("/v1/device/proctoring/sessions/<session_id>/frames", responses=returns(FramesResponse))
def device_submit_proctoring_frames(session_id: SessionIdPath, body: SubmitFramesRequest) -> dict[str, Any]:
    """A batch of frames of the token's subject's sitting (as POST /v1/proctoring/sessions/{id}/frames); another
    subject's sitting is not found."""
    who = device_caller(app)
    grant = require_operation(who, "proctoring", container().now())
    return _submit_frames(who, session_id, body, container().subject(who, grant.subject_id))


@app.get("/v1/device/proctoring/sessions/<session_id>", responses=returns(ProctoringReportResponse))
def device_get_proctoring(session_id: SessionIdPath) -> dict[str, Any]:
    """The token's subject's sitting (as GET /v1/proctoring/sessions/{id}): after a reload, the device reads
    `next_sequence` here and goes on; another subject's sitting is not found."""
    who = device_caller(app)
    grant = require_operation(who, "proctoring", container().now())
    return _report(container().proctoring.view(who, session_id, container().subject(who, grant.subject_id)))


@app.post("/v1/device/proctoring/sessions/<session_id>/end", responses=returns(ProctoringReportResponse))
def device_end_proctoring(session_id: SessionIdPath) -> dict[str, Any]:
    """End the token's subject's sitting: the signed report (as POST /v1/proctoring/sessions/{id}/end)."""
    who = device_caller(app)
    grant = require_operation(who, "proctoring", container().now())
    return _report(container().proctoring.end(who, session_id, container().subject(who, grant.subject_id)))


# ---------------------------------------------------------------- end device sessions


@lambda_entry(idempotency)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)

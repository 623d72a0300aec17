"""Generated from layers/shared/facegate/openapi.json by sdk/python/tools/generate.py: do not edit.

Run `make openapi` (it regenerates the document, then this module); a test fails when they drift.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, NotRequired, TypedDict

API_VERSION = '0.1.0'


class BatchState(TypedDict):
    frames: int
    batches: int
    last_ts: float
    incidents: int
    open_incidents: list[str]


class Candidate(TypedDict):
    subject_id: str
    score: NotRequired[float | None]


class Capture(TypedDict):
    fps: NotRequired[int]
    frames: NotRequired[int]
    min_frames: NotRequired[int]
    max_frames: NotRequired[int]
    max_burst_base64_chars: NotRequired[int]
    max_frame_pixels: NotRequired[int]
    content_types: NotRequired[list[str]]
    mirrored: NotRequired[bool]


class CapturePolicy(TypedDict):
    frame_interval_s: int
    frame_interval_min_s: NotRequired[int]
    frame_interval_max_s: NotRequired[int]
    batch_frames: NotRequired[int]
    max_batch_frames: NotRequired[int]
    max_frame_bytes: NotRequired[int]
    max_batch_base64_chars: NotRequired[int]
    content_type: NotRequired[str]
    width: NotRequired[int]
    height: NotRequired[int]
    mirrored: NotRequired[bool]
    timestamps: NotRequired[str]
    stored: NotRequired[bool]


class Challenge(TypedDict):
    actions: list[Literal['turn_left', 'turn_right', 'blink', 'open_mouth']]


class ChallengeResponse(TypedDict):
    challenge_id: str
    session_id: str
    method: Literal['email_otp', 'sms_otp', 'totp', 'manual_review']
    status: Literal['pending', 'verified', 'locked', 'superseded', 'approved', 'rejected', 'closed']
    expires_at: str
    attempts_left: NotRequired[int | None]
    resend_after: NotRequired[str | None]
    sent_to: NotRequired[str | None]
    review_id: NotRequired[str | None]


class ConfigurePurposeRequest(TypedDict):
    liveness: NotRequired[Literal['required', 'optional'] | None]
    liveness_reason: NotRequired[str | None]
    identification_enabled: NotRequired[bool | None]
    assessment_id: NotRequired[str | None]
    retention_days: NotRequired[int | None]
    expose_scores: NotRequired[bool | None]


class ConsentHistoryResponse(TypedDict):
    subject_id: str
    records: list[ConsentRecordResponse]


class ConsentRecordResponse(TypedDict):
    record_id: str
    subject_id: str
    purpose: str
    action: Literal['granted', 'refused', 'withdrawn']
    notice_version: int
    notice_sha256: str
    locale: str
    channel: str
    age_band: str
    guardian: NotRequired[Guardian | None]
    created_at: str
    prev_hash: str
    record_hash: str
    receipt: str


class ConsentStateResponse(TypedDict):
    purpose: str
    status: Literal['granted', 'refused', 'withdrawn']
    active: bool
    record_id: str
    notice_version: int
    notice_sha256: str
    age_band: str
    updated_at: str


class ConsentStatesResponse(TypedDict):
    subject_id: str
    consents: list[ConsentStateResponse]


class CreateDeviceSessionRequest(TypedDict):
    subject_id: str
    purpose: str
    operations: list[Literal['notice', 'consent', 'liveness', 'verify', 'enrol', 'proctoring']]
    ttl_seconds: NotRequired[int]


class CreateIdentificationRequest(TypedDict):
    purpose: str
    image: NotRequired[str | None]
    probe_id: NotRequired[str | None]
    top_k: NotRequired[int]


class CreateProbeRequest(TypedDict):
    content_type: NotRequired[Literal['image/jpeg', 'image/png', 'image/webp']]
    subject_id: NotRequired[str | None]


class CreateVerificationRequest(TypedDict):
    subject_id: str
    purpose: str
    image: NotRequired[str | None]
    probe_id: NotRequired[str | None]
    security_level: NotRequired[Literal['standard', 'high', 'very_high']]
    liveness: NotRequired[LivenessBurst | Literal['off', 'advisory']]


class CreateWebhookEndpointRequest(TypedDict):
    url: str
    events: list[Literal['verification.decided', 'liveness.failed', 'proctoring.incident_opened', 'proctoring.report_ready', 'erasure.completed']]
    description: NotRequired[str | None]


class DecideReviewRequest(TypedDict):
    decision: Literal['approved', 'rejected']
    reason_code: NotRequired[str | None]


class DeletionJobResponse(TypedDict):
    deletion_id: str
    status: str
    scope: str
    requested_at: str
    purposes: NotRequired[list[str] | None]
    completed_at: NotRequired[str | None]
    removed: NotRequired[dict[str, Any] | None]
    receipt: NotRequired[str | None]


class DeviceEnrolmentRequest(TypedDict):
    """POST /v1/subjects/{subject_id}/enrolments's body without the purpose (the token's); a device never replaces templates."""
    image: NotRequired[str | None]
    liveness: NotRequired[LivenessBurst | None]


class DeviceSessionResponse(TypedDict):
    device_session_id: str
    token: str
    expires_at: str
    subject_id: str
    purpose: str
    operations: list[Literal['notice', 'consent', 'liveness', 'verify', 'enrol', 'proctoring']]


class DeviceSessionView(TypedDict):
    """What a device may know of its own session (GET /v1/device/session)."""
    device_session_id: str
    subject_id: str
    purpose: str
    operations: list[Literal['notice', 'consent', 'liveness', 'verify', 'enrol', 'proctoring']]
    expires_at: str
    alternatives: list[Literal['email_otp', 'sms_otp', 'totp', 'manual_review']]


class DeviceStartProctoringRequest(TypedDict):
    """POST /v1/proctoring/sessions's body without subject_id and purpose (the device token's)."""
    exam_id: str
    mode: NotRequired[Literal['face', 'human_proctor', 'in_person']]
    liveness: NotRequired[LivenessBurst | None]
    frame_interval_s: NotRequired[int]
    locale: NotRequired[Literal['zh-CN', 'en']]


class DeviceVerificationRequest(TypedDict):
    """POST /v1/verifications's body without subject_id and purpose (the token's) and without probe_id."""
    image: NotRequired[str | None]
    security_level: NotRequired[Literal['standard', 'high', 'very_high']]
    liveness: NotRequired[LivenessBurst | Literal['off', 'advisory']]


class EnrolmentResponse(TypedDict):
    enrolment_id: str
    subject_id: str
    purpose: str
    status: Literal['pending', 'completed', 'failed']
    reason: NotRequired[str | None]
    detail: NotRequired[str | None]
    created_at: str
    updated_at: str
    template: NotRequired[TemplateSummary | None]
    upload: NotRequired[UploadInstructions | None]


class FallbackVerificationResponse(TypedDict):
    """The same result as face verification (POST /v1/verifications); `method` tells which was used."""
    verification_id: str
    subject_id: str
    purpose: str
    method: Literal['email_otp', 'sms_otp', 'totp', 'manual_review']
    decision: Literal['match', 'no_match']
    result_token: str
    session_id: str
    challenge_id: str


class FieldError(TypedDict):
    loc: list[str]
    msg: str
    type: NotRequired[str | None]


class Frame(TypedDict):
    ts: float
    image: str


class FramesResponse(TypedDict):
    session_id: str
    status: str
    sequence: int
    next_sequence: int
    state: BatchState
    incidents: list[IncidentView]
    guidance: list[Guidance]
    batch: dict[str, Any]
    replayed: NotRequired[bool]


class GatewayMessage(TypedDict):
    """API Gateway's own answer, given before any function runs (for example 401 for a missing or invalid token, 403 for a missing scope, 404 for no such route, 413 for a body over 10 MB)"""
    message: str


class Guardian(TypedDict):
    name: str
    relation: Literal['parent', 'legal_guardian']
    contact: str
    decision: Literal['granted', 'refused']


class Guidance(TypedDict):
    code: Literal['more_light', 'move_closer', 'move_back', 'face_the_camera', 'only_one_face', 'uncover_camera', 'centre_your_face'] | str
    text: dict[str, Any]


class IdentificationResponse(TypedDict):
    purpose: str
    candidates: list[Candidate]
    threshold: NotRequired[float | None]
    per_comparison_far: float
    gallery_size: int
    expected_false_candidate_rate: float
    model_id: str
    model_version: str


class IncidentView(TypedDict):
    incident_id: str
    type: Literal['face_absent', 'multiple_faces', 'different_person', 'looking_away', 'camera_obstructed_or_dark', 'presentation_attack']
    technical: bool
    start_ts: float
    end_ts: float
    frames: int
    confidence: float
    model_version: str
    open: bool
    new: NotRequired[bool | None]
    review_status: NotRequired[Literal['pending', 'confirmed', 'dismissed'] | None]
    review_note: NotRequired[str | None]
    reviewed_at: NotRequired[str | None]


class LevelCalibration(TypedDict):
    security_level: Literal['standard', 'high', 'very_high']
    promised_fmr: float
    threshold: float
    populations: list[PopulationFigures]


class LivenessBurst(TypedDict):
    """The answer to a liveness session's challenge: frames in capture order and when each was taken."""
    session_id: str
    frames: list[str]
    timestamps_ms: list[float]


class LivenessResult(TypedDict):
    decision: Literal['live', 'spoof', 'retry', 'not_checked']
    reasons: list[str]
    method: str
    session_id: NotRequired[str | None]
    alternatives: NotRequired[list[str] | None]


class LivenessSessionResponse(TypedDict):
    session_id: str
    subject_id: str
    purpose: str
    challenge: Challenge
    expires_at: str
    capture: Capture


class ModelCalibrationResponse(TypedDict):
    model_id: str
    model_version: str
    method: str
    min_expected_impostors: int
    levels: list[LevelCalibration]
    populations: list[PopulationSet]


class NoticeContent(TypedDict):
    """What a person is told before any face data is processed (CAC art. 5; PIPL art. 17, 30)."""
    title: str
    processor: Processor
    purpose: str
    method: str
    retention: str
    retention_days: int
    rights: list[str]
    withdrawal: str
    alternatives: list[Literal['email_otp', 'sms_otp', 'totp', 'manual_review']]
    alternatives_text: str
    sensitive_data_statement: str


class NoticeResponse(TypedDict):
    purpose: str
    locale: str
    version: int
    sha256: str
    created_at: str
    content: NoticeContent


class NoticeView(TypedDict):
    locale: str
    version: int
    sha256: str
    content: dict[str, Any]


class PopulationFigures(TypedDict):
    """What one population measured at a level's shipped threshold (development data of the model card)."""
    population: str
    fmr: float
    false_matches: int
    impostor_pairs: int
    fmr_measurable: bool
    within_2x_promise: NotRequired[bool | None]
    tar: float
    tar_interval_90: NotRequired[list[float] | None]
    genuine_pairs: int


class PopulationSet(TypedDict):
    population: str
    images: int
    identities: int
    genuine_pairs: int
    impostor_pairs: int


class ProbeResponse(TypedDict):
    probe_id: str
    upload: UploadInstructions


class Problem(TypedDict):
    """The body of every error the service answers (RFC 9457), as `problem()` below writes it; the OpenAPI document describes every error response with it (tools/openapi.py)."""
    type: str
    title: str
    status: int
    code: str
    detail: str
    instance: NotRequired[str | None]
    errors: NotRequired[list[FieldError] | None]


class Processor(TypedDict):
    name: str
    contact: str


class ProctoringReportResponse(TypedDict):
    session_id: str
    exam_id: str
    purpose: str
    mode: str
    status: Literal['active', 'ended', 'alternative']
    started_at: str
    ended_at: NotRequired[str | None]
    next_sequence: int
    report: NotRequired[dict[str, Any] | None]
    report_token: NotRequired[str | None]
    incidents: list[IncidentView]
    review: ReviewCounts
    statement: NotRequired[str]


class ProctoringSessionResponse(TypedDict):
    session_id: str
    subject_id: str
    purpose: str
    exam_id: str
    mode: str
    status: Literal['active', 'ended', 'alternative']
    next_sequence: NotRequired[int]
    capture: NotRequired[CapturePolicy | None]
    notice: NotRequired[NoticeView | None]
    verification_id: NotRequired[str | None]
    liveness: NotRequired[LivenessResult | None]
    result_token: NotRequired[str | None]


class PurposeResponse(TypedDict):
    liveness: NotRequired[Literal['required', 'optional']]
    liveness_reason: NotRequired[str | None]
    purpose: str
    display_name: str
    retention_days: int
    identification_enabled: bool
    identification_assessment_id: str | None
    expose_scores: NotRequired[bool]
    gallery_size: NotRequired[int | None]


class PutNoticeRequest(TypedDict):
    locale: Literal['zh-CN', 'en']
    content: NoticeContent


class RecordConsentRequest(TypedDict):
    purpose: str
    notice_version: int
    notice_sha256: str
    decision: Literal['granted', 'refused']
    channel: Literal['web', 'mobile_app', 'kiosk', 'in_person', 'api']
    locale: Literal['zh-CN', 'en']
    age_band: Literal['adult', 'minor_14_17', 'child_under_14']
    guardian: NotRequired[Guardian | None]


class RecordDeviceConsentRequest(TypedDict):
    """POST /v1/subjects/{subject_id}/consents's body without the purpose (the token's)."""
    notice_version: int
    notice_sha256: str
    decision: Literal['granted', 'refused']
    channel: NotRequired[Literal['web', 'mobile_app', 'kiosk', 'in_person', 'api']]
    locale: Literal['zh-CN', 'en']
    age_band: Literal['adult', 'minor_14_17', 'child_under_14']
    guardian: NotRequired[Guardian | None]


class ReviewCounts(TypedDict):
    pending: int
    confirmed: int
    dismissed: int


class ReviewIncidentRequest(TypedDict):
    status: Literal['confirmed', 'dismissed']
    note: NotRequired[str | None]


class ReviewResponse(TypedDict):
    review_id: str
    status: Literal['pending', 'verified', 'locked', 'superseded', 'approved', 'rejected', 'closed']
    decided_at: NotRequired[str | None]


class RotateWebhookSecretRequest(TypedDict):
    window_seconds: NotRequired[int]


class SessionResponse(TypedDict):
    session_id: str
    purpose: str
    status: Literal['open', 'verified']
    methods: list[Literal['face', 'email_otp', 'sms_otp', 'totp', 'manual_review']]
    expires_at: str
    verification_id: NotRequired[str | None]


class SetUpTotpRequest(TypedDict):
    """The first secret needs the `fallback` scope only. Replacing an existing one needs one proof (or a token with the admin scope): each proof is a match of this subject by face, e-mail, SMS or manual review, at most 5 minutes old, and proves one replacement."""
    label: NotRequired[str | None]
    proof_session_id: NotRequired[str | None]
    proof_result_token: NotRequired[str | None]


class StartChallengeRequest(TypedDict):
    session_id: str
    method: Literal['email_otp', 'sms_otp', 'totp', 'manual_review']
    locale: NotRequired[Literal['zh-CN', 'en'] | None]


class StartDeviceLivenessSessionRequest(TypedDict):
    """Empty: the subject and purpose are the token's."""
    pass


class StartEnrolmentRequest(TypedDict):
    purpose: str
    image: NotRequired[str | None]
    content_type: NotRequired[Literal['image/jpeg', 'image/png', 'image/webp']]
    liveness: NotRequired[LivenessBurst | None]
    replace: NotRequired[bool]


class StartLivenessSessionRequest(TypedDict):
    subject_id: str
    purpose: str


class StartProctoringSessionRequest(TypedDict):
    subject_id: str
    purpose: Literal['exam_proctoring']
    exam_id: str
    mode: NotRequired[Literal['face', 'human_proctor', 'in_person']]
    liveness: NotRequired[LivenessBurst | None]
    frame_interval_s: NotRequired[int]
    locale: NotRequired[Literal['zh-CN', 'en']]


class StartSessionRequest(TypedDict):
    """What the tenant knows of the person; none of it can make face the only method."""
    subject_id: str
    purpose: str
    email: NotRequired[str | None]
    phone: NotRequired[str | None]
    totp_enrolled: NotRequired[bool]
    locale: NotRequired[Literal['zh-CN', 'en']]


class SubmitFramesRequest(TypedDict):
    sequence: int
    frames: list[Frame]


class TemplateSummary(TypedDict):
    template_id: str
    model_id: str
    model_version: str
    expires_at: int


class TotpResponse(TypedDict):
    subject_id: str
    secret: str
    otpauth_uri: str
    digits: NotRequired[int]
    period: NotRequired[int]
    algorithm: NotRequired[Literal['SHA1']]


class UploadInstructions(TypedDict):
    url: str
    fields: dict[str, Any]
    expires_in: int
    max_bytes: int
    content_type: str


class VerificationResponse(TypedDict):
    verification_id: str
    subject_id: str
    purpose: str
    method: NotRequired[Literal['face']]
    decision: Literal['match', 'no_match']
    score: NotRequired[float | None]
    threshold: NotRequired[float | None]
    security_level: Literal['standard', 'high', 'very_high']
    model_id: str
    model_version: str
    liveness: NotRequired[LivenessResult | Literal['off', 'unavailable']]
    result_token: str


class VerifyChallengeRequest(TypedDict):
    code: NotRequired[str | None]


class WebhookAttemptResponse(TypedDict):
    message_id: str
    event_type: Literal['verification.decided', 'liveness.failed', 'proctoring.incident_opened', 'proctoring.report_ready', 'erasure.completed']
    attempt: int
    outcome: Literal['delivered', 'failed', 'refused', 'endpoint_gone']
    at: str
    status_code: NotRequired[int | None]
    error: NotRequired[str | None]


class WebhookAttemptsResponse(TypedDict):
    endpoint_id: str
    attempts: list[WebhookAttemptResponse]


class WebhookEndpointCreatedResponse(TypedDict):
    endpoint_id: str
    url: str
    events: list[Literal['verification.decided', 'liveness.failed', 'proctoring.incident_opened', 'proctoring.report_ready', 'erasure.completed']]
    description: NotRequired[str | None]
    created_at: str
    rotation_ends_at: NotRequired[str | None]
    secret: str


class WebhookEndpointResponse(TypedDict):
    endpoint_id: str
    url: str
    events: list[Literal['verification.decided', 'liveness.failed', 'proctoring.incident_opened', 'proctoring.report_ready', 'erasure.completed']]
    description: NotRequired[str | None]
    created_at: str
    rotation_ends_at: NotRequired[str | None]


class WebhookEndpointsResponse(TypedDict):
    endpoints: list[WebhookEndpointResponse]


class Operations:
    """One method per operation of the OpenAPI document; `_call` is the transport (facegate_sdk.client)."""

    def _call(
        self,
        method: str,
        path: str,
        path_params: Mapping[str, str],
        query: Mapping[str, Any],
        body: Any,
        statuses: tuple[int, ...],
        idempotency_key: str | None = None,
    ) -> Any:
        raise NotImplementedError

    def compliance_report(self) -> dict[str, Any]:
        """GET /v1/compliance/report (tenant token, scope facegate/admin)."""
        return self._call('GET', '/v1/compliance/report', {}, {}, None, (200,))

    def get_deletion(self, deletion_id: str) -> DeletionJobResponse:
        """GET /v1/deletions/{deletion_id} (tenant token, scope facegate/delete)."""
        return self._call('GET', '/v1/deletions/{deletion_id}', {'deletion_id': deletion_id}, {}, None, (200,))

    def mint_device_session(self, body: CreateDeviceSessionRequest, *, idempotency_key: str | None = None) -> DeviceSessionResponse:
        """POST /v1/device-sessions (tenant token, scope facegate/verify)."""
        return self._call('POST', '/v1/device-sessions', {}, {}, body, (201,), idempotency_key)

    def revoke_device_session(self, device_session_id: str, *, idempotency_key: str | None = None) -> None:
        """DELETE /v1/device-sessions/{device_session_id} (tenant token, scope facegate/verify)."""
        self._call('DELETE', '/v1/device-sessions/{device_session_id}', {'device_session_id': device_session_id}, {}, None, (204,), idempotency_key)

    def device_record_consent(self, body: RecordDeviceConsentRequest, *, idempotency_key: str | None = None) -> ConsentRecordResponse:
        """POST /v1/device/consents (device token)."""
        return self._call('POST', '/v1/device/consents', {}, {}, body, (201,), idempotency_key)

    def device_start_enrolment(self, body: DeviceEnrolmentRequest, *, idempotency_key: str | None = None) -> EnrolmentResponse:
        """POST /v1/device/enrolments (device token)."""
        return self._call('POST', '/v1/device/enrolments', {}, {}, body, (201, 202), idempotency_key)

    def device_start_challenge(self, body: StartChallengeRequest, *, idempotency_key: str | None = None) -> ChallengeResponse:
        """POST /v1/device/fallback/challenges (device token)."""
        return self._call('POST', '/v1/device/fallback/challenges', {}, {}, body, (201,), idempotency_key)

    def device_verify_challenge(self, challenge_id: str, body: VerifyChallengeRequest, *, idempotency_key: str | None = None) -> FallbackVerificationResponse:
        """POST /v1/device/fallback/challenges/{challenge_id}/verify (device token)."""
        return self._call('POST', '/v1/device/fallback/challenges/{challenge_id}/verify', {'challenge_id': challenge_id}, {}, body, (200,), idempotency_key)

    def device_start_liveness_session(self, body: StartDeviceLivenessSessionRequest, *, idempotency_key: str | None = None) -> LivenessSessionResponse:
        """POST /v1/device/liveness/sessions (device token)."""
        return self._call('POST', '/v1/device/liveness/sessions', {}, {}, body, (201,), idempotency_key)

    def device_notice(self, *, locale: Literal['zh-CN', 'en'] | None = None) -> NoticeResponse:
        """GET /v1/device/notice (device token)."""
        return self._call('GET', '/v1/device/notice', {}, {'locale': locale}, None, (200,))

    def device_start_proctoring(self, body: DeviceStartProctoringRequest, *, idempotency_key: str | None = None) -> ProctoringSessionResponse:
        """POST /v1/device/proctoring/sessions (device token)."""
        return self._call('POST', '/v1/device/proctoring/sessions', {}, {}, body, (201,), idempotency_key)

    def device_get_proctoring(self, session_id: str) -> ProctoringReportResponse:
        """GET /v1/device/proctoring/sessions/{session_id} (device token)."""
        return self._call('GET', '/v1/device/proctoring/sessions/{session_id}', {'session_id': session_id}, {}, None, (200,))

    def device_end_proctoring(self, session_id: str, *, idempotency_key: str | None = None) -> ProctoringReportResponse:
        """POST /v1/device/proctoring/sessions/{session_id}/end (device token)."""
        return self._call('POST', '/v1/device/proctoring/sessions/{session_id}/end', {'session_id': session_id}, {}, None, (200,), idempotency_key)

    def device_submit_proctoring_frames(self, session_id: str, body: SubmitFramesRequest, *, idempotency_key: str | None = None) -> FramesResponse:
        """POST /v1/device/proctoring/sessions/{session_id}/frames (device token)."""
        return self._call('POST', '/v1/device/proctoring/sessions/{session_id}/frames', {'session_id': session_id}, {}, body, (200,), idempotency_key)

    def device_session(self) -> DeviceSessionView:
        """GET /v1/device/session (device token)."""
        return self._call('GET', '/v1/device/session', {}, {}, None, (200,))

    def device_verify(self, body: DeviceVerificationRequest, *, idempotency_key: str | None = None) -> VerificationResponse:
        """POST /v1/device/verifications (device token)."""
        return self._call('POST', '/v1/device/verifications', {}, {}, body, (200,), idempotency_key)

    def start_challenge(self, body: StartChallengeRequest, *, idempotency_key: str | None = None) -> ChallengeResponse:
        """POST /v1/fallback/challenges (tenant token, scope facegate/fallback)."""
        return self._call('POST', '/v1/fallback/challenges', {}, {}, body, (201,), idempotency_key)

    def get_challenge(self, challenge_id: str) -> ChallengeResponse:
        """GET /v1/fallback/challenges/{challenge_id} (tenant token, scope facegate/fallback)."""
        return self._call('GET', '/v1/fallback/challenges/{challenge_id}', {'challenge_id': challenge_id}, {}, None, (200,))

    def verify_challenge(self, challenge_id: str, body: VerifyChallengeRequest, *, idempotency_key: str | None = None) -> FallbackVerificationResponse:
        """POST /v1/fallback/challenges/{challenge_id}/verify (tenant token, scope facegate/fallback)."""
        return self._call('POST', '/v1/fallback/challenges/{challenge_id}/verify', {'challenge_id': challenge_id}, {}, body, (200,), idempotency_key)

    def get_review(self, review_id: str) -> ReviewResponse:
        """GET /v1/fallback/reviews/{review_id} (tenant token, scope facegate/admin)."""
        return self._call('GET', '/v1/fallback/reviews/{review_id}', {'review_id': review_id}, {}, None, (200,))

    def decide_review(self, review_id: str, body: DecideReviewRequest, *, idempotency_key: str | None = None) -> ReviewResponse:
        """POST /v1/fallback/reviews/{review_id}/decision (tenant token, scope facegate/admin)."""
        return self._call('POST', '/v1/fallback/reviews/{review_id}/decision', {'review_id': review_id}, {}, body, (200,), idempotency_key)

    def health(self) -> dict[str, Any]:
        """GET /v1/health (public)."""
        return self._call('GET', '/v1/health', {}, {}, None, (200,))

    def identify(self, body: CreateIdentificationRequest, *, idempotency_key: str | None = None) -> IdentificationResponse:
        """POST /v1/identifications (tenant token, scope facegate/identify)."""
        return self._call('POST', '/v1/identifications', {}, {}, body, (200,), idempotency_key)

    def public_keys(self) -> dict[str, Any]:
        """GET /v1/keys (public)."""
        return self._call('GET', '/v1/keys', {}, {}, None, (200,))

    def start_liveness_session(self, body: StartLivenessSessionRequest, *, idempotency_key: str | None = None) -> LivenessSessionResponse:
        """POST /v1/liveness/sessions (tenant token, scope facegate/verify)."""
        return self._call('POST', '/v1/liveness/sessions', {}, {}, body, (201,), idempotency_key)

    def model_calibration(self) -> ModelCalibrationResponse:
        """GET /v1/models/calibration (tenant token, scope facegate/verify)."""
        return self._call('GET', '/v1/models/calibration', {}, {}, None, (200,))

    def get_notice(self, purpose: str, *, locale: Literal['zh-CN', 'en'] | None = None) -> NoticeResponse:
        """GET /v1/notices/{purpose} (tenant token, scope facegate/consent)."""
        return self._call('GET', '/v1/notices/{purpose}', {'purpose': purpose}, {'locale': locale}, None, (200,))

    def put_notice(self, purpose: str, body: PutNoticeRequest, *, idempotency_key: str | None = None) -> NoticeResponse:
        """PUT /v1/notices/{purpose} (tenant token, scope facegate/admin)."""
        return self._call('PUT', '/v1/notices/{purpose}', {'purpose': purpose}, {}, body, (201,), idempotency_key)

    def openapi(self) -> str:
        """GET /v1/openapi.json (public)."""
        return self._call('GET', '/v1/openapi.json', {}, {}, None, (200,))

    def start_probe_upload(self, body: CreateProbeRequest, *, idempotency_key: str | None = None) -> ProbeResponse:
        """POST /v1/probes (tenant token, scope facegate/verify)."""
        return self._call('POST', '/v1/probes', {}, {}, body, (201,), idempotency_key)

    def start_proctoring(self, body: StartProctoringSessionRequest, *, idempotency_key: str | None = None) -> ProctoringSessionResponse:
        """POST /v1/proctoring/sessions (tenant token, scope facegate/verify)."""
        return self._call('POST', '/v1/proctoring/sessions', {}, {}, body, (201,), idempotency_key)

    def get_proctoring_session(self, session_id: str) -> ProctoringReportResponse:
        """GET /v1/proctoring/sessions/{session_id} (tenant token, scope facegate/verify)."""
        return self._call('GET', '/v1/proctoring/sessions/{session_id}', {'session_id': session_id}, {}, None, (200,))

    def end_proctoring(self, session_id: str, *, idempotency_key: str | None = None) -> ProctoringReportResponse:
        """POST /v1/proctoring/sessions/{session_id}/end (tenant token, scope facegate/verify)."""
        return self._call('POST', '/v1/proctoring/sessions/{session_id}/end', {'session_id': session_id}, {}, None, (200,), idempotency_key)

    def submit_proctoring_frames(self, session_id: str, body: SubmitFramesRequest, *, idempotency_key: str | None = None) -> FramesResponse:
        """POST /v1/proctoring/sessions/{session_id}/frames (tenant token, scope facegate/verify)."""
        return self._call('POST', '/v1/proctoring/sessions/{session_id}/frames', {'session_id': session_id}, {}, body, (200,), idempotency_key)

    def review_incident_post(self, session_id: str, incident_id: str, body: ReviewIncidentRequest, *, idempotency_key: str | None = None) -> IncidentView:
        """POST /v1/proctoring/sessions/{session_id}/incidents/{incident_id}/review (tenant token, scope facegate/admin)."""
        return self._call('POST', '/v1/proctoring/sessions/{session_id}/incidents/{incident_id}/review', {'session_id': session_id, 'incident_id': incident_id}, {}, body, (200,), idempotency_key)

    def review_incident(self, session_id: str, incident_id: str, body: ReviewIncidentRequest, *, idempotency_key: str | None = None) -> IncidentView:
        """PUT /v1/proctoring/sessions/{session_id}/incidents/{incident_id}/review (tenant token, scope facegate/admin)."""
        return self._call('PUT', '/v1/proctoring/sessions/{session_id}/incidents/{incident_id}/review', {'session_id': session_id, 'incident_id': incident_id}, {}, body, (200,), idempotency_key)

    def configure_purpose(self, purpose: str, body: ConfigurePurposeRequest, *, idempotency_key: str | None = None) -> PurposeResponse:
        """PUT /v1/purposes/{purpose} (tenant token, scope facegate/admin)."""
        return self._call('PUT', '/v1/purposes/{purpose}', {'purpose': purpose}, {}, body, (200,), idempotency_key)

    def erase_subject(self, subject_id: str, *, idempotency_key: str | None = None) -> DeletionJobResponse:
        """DELETE /v1/subjects/{subject_id} (tenant token, scope facegate/delete)."""
        return self._call('DELETE', '/v1/subjects/{subject_id}', {'subject_id': subject_id}, {}, None, (202,), idempotency_key)

    def get_consents(self, subject_id: str) -> ConsentStatesResponse:
        """GET /v1/subjects/{subject_id}/consents (tenant token, scope facegate/consent)."""
        return self._call('GET', '/v1/subjects/{subject_id}/consents', {'subject_id': subject_id}, {}, None, (200,))

    def record_consent(self, subject_id: str, body: RecordConsentRequest, *, idempotency_key: str | None = None) -> ConsentRecordResponse:
        """POST /v1/subjects/{subject_id}/consents (tenant token, scope facegate/consent)."""
        return self._call('POST', '/v1/subjects/{subject_id}/consents', {'subject_id': subject_id}, {}, body, (201,), idempotency_key)

    def get_history(self, subject_id: str) -> ConsentHistoryResponse:
        """GET /v1/subjects/{subject_id}/consents/history (tenant token, scope facegate/consent)."""
        return self._call('GET', '/v1/subjects/{subject_id}/consents/history', {'subject_id': subject_id}, {}, None, (200,))

    def withdraw(self, subject_id: str, purpose: str, *, idempotency_key: str | None = None) -> ConsentRecordResponse:
        """DELETE /v1/subjects/{subject_id}/consents/{purpose} (tenant token, scope facegate/consent)."""
        return self._call('DELETE', '/v1/subjects/{subject_id}/consents/{purpose}', {'subject_id': subject_id, 'purpose': purpose}, {}, None, (200,), idempotency_key)

    def start_enrolment(self, subject_id: str, body: StartEnrolmentRequest, *, idempotency_key: str | None = None) -> EnrolmentResponse:
        """POST /v1/subjects/{subject_id}/enrolments (tenant token, scope facegate/enrol)."""
        return self._call('POST', '/v1/subjects/{subject_id}/enrolments', {'subject_id': subject_id}, {}, body, (201, 202), idempotency_key)

    def get_enrolment(self, subject_id: str, enrolment_id: str) -> EnrolmentResponse:
        """GET /v1/subjects/{subject_id}/enrolments/{enrolment_id} (tenant token, scope facegate/enrol)."""
        return self._call('GET', '/v1/subjects/{subject_id}/enrolments/{enrolment_id}', {'subject_id': subject_id, 'enrolment_id': enrolment_id}, {}, None, (200,))

    def set_up_totp(self, subject_id: str, body: SetUpTotpRequest, *, idempotency_key: str | None = None) -> TotpResponse:
        """POST /v1/subjects/{subject_id}/totp (tenant token, scope facegate/fallback)."""
        return self._call('POST', '/v1/subjects/{subject_id}/totp', {'subject_id': subject_id}, {}, body, (201,), idempotency_key)

    def start_session(self, body: StartSessionRequest, *, idempotency_key: str | None = None) -> SessionResponse:
        """POST /v1/verification-sessions (tenant token, scope facegate/verify)."""
        return self._call('POST', '/v1/verification-sessions', {}, {}, body, (201,), idempotency_key)

    def get_session(self, session_id: str) -> SessionResponse:
        """GET /v1/verification-sessions/{session_id} (tenant token, scope facegate/verify)."""
        return self._call('GET', '/v1/verification-sessions/{session_id}', {'session_id': session_id}, {}, None, (200,))

    def verify(self, body: CreateVerificationRequest, *, idempotency_key: str | None = None) -> VerificationResponse:
        """POST /v1/verifications (tenant token, scope facegate/verify)."""
        return self._call('POST', '/v1/verifications', {}, {}, body, (200,), idempotency_key)

    def list_endpoints(self) -> WebhookEndpointsResponse:
        """GET /v1/webhooks/endpoints (tenant token, scope facegate/admin)."""
        return self._call('GET', '/v1/webhooks/endpoints', {}, {}, None, (200,))

    def create_endpoint(self, body: CreateWebhookEndpointRequest, *, idempotency_key: str | None = None) -> WebhookEndpointCreatedResponse:
        """POST /v1/webhooks/endpoints (tenant token, scope facegate/admin)."""
        return self._call('POST', '/v1/webhooks/endpoints', {}, {}, body, (201,), idempotency_key)

    def delete_endpoint(self, endpoint_id: str, *, idempotency_key: str | None = None) -> None:
        """DELETE /v1/webhooks/endpoints/{endpoint_id} (tenant token, scope facegate/admin)."""
        self._call('DELETE', '/v1/webhooks/endpoints/{endpoint_id}', {'endpoint_id': endpoint_id}, {}, None, (204,), idempotency_key)

    def get_endpoint(self, endpoint_id: str) -> WebhookEndpointResponse:
        """GET /v1/webhooks/endpoints/{endpoint_id} (tenant token, scope facegate/admin)."""
        return self._call('GET', '/v1/webhooks/endpoints/{endpoint_id}', {'endpoint_id': endpoint_id}, {}, None, (200,))

    def list_attempts(self, endpoint_id: str, *, limit: int | None = None) -> WebhookAttemptsResponse:
        """GET /v1/webhooks/endpoints/{endpoint_id}/attempts (tenant token, scope facegate/admin)."""
        return self._call('GET', '/v1/webhooks/endpoints/{endpoint_id}/attempts', {'endpoint_id': endpoint_id}, {'limit': limit}, None, (200,))

    def rotate_secret(self, endpoint_id: str, body: RotateWebhookSecretRequest, *, idempotency_key: str | None = None) -> WebhookEndpointCreatedResponse:
        """POST /v1/webhooks/endpoints/{endpoint_id}/rotate-secret (tenant token, scope facegate/admin)."""
        return self._call('POST', '/v1/webhooks/endpoints/{endpoint_id}/rotate-secret', {'endpoint_id': endpoint_id}, {}, body, (200,), idempotency_key)


OPERATIONS: dict[str, tuple[str, str]] = {
    'compliance_report': ('GET', '/v1/compliance/report'),
    'configure_purpose': ('PUT', '/v1/purposes/{purpose}'),
    'create_endpoint': ('POST', '/v1/webhooks/endpoints'),
    'decide_review': ('POST', '/v1/fallback/reviews/{review_id}/decision'),
    'delete_endpoint': ('DELETE', '/v1/webhooks/endpoints/{endpoint_id}'),
    'device_end_proctoring': ('POST', '/v1/device/proctoring/sessions/{session_id}/end'),
    'device_get_proctoring': ('GET', '/v1/device/proctoring/sessions/{session_id}'),
    'device_notice': ('GET', '/v1/device/notice'),
    'device_record_consent': ('POST', '/v1/device/consents'),
    'device_session': ('GET', '/v1/device/session'),
    'device_start_challenge': ('POST', '/v1/device/fallback/challenges'),
    'device_start_enrolment': ('POST', '/v1/device/enrolments'),
    'device_start_liveness_session': ('POST', '/v1/device/liveness/sessions'),
    'device_start_proctoring': ('POST', '/v1/device/proctoring/sessions'),
    'device_submit_proctoring_frames': ('POST', '/v1/device/proctoring/sessions/{session_id}/frames'),
    'device_verify': ('POST', '/v1/device/verifications'),
    'device_verify_challenge': ('POST', '/v1/device/fallback/challenges/{challenge_id}/verify'),
    'end_proctoring': ('POST', '/v1/proctoring/sessions/{session_id}/end'),
    'erase_subject': ('DELETE', '/v1/subjects/{subject_id}'),
    'get_challenge': ('GET', '/v1/fallback/challenges/{challenge_id}'),
    'get_consents': ('GET', '/v1/subjects/{subject_id}/consents'),
    'get_deletion': ('GET', '/v1/deletions/{deletion_id}'),
    'get_endpoint': ('GET', '/v1/webhooks/endpoints/{endpoint_id}'),
    'get_enrolment': ('GET', '/v1/subjects/{subject_id}/enrolments/{enrolment_id}'),
    'get_history': ('GET', '/v1/subjects/{subject_id}/consents/history'),
    'get_notice': ('GET', '/v1/notices/{purpose}'),
    'get_proctoring_session': ('GET', '/v1/proctoring/sessions/{session_id}'),
    'get_review': ('GET', '/v1/fallback/reviews/{review_id}'),
    'get_session': ('GET', '/v1/verification-sessions/{session_id}'),
    'health': ('GET', '/v1/health'),
    'identify': ('POST', '/v1/identifications'),
    'list_attempts': ('GET', '/v1/webhooks/endpoints/{endpoint_id}/attempts'),
    'list_endpoints': ('GET', '/v1/webhooks/endpoints'),
    'mint_device_session': ('POST', '/v1/device-sessions'),
    'model_calibration': ('GET', '/v1/models/calibration'),
    'openapi': ('GET', '/v1/openapi.json'),
    'public_keys': ('GET', '/v1/keys'),
    'put_notice': ('PUT', '/v1/notices/{purpose}'),
    'record_consent': ('POST', '/v1/subjects/{subject_id}/consents'),
    'review_incident': ('PUT', '/v1/proctoring/sessions/{session_id}/incidents/{incident_id}/review'),
    'review_incident_post': ('POST', '/v1/proctoring/sessions/{session_id}/incidents/{incident_id}/review'),
    'revoke_device_session': ('DELETE', '/v1/device-sessions/{device_session_id}'),
    'rotate_secret': ('POST', '/v1/webhooks/endpoints/{endpoint_id}/rotate-secret'),
    'set_up_totp': ('POST', '/v1/subjects/{subject_id}/totp'),
    'start_challenge': ('POST', '/v1/fallback/challenges'),
    'start_enrolment': ('POST', '/v1/subjects/{subject_id}/enrolments'),
    'start_liveness_session': ('POST', '/v1/liveness/sessions'),
    'start_probe_upload': ('POST', '/v1/probes'),
    'start_proctoring': ('POST', '/v1/proctoring/sessions'),
    'start_session': ('POST', '/v1/verification-sessions'),
    'submit_proctoring_frames': ('POST', '/v1/proctoring/sessions/{session_id}/frames'),
    'verify': ('POST', '/v1/verifications'),
    'verify_challenge': ('POST', '/v1/fallback/challenges/{challenge_id}/verify'),
    'withdraw': ('DELETE', '/v1/subjects/{subject_id}/consents/{purpose}'),
}

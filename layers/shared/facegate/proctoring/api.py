"""Contracts of proctoring: starting a sitting, frame batches, the signed report and the incident review."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from facegate.api.images import decode_base64_image
from facegate.consent.api import Locale
from facegate.core.errors import InvalidRequestError, ProctoringBatchTooLargeError
from facegate.liveness.api import LivenessBurst, LivenessResult, SubjectIdBody
from facegate.proctoring.entities import (
    BATCH_FRAMES,
    FRAME_HEIGHT,
    FRAME_INTERVAL_DEFAULT_S,
    FRAME_INTERVAL_MAX_S,
    FRAME_INTERVAL_MIN_S,
    FRAME_TYPE,
    FRAME_WIDTH,
    MAX_BATCH_BASE64,
    MAX_BATCH_FRAMES,
    MAX_FRAME_BYTES,
    NO_ADVERSE_DECISION,
    Batch,
    IncidentRecord,
    ProctoringSession,
)

ExamId = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:@\-]+$")]
Note = Annotated[str, StringConstraints(max_length=1000)]


class StartProctoringSessionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    subject_id: SubjectIdBody
    purpose: Literal["exam_proctoring"]
    exam_id: ExamId
    mode: Literal["face", "human_proctor", "in_person"] = Field(
        "face",
        description="face: continuous face tracking (needs consent and a live burst); human_proctor or in_person: "
        "a sitting without any face processing, recorded as such (no consent needed)",
    )
    liveness: LivenessBurst | None = Field(
        None,
        description="mode face: the burst answering a liveness session's challenge (POST /v1/liveness/sessions); "
        "required whatever the purpose's liveness policy, else 403 liveness_required",
    )
    frame_interval_s: int = Field(FRAME_INTERVAL_DEFAULT_S, ge=FRAME_INTERVAL_MIN_S, le=FRAME_INTERVAL_MAX_S)
    locale: Locale = Field("en", description="The notice returned with the session is in this language")


class CapturePolicy(BaseModel):
    frame_interval_s: int = Field(
        description=f"One frame every this many seconds ({FRAME_INTERVAL_MIN_S}-{FRAME_INTERVAL_MAX_S})"
    )
    frame_interval_min_s: int = FRAME_INTERVAL_MIN_S
    frame_interval_max_s: int = FRAME_INTERVAL_MAX_S
    batch_frames: int = Field(BATCH_FRAMES, description="Suggested frames per batch")
    max_batch_frames: int = Field(MAX_BATCH_FRAMES, description="More: 413 proctoring_batch_too_large")
    max_frame_bytes: int = Field(MAX_FRAME_BYTES, description="One JPEG frame; larger: 413 image_too_large")
    max_batch_base64_chars: int = Field(MAX_BATCH_BASE64, description="All frames' base64 together; more: 413")
    content_type: str = FRAME_TYPE
    width: int = FRAME_WIDTH
    height: int = FRAME_HEIGHT
    mirrored: bool = Field(False, description="Frames are sent un-mirrored")
    timestamps: str = Field(
        "ms on the client's clock, increasing within a batch and across batches",
        description="Each frame's `ts`",
    )
    stored: bool = Field(False, description="Frames are processed in memory and never stored")


class NoticeView(BaseModel):
    locale: str
    version: int
    sha256: str
    content: dict[str, Any]


class ProctoringSessionResponse(BaseModel):
    session_id: str
    subject_id: str
    purpose: str
    exam_id: str
    mode: str
    status: Literal["active", "ended", "alternative"]
    next_sequence: int = 0
    capture: CapturePolicy | None = Field(None, description="mode face: how to capture and send frames")
    notice: NoticeView | None = Field(
        None,
        description="The notice shown to the candidate (what is watched, kept, "
        "for how long, who reviews, how to appeal)",
    )
    verification_id: str | None = None
    liveness: LivenessResult | None = None
    result_token: str | None = Field(None, description="The start's signed verification result (ES256, /v1/keys)")

    @classmethod
    def of(cls, session: ProctoringSession, subject_id: str, **more: Any) -> ProctoringSessionResponse:
        return cls(
            session_id=session.session_id,
            subject_id=subject_id,
            purpose=session.purpose,
            exam_id=session.exam_id,
            mode=session.mode,
            status=session.status,
            next_sequence=session.next_sequence,
            **more,
        )


class Frame(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    ts: float = Field(description="When the frame was taken, ms on the client's clock")
    image: str = Field(min_length=1, description="base64 JPEG, 640x480, un-mirrored")


class SubmitFramesRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    sequence: int = Field(ge=0, description="0 for the first batch, then one more each batch (next_sequence)")
    frames: list[Frame] = Field(min_length=1)

    def batch(self) -> Batch:
        """Decoded from base64 after the batch's limits (413); a retry must send the same frames and times."""
        if len(self.frames) > MAX_BATCH_FRAMES or sum(len(f.image) for f in self.frames) > MAX_BATCH_BASE64:
            raise ProctoringBatchTooLargeError(
                f"send at most {MAX_BATCH_FRAMES} frames and {MAX_BATCH_BASE64} base64 characters a batch",
                max_frames=MAX_BATCH_FRAMES,
                max_batch_base64_chars=MAX_BATCH_BASE64,
            )
        if any(f.ts != f.ts or f.ts in (float("inf"), float("-inf")) for f in self.frames):
            raise InvalidRequestError("timestamps must be finite numbers")
        return Batch(self.sequence, [decode_base64_image(f.image) for f in self.frames], [f.ts for f in self.frames])


class IncidentView(BaseModel):
    incident_id: str = Field(description="Stable: <type>-<first frame index>")
    type: Literal[
        "face_absent",
        "multiple_faces",
        "different_person",
        "looking_away",
        "camera_obstructed_or_dark",
        "presentation_attack",
    ]
    technical: bool = Field(
        description="A capture condition (face_absent, camera_obstructed_or_dark): never counted against the candidate"
    )
    start_ts: float
    end_ts: float
    frames: int
    confidence: float
    model_version: str
    open: bool = Field(description="Still ongoing at the end of the batch")
    new: bool | None = Field(None, description="Opened by this batch")
    review_status: Literal["pending", "confirmed", "dismissed"] | None = None
    review_note: str | None = None
    reviewed_at: str | None = None

    @classmethod
    def of(cls, incident: IncidentRecord) -> IncidentView:
        return cls.model_validate(
            {
                **incident.public(),
                "review_status": incident.review_status,
                "review_note": incident.review_note,
                "reviewed_at": incident.reviewed_at,
            }
        )


class Guidance(BaseModel):
    code: (
        Literal[
            "more_light",
            "move_closer",
            "move_back",
            "face_the_camera",
            "only_one_face",
            "uncover_camera",
            "centre_your_face",
        ]
        | str
    )
    text: dict[str, str] = Field(description="What to show the candidate, in zh-CN and en")


class BatchState(BaseModel):
    frames: int = Field(description="Frames tracked in the session so far")
    batches: int
    last_ts: float
    incidents: int
    open_incidents: list[str] = Field(description="Types of the incidents ongoing now")


class FramesResponse(BaseModel):
    session_id: str
    status: str
    sequence: int
    next_sequence: int
    state: BatchState
    incidents: list[IncidentView] = Field(description="Incidents opened or updated by this batch")
    guidance: list[Guidance] = Field(description="For the candidate: how to improve the capture (may be empty)")
    batch: dict[str, float] = Field(description="This batch's numbers: frames, frames_with_face, identity_checks, ...")
    replayed: bool = Field(False, description="A retry of the batch applied last: its stored answer; nothing changed")


class ReviewCounts(BaseModel):
    pending: int
    confirmed: int
    dismissed: int


class ProctoringReportResponse(BaseModel):
    session_id: str
    exam_id: str
    purpose: str
    mode: str
    status: Literal["active", "ended", "alternative"]
    started_at: str
    ended_at: str | None = None
    next_sequence: int
    report: dict[str, Any] | None = Field(None, description="The signed report's claims (after the end)")
    report_token: str | None = Field(
        None, description="The report as a compact JWS (ES256): verify it with /v1/keys; typ proctoring-report"
    )
    incidents: list[IncidentView] = Field(description="Every incident so far, with its review state")
    review: ReviewCounts
    statement: str = NO_ADVERSE_DECISION


class ReviewIncidentRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    status: Literal["confirmed", "dismissed"]
    note: Note | None = None


class DeviceStartProctoringRequest(BaseModel):
    """POST /v1/proctoring/sessions's body without subject_id and purpose (the device token's)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    exam_id: ExamId
    mode: Literal["face", "human_proctor", "in_person"] = Field(
        "face", description="face, or a sitting without any face processing (human_proctor, in_person)"
    )
    liveness: LivenessBurst | None = Field(
        None, description="mode face: the burst answering POST /v1/device/liveness/sessions's challenge"
    )
    frame_interval_s: int = Field(FRAME_INTERVAL_DEFAULT_S, ge=FRAME_INTERVAL_MIN_S, le=FRAME_INTERVAL_MAX_S)
    locale: Locale = Field("en", description="The notice returned with the session is in this language")

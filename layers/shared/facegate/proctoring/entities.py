"""Proctoring entities: plain data, no AWS and no engine.

A session is one candidate's sitting of one exam. Its item carries the engine's tracking state (counters and
timestamps only: no image, no embedding, no landmarks) and `next_sequence`: a batch is applied only by the one
conditional write that moves `next_sequence` on, so batches apply in order and exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

PURPOSE = "exam_proctoring"
MODE_FACE = "face"
# Sittings without any face processing the candidate may choose instead (recorded as such, never a dead end).
ALTERNATIVES = ("human_proctor", "in_person")

# -- capture policy (advertised when a session starts; the limits are enforced per batch)
FRAME_INTERVAL_MIN_S = 2
FRAME_INTERVAL_MAX_S = 10
FRAME_INTERVAL_DEFAULT_S = 2
BATCH_FRAMES = 15  # suggested: one batch every 30 s at the default interval
MAX_BATCH_FRAMES = 30  # more: 413 proctoring_batch_too_large
MAX_FRAME_BYTES = 250_000  # one JPEG frame (640x480 at quality 80 is about 40-60 kB); more: 413
MAX_BATCH_BASE64 = 5_000_000  # every frame's base64 together, so the request fits Lambda's 6 MB payload
FRAME_WIDTH = 640
FRAME_HEIGHT = 480
FRAME_TYPE = "image/jpeg"
MAX_SESSION_SECONDS = 8 * 3600  # a sitting longer than this cannot take frames any more (410)
SECURITY_LEVEL = "high"  # the start's verification against the enrolment

Status = Literal["active", "ended", "alternative"]
ReviewStatus = Literal["pending", "confirmed", "dismissed"]

# Conditions that are technical (capture quality), never held against the candidate; stated in the report.
TECHNICAL = frozenset({"face_absent", "camera_obstructed_or_dark"})
INCIDENT_TYPES = (
    "face_absent",
    "multiple_faces",
    "different_person",
    "looking_away",
    "camera_obstructed_or_dark",
    "presentation_attack",
)

# Guidance shown to the candidate (the engine returns the stable codes; the text lives here).
GUIDANCE_TEXT: dict[str, dict[str, str]] = {
    "more_light": {
        "en": "Your face is hard to see. Add light in front of you (a lamp or a window facing you).",
        "zh-CN": "您的面部不够清晰。请在您前方增加光源（如台灯或面向窗户）。",
    },
    "move_closer": {
        "en": "Move a little closer to the camera.",
        "zh-CN": "请稍微靠近摄像头。",
    },
    "move_back": {
        "en": "Move a little back from the camera.",
        "zh-CN": "请稍微远离摄像头。",
    },
    "face_the_camera": {
        "en": "Please face the screen and the camera.",
        "zh-CN": "请面向屏幕和摄像头。",
    },
    "only_one_face": {
        "en": "Only you should be in view of the camera.",
        "zh-CN": "摄像头画面中应只有您一人。",
    },
    "uncover_camera": {
        "en": "The camera seems covered or very dark. Uncover it and check the light.",
        "zh-CN": "摄像头似乎被遮挡或画面过暗。请移开遮挡物并检查光线。",
    },
    "centre_your_face": {
        "en": "Keep your face in the middle of the camera picture.",
        "zh-CN": "请将面部保持在摄像头画面中央。",
    },
}

NO_ADVERSE_DECISION = (
    "This report is not a decision. Every incident is a moment for a person to review; no adverse decision "
    "may be taken without that human review. Technical conditions (face_absent, camera_obstructed_or_dark) "
    "describe the capture, not the candidate, and are never counted against them."
)


def guidance_text(code: str) -> dict[str, str]:
    """The candidate-facing text of a guidance code (a code the service does not know is shown as the code)."""
    return GUIDANCE_TEXT.get(code, {"en": code, "zh-CN": code})


@dataclass(frozen=True)
class IncidentRecord:
    """An incident as the engine reports it, with its review state (set by an admin, never by the engine)."""

    incident_id: str
    type: str
    start_ts: float
    end_ts: float
    frames: int
    confidence: float
    model_version: str
    open: bool = False
    review_status: ReviewStatus = "pending"
    review_note: str | None = None
    reviewed_by: str | None = None
    reviewed_at: str | None = None

    @property
    def technical(self) -> bool:
        return self.type in TECHNICAL

    def public(self) -> dict[str, Any]:
        """As answers and the report show it."""
        return {
            "incident_id": self.incident_id,
            "type": self.type,
            "technical": self.technical,
            "start_ts": self.start_ts,
            "end_ts": self.end_ts,
            "frames": self.frames,
            "confidence": round(float(self.confidence), 4),
            "model_version": self.model_version,
            "open": self.open,
        }


@dataclass(frozen=True)
class ProctorBatchResult:
    """What the engine made of one batch: its new state, the incidents it opened or updated, guidance codes and
    this batch's capture numbers."""

    state: dict[str, Any]
    incidents: list[IncidentRecord]
    guidance: list[str]
    stats: dict[str, int | float]


@dataclass(frozen=True)
class ProctoringSession:
    session_id: str
    tenant_id: str
    subject_ref: str
    purpose: str
    exam_id: str
    created_at: str  # ISO-8601 UTC (erasure's cutoff compares it)
    expires_at: int  # epoch seconds: DynamoDB TTL (the purpose's retention after the start)
    mode: str = MODE_FACE  # face, or the non-face sitting chosen instead (ALTERNATIVES)
    status: Status = "active"
    next_sequence: int = 0
    frame_interval_s: int = FRAME_INTERVAL_DEFAULT_S
    consent_epoch: str | None = None
    verification_id: str | None = None
    liveness: dict[str, Any] = field(default_factory=dict)  # the start's liveness claims (decision, method)
    model_id: str = ""
    model_version: str = ""
    state: dict[str, Any] | None = None  # the engine's tracking state (counters and timestamps only)
    last_ts: float | None = None  # the last frame's client timestamp (ms)
    last_digest: str | None = None  # the last applied batch's digest: a retry is recognised by it
    last_answer: dict[str, Any] | None = None  # the last applied batch's answer, returned to its retries
    totals: dict[str, float] = field(default_factory=dict)  # capture statistics summed over batches
    ended_at: str | None = None
    report: dict[str, Any] | None = None  # the signed report's claims
    report_token: str | None = None  # the report as a JWS (ES256; keys at /v1/keys)

    @property
    def ended(self) -> bool:
        return self.status == "ended"


@dataclass(frozen=True)
class Batch:
    """A batch of frames as the client sent it (decoded from base64, not from JPEG)."""

    sequence: int
    frames: list[bytes]
    timestamps_ms: list[float]


@dataclass(frozen=True)
class BatchOutcome:
    answer: dict[str, Any]
    replayed: bool = False  # a retry of the last applied batch: the stored answer, nothing changed


@dataclass(frozen=True)
class SessionView:
    """A session with its incidents and their review state (GET and the end's answer)."""

    session: ProctoringSession
    incidents: list[IncidentRecord]

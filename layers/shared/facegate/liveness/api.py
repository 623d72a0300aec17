"""Contracts of liveness: sessions, the burst a verification or enrolment carries, the per-purpose policy."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from facegate.api.images import decode_base64_image
from facegate.consent.api import PurposeName
from facegate.core.errors import InvalidRequestError, LivenessBurstTooLargeError
from facegate.liveness.entities import (
    CAPTURE_FPS,
    CAPTURE_FRAMES,
    FRAME_TYPES,
    MAX_BURST_BASE64,
    MAX_FRAME_PIXELS,
    MAX_FRAMES,
    MIN_FRAMES,
    LivenessOutcome,
    LivenessPolicy,
    LivenessProof,
    LivenessSession,
)

Action = Literal["turn_left", "turn_right", "blink", "open_mouth"]
SubjectIdBody = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:@\-]+$")]
Reason = Annotated[str, StringConstraints(min_length=3, max_length=500)]


class StartLivenessSessionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    subject_id: SubjectIdBody
    purpose: PurposeName


class Challenge(BaseModel):
    actions: list[Action] = Field(
        description="Perform these in this order within the burst. turn_left = the person turns to *their* left "
        "(the nose moves towards the right of the un-mirrored frame)"
    )


class Capture(BaseModel):
    fps: int = Field(CAPTURE_FPS, description="Suggested frame rate")
    frames: int = Field(CAPTURE_FRAMES, description="Suggested number of frames (3 s at the suggested rate)")
    min_frames: int = MIN_FRAMES
    max_frames: int = Field(MAX_FRAMES, description="More frames: 413 liveness_burst_too_large")
    max_burst_base64_chars: int = Field(
        MAX_BURST_BASE64,
        description="The frames' base64 text together (about 3.75 MB of images), so that the request fits "
        "Lambda's 6 MB payload; more: 413 liveness_burst_too_large",
    )
    max_frame_pixels: int = Field(MAX_FRAME_PIXELS, description="Larger JPEG frames are decoded at a reduced size")
    content_types: list[str] = Field(default_factory=lambda: list(FRAME_TYPES))
    mirrored: bool = Field(False, description="Frames are always sent un-mirrored")


class LivenessSessionResponse(BaseModel):
    session_id: str
    subject_id: str
    purpose: str
    challenge: Challenge
    expires_at: datetime = Field(description="Send the burst before this (2 minutes); later: 410")
    capture: Capture

    @classmethod
    def of(cls, session: LivenessSession, subject_id: str) -> LivenessSessionResponse:
        return cls(
            session_id=session.session_id,
            subject_id=subject_id,
            purpose=session.purpose,
            challenge=Challenge.model_validate({"actions": list(session.actions)}),
            expires_at=datetime.fromtimestamp(session.valid_until, UTC),
            capture=Capture(),
        )


class LivenessBurst(BaseModel):
    """The answer to a liveness session's challenge: frames in capture order and when each was taken."""

    model_config = ConfigDict(extra="forbid", strict=True)

    session_id: str = Field(pattern=r"^[0-9a-f]{32}$", description="From POST /v1/liveness/sessions")
    frames: list[str] = Field(
        min_length=1,
        description=f"base64 JPEG/PNG/WebP frames, un-mirrored, at most {MAX_FRAMES} and "
        f"{MAX_BURST_BASE64} base64 characters together (else 413 liveness_burst_too_large)",
    )
    timestamps_ms: list[float] = Field(min_length=1, description="One per frame, in ms, increasing")

    def proof(self) -> LivenessProof:
        """The burst decoded from base64, after its limits: 413 for too many frames or bytes, 422 when the
        timestamps do not match the frames (nothing is used up)."""
        if len(self.frames) > MAX_FRAMES or sum(len(f) for f in self.frames) > MAX_BURST_BASE64:
            raise LivenessBurstTooLargeError(
                f"send at most {MAX_FRAMES} frames and {MAX_BURST_BASE64} base64 characters in all",
                max_frames=MAX_FRAMES,
                max_burst_base64_chars=MAX_BURST_BASE64,
            )
        if len(self.timestamps_ms) != len(self.frames):
            raise InvalidRequestError(
                "send one timestamp per frame",
                errors=[{"loc": ["body", "liveness", "timestamps_ms"], "msg": "one per frame", "type": "length"}],
            )
        return LivenessProof(self.session_id, [decode_base64_image(f) for f in self.frames], list(self.timestamps_ms))


class LivenessResult(BaseModel):
    decision: Literal["live", "spoof", "retry", "not_checked"] = Field(
        description="not_checked: a single photo where the purpose's liveness policy is optional"
    )
    reasons: list[str] = Field(description="Stable strings, e.g. challenge_not_met, pad_score_low")
    method: str = Field(description="active_challenge+passive_pad, or none")
    session_id: str | None = None
    alternatives: list[str] | None = Field(
        None, description="When not live: the non-face methods the person may use instead (always offered)"
    )

    @classmethod
    def of(cls, outcome: LivenessOutcome, alternatives: list[str] | None = None) -> LivenessResult:
        return cls(
            decision=outcome.decision,
            reasons=outcome.reasons,
            method=outcome.method,
            session_id=outcome.session_id,
            alternatives=alternatives,
        )


class LivenessPolicyFields(BaseModel):
    """The liveness part of PUT /v1/purposes/{purpose}."""

    liveness: Literal["required", "optional"] | None = Field(
        None,
        description="required (the default, also for purposes that never set it): a face is used only with a "
        "live burst; optional: a single photo is accepted too (needs liveness_reason; audited). Left out: unchanged",
    )
    liveness_reason: Reason | None = Field(None, description="Why liveness is optional for this purpose (audited)")

    @model_validator(mode="after")
    def _reason_for_optional(self) -> LivenessPolicyFields:
        if self.liveness == "optional" and not (self.liveness_reason or "").strip():
            raise ValueError("liveness: optional needs a liveness_reason")
        if self.liveness_reason is not None and self.liveness is None:
            raise ValueError("liveness_reason goes with liveness")
        return self


class LivenessPolicyView(BaseModel):
    liveness: Literal["required", "optional"] = "required"
    liveness_reason: str | None = None

    @staticmethod
    def fields(policy: LivenessPolicy) -> dict[str, str | None]:
        return {"liveness": policy.mode, "liveness_reason": policy.reason}

"""Liveness entities: plain data, no AWS and no engine."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

ACTIONS = ("turn_left", "turn_right", "blink", "open_mouth")
CHALLENGE_LENGTH = 2  # distinct actions per challenge, in order
SESSION_SECONDS = 120  # a challenge must be answered within 2 minutes
SESSION_RECORD_SECONDS = 3600  # the used/expired session is kept this long after it ends (then TTL), to answer why

# The burst a client sends (advertised in the session's `capture`).
CAPTURE_FPS = 10
CAPTURE_FRAMES = 30
MIN_FRAMES = 8  # the engine's `liveness.min_frames`
MAX_FRAMES = 40  # the engine's `liveness.max_frames`
# Lambda's synchronous payload is 6 MB: the frames' base64 text together stays within 5,000,000 characters
# (3.75 MB of JPEG), which leaves room for the rest of the JSON body.
MAX_BURST_BASE64 = 5_000_000
MAX_FRAME_PIXELS = 1920 * 1080  # a larger JPEG frame is decoded at 1/2, 1/4 or 1/8 size; PNG/WebP are refused
FRAME_TYPES = ("image/jpeg", "image/png", "image/webp")

Policy = Literal["required", "optional"]
DEFAULT_POLICY: Policy = "required"  # for new and existing purposes: an absent setting is `required`
METHOD = "active_challenge+passive_pad"  # what the signed result records as the liveness method
NO_METHOD = "none"  # a single photo under an `optional` policy: no liveness was judged


@dataclass(frozen=True)
class LivenessSession:
    session_id: str
    tenant_id: str
    subject_ref: str
    purpose: str
    actions: tuple[str, ...]
    created_at: str  # ISO-8601 UTC (erasure's cut-off compares it)
    valid_until: int  # epoch seconds: the burst must arrive before
    expires_at: int  # epoch seconds: DynamoDB TTL
    status: Literal["open", "used"] = "open"
    used_at: str | None = None


@dataclass(frozen=True)
class LivenessPolicy:
    purpose: str
    mode: Policy = DEFAULT_POLICY
    reason: str | None = None
    updated_at: str | None = None
    updated_by: str | None = None

    @property
    def required(self) -> bool:
        return self.mode != "optional"


@dataclass(frozen=True)
class LivenessProof:
    """A burst answering a session's challenge: decoded from base64, not yet from JPEG."""

    session_id: str
    frames: list[bytes]
    timestamps_ms: list[float]


@dataclass(frozen=True)
class Judgement:
    """What the engine decided about a burst; `template` is the best frontal frame's (None unless live)."""

    decision: Literal["live", "spoof", "retry"]
    reasons: list[str]
    details: dict[str, Any] = field(default_factory=dict)  # numbers only: safe to log
    template: Any = None  # facegate.matching.entities.EngineTemplate

    @property
    def live(self) -> bool:
        return self.decision == "live"


@dataclass(frozen=True)
class ClaimedBurst:
    """A session consumed by this request, with its frames decoded: ready to be judged exactly once."""

    session: LivenessSession
    images: list[Any]
    timestamps_ms: list[float]


@dataclass(frozen=True)
class LivenessOutcome:
    """The liveness part of an answer and of the signed result."""

    decision: Literal["live", "spoof", "retry", "not_checked"]
    reasons: list[str]
    method: str
    session_id: str | None = None
    actions: tuple[str, ...] = ()
    template: Any = None

    def claims(self) -> dict[str, Any]:
        """For the signed result token: the decision and the method (never a score)."""
        return {
            "decision": self.decision,
            "method": self.method,
            **({"actions": list(self.actions)} if self.actions else {}),
        }

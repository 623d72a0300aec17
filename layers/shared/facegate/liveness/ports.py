"""What the liveness service needs from storage and from the face engine (implemented in dynamo.py, engine.py).

Purposes and notices come through facegate.consent.ports.Purposes, the audit log through facegate.core.audit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from facegate.liveness.entities import Judgement, LivenessPolicy, LivenessSession


class LivenessSessions(Protocol):
    def create(self, session: LivenessSession) -> None: ...

    def get(self, tenant_id: str, subject_ref: str, session_id: str) -> LivenessSession | None: ...

    def consume(self, session: LivenessSession, now: int, used_at: str) -> bool:
        """Mark the session used if it is still open, for that purpose, and valid at `now` (one conditional
        write); False if another request used it first or it has expired."""
        ...


class LivenessPolicies(Protocol):
    def get(self, tenant_id: str, purpose: str) -> LivenessPolicy | None: ...

    def put(self, tenant_id: str, policy: LivenessPolicy) -> None: ...


class LivenessEngine(Protocol):
    def decode_frames(self, frames: Sequence[bytes], max_pixels: int) -> list[Any]:
        """Decoded frames, or the decoding domain errors (invalid_image, unsupported_media_type, image_too_large)."""
        ...

    def judge(self, images: Sequence[Any], timestamps_ms: Sequence[float], actions: Sequence[str]) -> Judgement: ...

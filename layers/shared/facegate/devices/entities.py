"""Device-session entities and rules: plain data, no AWS."""

from __future__ import annotations

from dataclasses import dataclass

OPERATIONS = ("notice", "consent", "liveness", "verify", "enrol", "proctoring")
MIN_TTL_SECONDS = 60
MAX_TTL_SECONDS = 600  # a device session lives at most 10 minutes
DEFAULT_TTL_SECONDS = 300
AUDIENCE = "facegate-device"
TOKEN_TYPE = "device-session"  # noqa: S105 (the typ claim, not a secret)
# A revocation is kept until every token it can concern has expired: any token minted before the revocation
# expires at most MAX_TTL_SECONDS later. The minute on top covers clock differences between functions.
REVOCATION_RECORD_SECONDS = MAX_TTL_SECONDS + 60
# The session item outlives its token by this much (then DynamoDB's TTL removes it), to answer "expired".
SESSION_RECORD_SECONDS = 3600

# The device routes (API Gateway route keys) and the operation each needs; None: any valid device session.
# A route not listed here is refused to every device token, whatever its operations.
ROUTE_OPERATIONS: dict[str, str | None] = {
    "GET /v1/device/session": None,
    "GET /v1/device/notice": "notice",
    "POST /v1/device/consents": "consent",
    "POST /v1/device/liveness/sessions": "liveness",
    "POST /v1/device/verifications": "verify",
    "POST /v1/device/enrolments": "enrol",
    "POST /v1/device/fallback/challenges": "verify",
    "POST /v1/device/fallback/challenges/{challenge_id}/verify": "verify",
    "POST /v1/device/proctoring/sessions": "proctoring",
    "POST /v1/device/proctoring/sessions/{session_id}/frames": "proctoring",
    "GET /v1/device/proctoring/sessions/{session_id}": "proctoring",
    "POST /v1/device/proctoring/sessions/{session_id}/end": "proctoring",
}


@dataclass(frozen=True)
class DeviceSession:
    """The stored device session (under the subject's partition: erasure and withdrawal reach it)."""

    session_id: str
    tenant_id: str
    subject_ref: str
    purpose: str
    operations: tuple[str, ...]
    created_at: str  # ISO-8601 UTC
    valid_until: int  # epoch seconds: the token's `exp`
    expires_at: int  # epoch seconds: DynamoDB TTL


@dataclass(frozen=True)
class MintedDeviceSession:
    session: DeviceSession
    subject_id: str
    token: str

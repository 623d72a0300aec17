"""Contracts of device sessions: minting and revoking them (tenant backends), and the bodies of the device
routes, which are the tenant routes' bodies without the subject and the purpose (those come from the token)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from facegate.consent.api import AgeBand, Channel, Decision, Guardian, Locale, NonFaceMethod, PurposeName, Sha256Hex
from facegate.core.tenancy import DeviceSessionGrant
from facegate.devices.entities import DEFAULT_TTL_SECONDS, MAX_TTL_SECONDS, MIN_TTL_SECONDS, MintedDeviceSession
from facegate.liveness.api import LivenessBurst

Operation = Literal["notice", "consent", "liveness", "verify", "enrol", "proctoring"]
SubjectIdBody = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:@\-]+$")]
SecurityLevel = Literal["standard", "high", "very_high"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class CreateDeviceSessionRequest(_Strict):
    subject_id: SubjectIdBody
    purpose: PurposeName
    operations: list[Operation] = Field(
        min_length=1, max_length=6, description="What the device may do; nothing else is allowed"
    )
    ttl_seconds: int = Field(
        DEFAULT_TTL_SECONDS, ge=MIN_TTL_SECONDS, le=MAX_TTL_SECONDS, description="Lifetime: at most 10 minutes"
    )


class DeviceSessionResponse(BaseModel):
    device_session_id: str
    token: str = Field(
        description="ES256 JWS signed by facegate's key (/v1/keys), aud facegate-device; the device sends it as "
        "Authorization: Bearer on /v1/device/... routes. It carries no tenant credential"
    )
    expires_at: datetime
    subject_id: str
    purpose: str
    operations: list[Operation]

    @classmethod
    def of(cls, minted: MintedDeviceSession) -> DeviceSessionResponse:
        session = minted.session
        return cls(
            device_session_id=session.session_id,
            token=minted.token,
            expires_at=datetime.fromtimestamp(session.valid_until, UTC),
            subject_id=minted.subject_id,
            purpose=session.purpose,
            operations=list(session.operations),
        )


class DeviceSessionView(BaseModel):
    """What a device may know of its own session (GET /v1/device/session)."""

    device_session_id: str
    subject_id: str
    purpose: str
    operations: list[Operation]
    expires_at: datetime
    alternatives: list[NonFaceMethod] = Field(description="The non-face methods the person may use instead")

    @classmethod
    def of(cls, grant: DeviceSessionGrant, alternatives: list[str]) -> DeviceSessionView:
        return cls(
            device_session_id=grant.session_id,
            subject_id=grant.subject_id,
            purpose=grant.purpose,
            operations=sorted(grant.operations),
            expires_at=datetime.fromtimestamp(grant.expires_at, UTC),
            alternatives=alternatives,
        )


class RecordDeviceConsentRequest(_Strict):
    """POST /v1/subjects/{subject_id}/consents's body without the purpose (the token's)."""

    notice_version: int = Field(ge=1)
    notice_sha256: Sha256Hex
    decision: Decision
    channel: Channel = "web"
    locale: Locale
    age_band: AgeBand
    guardian: Guardian | None = None


class DeviceVerificationRequest(_Strict):
    """POST /v1/verifications's body without subject_id and purpose (the token's) and without probe_id."""

    image: str | None = Field(None, description="Inline probe image, base64 (at most 5 MB decoded)")
    security_level: SecurityLevel = "high"
    liveness: LivenessBurst | Literal["off", "advisory"] = Field(
        "off", description="A burst answering POST /v1/device/liveness/sessions's challenge, or a single photo"
    )


class DeviceEnrolmentRequest(_Strict):
    """POST /v1/subjects/{subject_id}/enrolments's body without the purpose (the token's); a device never
    replaces templates."""

    image: str | None = Field(None, description="Inline image, base64 (at most 5 MB decoded)")
    liveness: LivenessBurst | None = Field(None, description="A burst answering the device's liveness challenge")


class StartDeviceLivenessSessionRequest(_Strict):
    """Empty: the subject and purpose are the token's."""

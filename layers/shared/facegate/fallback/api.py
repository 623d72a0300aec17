"""Contracts of the fallback function: verification sessions, challenges, reviews and TOTP set-up."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from facegate.consent.api import Locale, NonFaceMethod, PurposeName
from facegate.matching.api import SubjectIdBody

Method = Literal["face", "email_otp", "sms_otp", "totp", "manual_review"]
Email = Annotated[str, StringConstraints(max_length=254, pattern=r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")]
Phone = Annotated[str, StringConstraints(pattern=r"^\+[1-9][0-9]{6,14}$")]
OpaqueId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{72}$")]
Code = Annotated[str, StringConstraints(pattern=r"^[0-9]{6}$")]
ChallengeStatus = Literal["pending", "verified", "locked", "superseded", "approved", "rejected", "closed"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class StartSessionRequest(_Strict):
    """What the tenant knows of the person; none of it can make face the only method."""

    subject_id: SubjectIdBody
    purpose: PurposeName
    email: Email | None = Field(None, description="Offers email_otp; kept encrypted for the session's lifetime only")
    phone: Phone | None = Field(None, description="E.164; offers sms_otp; kept encrypted for the session only")
    totp_enrolled: bool = Field(
        False, description="A hint only: totp is offered when a secret set up with facegate exists"
    )
    locale: Locale = "zh-CN"


class SessionResponse(BaseModel):
    session_id: str
    purpose: str
    status: Literal["open", "verified"]
    methods: list[Method] = Field(description="Always holds at least one non-face method")
    expires_at: str
    verification_id: str | None = None


class StartChallengeRequest(_Strict):
    session_id: OpaqueId
    method: NonFaceMethod
    locale: Locale | None = Field(None, description="Language of the message; the session's by default")


class ChallengeResponse(BaseModel):
    challenge_id: str
    session_id: str
    method: NonFaceMethod
    status: ChallengeStatus
    expires_at: str
    attempts_left: int | None = None
    resend_after: str | None = None
    sent_to: str | None = Field(None, description="The masked destination of the code")
    review_id: str | None = None


class VerifyChallengeRequest(_Strict):
    code: Code | None = Field(None, description="The 6-digit code; not used for manual_review")


class FallbackVerificationResponse(BaseModel):
    """The same result as face verification (POST /v1/verifications); `method` tells which was used."""

    verification_id: str
    subject_id: str
    purpose: str
    method: NonFaceMethod
    decision: Literal["match", "no_match"]
    result_token: str = Field(description="ES256 JWT of the result; verify with /v1/keys")
    session_id: str
    challenge_id: str


class DecideReviewRequest(_Strict):
    decision: Literal["approved", "rejected"]
    reason_code: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,39}$")] | None = Field(
        None, description="A short machine code (no free text: it could carry personal data)"
    )


class ReviewResponse(BaseModel):
    review_id: str
    status: ChallengeStatus
    decided_at: str | None = None


class SetUpTotpRequest(_Strict):
    """The first secret needs the `fallback` scope only. Replacing an existing one needs one proof (or a
    token with the admin scope): each proof is a match of this subject by face, e-mail, SMS or manual
    review, at most 5 minutes old, and proves one replacement."""

    label: Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[^:]+$")] | None = Field(
        None, description="Account name shown in the authenticator app; the subject id by default"
    )
    proof_session_id: OpaqueId | None = Field(
        None, description="A verification session of this subject verified by email_otp, sms_otp or manual_review"
    )
    proof_result_token: Annotated[str, StringConstraints(min_length=1, max_length=4096)] | None = Field(
        None, description="The result_token of a match of this subject (face or a non-TOTP fallback method)"
    )


class TotpResponse(BaseModel):
    subject_id: str
    secret: str = Field(description="Base32; shown once, stored only encrypted")
    otpauth_uri: str
    digits: int = 6
    period: int = 30
    algorithm: Literal["SHA1"] = "SHA1"

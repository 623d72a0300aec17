"""Contracts of the matching function: 1:1 verification."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from facegate.models.consent import PurposeName
from facegate.models.enrolment import ContentType, UploadInstructions

SecurityLevel = Literal["standard", "high", "very_high"]
FAR_BY_LEVEL: dict[str, float] = {"standard": 1e-2, "high": 1e-3, "very_high": 1e-4}
SubjectIdBody = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:@\-]+$")]


class VerifyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    subject_id: SubjectIdBody
    purpose: PurposeName
    image: str | None = Field(None, description="Inline probe image, base64 (at most 5 MB decoded)")
    probe_id: str | None = Field(
        None,
        pattern=r"^[0-9a-f]{32}$",
        description="An upload from POST /v1/probes made for this subject_id; not together with image",
    )
    security_level: SecurityLevel = Field("high", description="standard / high / very_high = FAR 1e-2 / 1e-3 / 1e-4")
    liveness: Literal["off", "advisory"] = "off"


class ProbeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    content_type: ContentType = "image/jpeg"
    subject_id: SubjectIdBody | None = Field(
        None,
        description="The subject to verify: a verification accepts only a probe uploaded for its subject, and "
        "the subject's erasure deletes it. Left out: a probe for identification",
    )


class ProbeResponse(BaseModel):
    probe_id: str
    upload: UploadInstructions


class VerificationResponse(BaseModel):
    verification_id: str
    subject_id: str
    purpose: str
    method: Literal["face"] = "face"
    decision: Literal["match", "no_match"]
    score: float | None = Field(None, description="Only where the purpose's expose_scores is on (audited)")
    threshold: float | None = Field(None, description="Only where the purpose's expose_scores is on (audited)")
    security_level: SecurityLevel
    model_id: str
    model_version: str
    liveness: Literal["off", "unavailable"] = Field(
        "off", description="No liveness model is shipped yet: an advisory request is answered 'unavailable'"
    )
    result_token: str = Field(description="ES256 JWT of the result; verify with /v1/keys")

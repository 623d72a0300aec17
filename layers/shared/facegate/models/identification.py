"""Contracts of 1:N identification and purpose configuration."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from facegate.models.consent import PurposeName

AssessmentId = Annotated[str, StringConstraints(min_length=3, max_length=80, pattern=r"^[A-Za-z0-9._:/\-]+$")]


class ConfigurePurposeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    identification_enabled: bool | None = Field(None, description="Left out: unchanged")
    assessment_id: AssessmentId | None = Field(
        None, description="Personal-information impact assessment covering 1:N for this purpose (required to enable)"
    )
    retention_days: int | None = Field(None, ge=1, le=3650)
    expose_scores: bool | None = Field(
        None,
        description="Verification and identification answers carry raw scores and thresholds (off by default: "
        "they help hill-climb a fake face). Setting it and every answer that carries scores are audited. "
        "Left out: unchanged",
    )


class PurposeResponse(BaseModel):
    purpose: str
    display_name: str
    retention_days: int
    identification_enabled: bool
    identification_assessment_id: str | None
    expose_scores: bool = False
    gallery_size: int | None = None


class IdentifyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    purpose: PurposeName
    image: str | None = Field(None, description="Inline probe image, base64 (at most 5 MB decoded)")
    probe_id: str | None = Field(None, pattern=r"^[0-9a-f]{32}$")
    top_k: int = Field(5, ge=1, le=50)


class Candidate(BaseModel):
    subject_id: str
    score: float | None = Field(None, description="Only where the purpose's expose_scores is on")


class IdentificationResponse(BaseModel):
    purpose: str
    candidates: list[Candidate]
    threshold: float | None = Field(None, description="Only where the purpose's expose_scores is on")
    per_comparison_far: float
    gallery_size: int
    expected_false_candidate_rate: float = Field(description="gallery size × per-comparison FAR")
    model_id: str
    model_version: str

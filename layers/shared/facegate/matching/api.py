"""Contracts of the matching function: 1:1 verification."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from facegate.consent.api import PurposeName
from facegate.enrolment.api import ContentType, UploadInstructions
from facegate.liveness.api import LivenessBurst, LivenessPolicyFields, LivenessPolicyView, LivenessResult
from facegate.matching.entities import FAR_BY_LEVEL

SecurityLevel = Literal["standard", "high", "very_high"]
SubjectIdBody = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:@\-]+$")]


class CreateVerificationRequest(BaseModel):
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
    liveness: LivenessBurst | Literal["off", "advisory"] = Field(
        "off",
        description="A burst answering a liveness session's challenge (POST /v1/liveness/sessions), instead of "
        "image / probe_id: liveness is judged on it and identity verified on its best frontal frame. "
        "'off' / 'advisory': a single photo, accepted only where the purpose's liveness policy is optional "
        "(else 403 liveness_required)",
    )


class CreateProbeRequest(BaseModel):
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
    liveness: LivenessResult | Literal["off", "unavailable"] = Field(
        "off",
        description="The liveness judgement of the burst (a spoof or retry is never a match; after one the "
        "non-face alternatives are listed). A single photo: 'off', or 'unavailable' when 'advisory' was asked",
    )
    result_token: str = Field(description="ES256 JWT of the result; verify with /v1/keys")


AssessmentId = Annotated[str, StringConstraints(min_length=3, max_length=80, pattern=r"^[A-Za-z0-9._:/\-]+$")]


class ConfigurePurposeRequest(LivenessPolicyFields):
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


class PurposeResponse(LivenessPolicyView):
    purpose: str
    display_name: str
    retention_days: int
    identification_enabled: bool
    identification_assessment_id: str | None
    expose_scores: bool = False
    gallery_size: int | None = None


class CreateIdentificationRequest(BaseModel):
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


class PopulationFigures(BaseModel):
    """What one population measured at a level's shipped threshold (development data of the model card)."""

    population: str
    fmr: float = Field(description="False-match rate at the threshold: false_matches / impostor_pairs")
    false_matches: int
    impostor_pairs: int
    fmr_measurable: bool = Field(
        description="False where fewer than min_expected_impostors impostor scores are expected at the promised "
        "rate: the pairs are too few to measure the fmr, which is then shown but not evidence of the promise"
    )
    within_2x_promise: bool | None = Field(
        None, description="fmr at most twice the promised rate; null where the fmr cannot be measured"
    )
    tar: float = Field(description="True-match rate at the threshold (genuine pairs accepted)")
    tar_interval_90: list[float] | None = Field(
        None,
        description="90 % interval of the tar [low, high], from resampling the population's people with "
        "replacement: how far the tar could be from this figure on other people like them",
    )
    genuine_pairs: int


class LevelCalibration(BaseModel):
    security_level: SecurityLevel
    promised_fmr: float = Field(description="The false-match rate the level promises to every population")
    threshold: float = Field(description="Similarity threshold 1:1 verification applies at this level")
    populations: list[PopulationFigures]


class PopulationSet(BaseModel):
    population: str
    images: int
    identities: int
    genuine_pairs: int
    impostor_pairs: int


class ModelCalibrationResponse(BaseModel):
    model_id: str
    model_version: str
    method: str = Field(description="How the thresholds were chosen")
    min_expected_impostors: int = Field(description="Impostor scores expected at the promise for an fmr to count")
    levels: list[LevelCalibration] = Field(description="standard, high, very_high")
    populations: list[PopulationSet] = Field(description="The development sets the figures were measured on")

    @classmethod
    def from_engine(cls, data: dict[str, Any]) -> ModelCalibrationResponse:
        """From `faceengine.FaceEngine.calibration()`. Raises ValueError if the manifest's levels are not the
        service's promises (the published threshold must be the one verification applies)."""
        populations: dict[str, Any] = data.get("populations", {})
        levels = []
        for level, far in FAR_BY_LEVEL.items():
            key = data["levels"][level]
            if abs(float(key) - far) > far * 1e-6:
                raise ValueError(f"the manifest maps {level} to FAR {key}, not {far:g}")
            figures = []
            for name, population in populations.items():
                measured = population["levels"][level]
                figures.append(
                    PopulationFigures(
                        population=name,
                        fmr=measured["fmr"],
                        false_matches=measured["false_matches"],
                        impostor_pairs=measured["impostor_pairs"],
                        fmr_measurable=measured["fmr_measurable"],
                        within_2x_promise=measured.get("within_2x_promise"),
                        tar=measured["tar"],
                        tar_interval_90=measured.get("tar_ci90"),
                        genuine_pairs=measured["genuine_pairs"],
                    )
                )
            levels.append(
                LevelCalibration(
                    security_level=level,
                    promised_fmr=far,
                    threshold=data["thresholds"][key],
                    populations=figures,
                )
            )
        return cls(
            model_id=data["model_id"],
            model_version=data["model_version"],
            method=data["method"],
            min_expected_impostors=data["min_expected_impostors"],
            levels=levels,
            populations=[
                PopulationSet(
                    population=name,
                    images=p["images"],
                    identities=p["identities"],
                    genuine_pairs=p["genuine_pairs"],
                    impostor_pairs=p["impostor_pairs"],
                )
                for name, p in populations.items()
            ],
        )

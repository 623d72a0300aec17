"""Contract of the model's calibration: per security level, the threshold and what each population measured at it."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from facegate.models.verification import FAR_BY_LEVEL, SecurityLevel


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

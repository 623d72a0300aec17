"""The calibration contract never publishes a threshold other than the one verification applies at a level."""

from __future__ import annotations

import json
from typing import Any

import pytest

from facegate.matching.api import ModelCalibrationResponse

pytestmark = pytest.mark.unit


@pytest.fixture
def calibration() -> dict[str, Any]:
    from faceengine.engine import MODELS_DIR

    manifest = json.loads((MODELS_DIR / "manifest.json").read_text())
    pipeline = manifest["pipeline"]
    return {**manifest["calibration"], "model_id": pipeline["model_id"], "model_version": pipeline["model_version"]}


def test_level_mapped_to_another_rate_is_refused(calibration: dict[str, Any]) -> None:
    # Given a manifest whose "high" level points at the 1e-2 threshold (verification applies the 1e-3 one)
    calibration["levels"]["high"] = "1e-02"
    # Then no document is made that would publish the wrong threshold for "high"
    with pytest.raises(ValueError, match="high"):
        ModelCalibrationResponse.from_engine(calibration)

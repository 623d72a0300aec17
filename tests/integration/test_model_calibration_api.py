"""GET /v1/models/calibration: the engine's calibration as data, through the gateway, as the manifest records it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.integration.conftest import Api

pytestmark = pytest.mark.integration
LEVELS = ("standard", "high", "very_high")


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    from faceengine.engine import MODELS_DIR

    return json.loads((MODELS_DIR / "manifest.json").read_text())


def test_calibration_is_the_manifests(api: Api, manifest: dict[str, Any]) -> None:
    # Given the shipped engine's manifest; When a tenant with the verify scope asks for the calibration
    reply = api.call("GET", "/v1/models/calibration", tenant="demo", token=api.cloud.token("demo", scopes=("verify",)))

    # Then it gets the manifest's figures, level by level and population by population
    assert reply.status == 200, reply.body
    body = reply.json
    calibration = manifest["calibration"]
    assert (body["model_id"], body["model_version"]) == (
        manifest["pipeline"]["model_id"],
        manifest["pipeline"]["model_version"],
    )
    assert body["method"] == calibration["method"]
    assert body["min_expected_impostors"] == calibration["min_expected_impostors"]
    populations = calibration["populations"]
    assert [p["population"] for p in body["populations"]] == list(populations)
    for summary in body["populations"]:
        recorded = populations[summary["population"]]
        for key in ("images", "identities", "genuine_pairs", "impostor_pairs"):
            assert summary[key] == recorded[key], (summary["population"], key)

    from faceengine import FaceEngine

    engine = FaceEngine.load()
    assert [level["security_level"] for level in body["levels"]] == list(LEVELS)
    for level in body["levels"]:
        name = level["security_level"]
        far_key = calibration["levels"][name]
        assert level["promised_fmr"] == float(far_key)
        # Stored values passed through JSON unchanged: equal, no tolerance needed.
        assert level["threshold"] == calibration["thresholds"][far_key]
        # The published threshold is the one 1:1 verification applies at that level.
        assert level["threshold"] == engine.threshold(level["promised_fmr"])
        assert [p["population"] for p in level["populations"]] == list(populations)
        for figures in level["populations"]:
            recorded = populations[figures["population"]]["levels"][name]
            for key in ("fmr", "false_matches", "impostor_pairs", "tar", "genuine_pairs", "fmr_measurable"):
                assert figures[key] == recorded[key], (name, figures["population"], key)
            assert figures["within_2x_promise"] == recorded.get("within_2x_promise")
            # The tar's 90 % interval (people resampled) is served with it, and holds the tar
            low, high = figures["tar_interval_90"]
            assert [low, high] == recorded["tar_ci90"] and low <= figures["tar"] <= high
            # The figures mean what they say: fmr = false matches / impostor pairs (the manifest rounds to
            # 6 decimals, hence 5e-7), and "cannot be measured" exactly where fewer than the minimum of
            # impostor scores are expected at the promised rate.
            assert figures["fmr"] == pytest.approx(figures["false_matches"] / figures["impostor_pairs"], abs=5e-7)
            expected_impostors = figures["impostor_pairs"] * level["promised_fmr"]
            assert figures["fmr_measurable"] == (expected_impostors >= body["min_expected_impostors"])
            if not figures["fmr_measurable"]:
                assert figures["within_2x_promise"] is None


def test_calibration_needs_the_verify_scope(api: Api) -> None:
    # Given tokens without the verify scope, or no token; When they ask; Then the gateway refuses them
    enrol_only = api.cloud.token("demo", scopes=("enrol", "identify", "consent"))
    assert api.call("GET", "/v1/models/calibration", token=enrol_only).status == 403
    assert api.call("GET", "/v1/models/calibration", tenant=None).status == 401


def test_calibration_is_the_same_for_every_tenant(api: Api) -> None:
    # The calibration describes the model, not a tenant's data: both tenants read the same document.
    demo = api.call("GET", "/v1/models/calibration", tenant="demo")
    other = api.call("GET", "/v1/models/calibration", tenant="other")
    assert demo.status == other.status == 200
    assert demo.json == other.json

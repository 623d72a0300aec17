"""Image-quality measures of one face and the checks that turn them into reasons to refuse it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from faceengine.landmarks import LEFT_EYE, NOSE_TIP, RIGHT_EYE, Mesh


@dataclass(frozen=True)
class Quality:
    """`measures` (name -> value) and the names of the checks that `failed` (empty when the face is usable)."""

    measures: dict[str, float] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no check failed."""
        return not self.failed


def _laplacian_variance(grey: npt.NDArray[np.float32]) -> float:
    lap = -4.0 * grey[1:-1, 1:-1] + grey[:-2, 1:-1] + grey[2:, 1:-1] + grey[1:-1, :-2] + grey[1:-1, 2:]
    return float(lap.var())


def measure(mesh: Mesh, chip: npt.NDArray[np.uint8]) -> dict[str, float]:
    """Face size, pose, sharpness and exposure of a face (chip = its aligned crop)."""
    p = mesh.points[:, :2]
    right = p[list(RIGHT_EYE)].mean(0)
    left = p[list(LEFT_EYE)].mean(0)
    nose = p[NOSE_TIP]
    eye_distance = float(np.linalg.norm(left - right))
    d_r = float(np.linalg.norm(nose - p[RIGHT_EYE[0]]))
    d_l = float(np.linalg.norm(nose - p[LEFT_EYE[0]]))
    yaw = (d_r - d_l) / max(d_r + d_l, 1e-6)
    axis = (left - right) / max(eye_distance, 1e-6)
    normal = np.array([-axis[1], axis[0]])
    pitch = float(np.dot(nose - (left + right) / 2.0, normal)) / max(eye_distance, 1e-6)
    h, w = chip.shape[:2]
    centre = chip[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4].astype(np.float32)
    grey = centre @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return {
        "eye_distance_px": eye_distance,
        "yaw": float(yaw),
        "pitch": pitch,
        "sharpness": _laplacian_variance(grey),
        "brightness": float(grey.mean()),
        "presence": mesh.presence,
    }


def check(measures: dict[str, float], limits: dict[str, Any]) -> Quality:
    """Compare measures with the manifest's limits; reasons are stable codes such as 'blurry'."""
    failed = []
    if measures["eye_distance_px"] < limits["min_eye_distance_px"]:
        failed.append("face_too_small")
    if measures["sharpness"] < limits["min_sharpness"]:
        failed.append("blurry")
    if abs(measures["yaw"]) > limits["max_abs_yaw"] or not (
        limits["pitch_range"][0] <= measures["pitch"] <= limits["pitch_range"][1]
    ):
        failed.append("pose")
    if measures["brightness"] < limits["min_brightness"]:
        failed.append("too_dark")
    if measures["brightness"] > limits["max_brightness"]:
        failed.append("too_bright")
    return Quality(measures=measures, failed=failed)

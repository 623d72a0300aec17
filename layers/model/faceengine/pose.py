"""Head pose and eye / mouth openness from FaceMesh's 468 landmarks (pure functions, no model).

Conventions (the person's own left and right; frames are un-mirrored, as the camera saw them):
* yaw > 0: the person turned their head to THEIR left, which moves the nose towards the RIGHT of the image;
* pitch > 0: the head is tilted up (chin up); roll > 0: the head leans towards the person's left shoulder
  (clockwise in the image);
* angles in degrees, from the 3-D mesh (FaceMesh's z is in the same pixel units as x and y): the face's
  left-right axis runs between the outer eye corners, its up axis from the chin to the forehead.
* eye openness: the eye aspect ratio (mean lid gap / eye width; about 0.25-0.35 open, below about 0.15 shut);
* mouth openness: inner-lip gap / mouth width (about 0 closed, above about 0.5 wide open).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from faceengine.landmarks import Mesh

# FaceMesh indices: outer, inner corner, then upper and lower lid pairs (subject's right eye = image left).
RIGHT_EYE_EAR = (33, 133, (160, 144), (158, 153))
LEFT_EYE_EAR = (263, 362, (387, 373), (385, 380))
MOUTH_CORNERS = (61, 291)
INNER_LIPS = ((13, 14), (82, 87), (312, 317))
FOREHEAD, CHIN = 10, 152
RIGHT_EYE_OUTER, LEFT_EYE_OUTER = 33, 263


@dataclass(frozen=True)
class Pose:
    """Head pose in degrees and openness ratios (see the module docstring for the conventions)."""

    yaw: float
    pitch: float
    roll: float
    eye_right: float
    eye_left: float
    mouth: float

    @property
    def eyes(self) -> float:
        """The mean of both eyes' openness."""
        return (self.eye_right + self.eye_left) / 2.0


def _dist(p: npt.NDArray[np.float64], a: int, b: int) -> float:
    return float(np.linalg.norm(p[a] - p[b]))


def eye_openness(points: npt.NDArray[np.float64], eye: tuple[int, int, tuple[int, int], tuple[int, int]]) -> float:
    """Eye aspect ratio: mean of the two lid gaps over the corner-to-corner width (2-D, image plane)."""
    p = points[:, :2]
    outer, inner, (u1, l1), (u2, l2) = eye
    width = max(_dist(p, outer, inner), 1e-6)
    return (_dist(p, u1, l1) + _dist(p, u2, l2)) / (2.0 * width)


def mouth_openness(points: npt.NDArray[np.float64]) -> float:
    """Mean inner-lip gap over the mouth width."""
    p = points[:, :2]
    width = max(_dist(p, *MOUTH_CORNERS), 1e-6)
    return float(np.mean([_dist(p, a, b) for a, b in INNER_LIPS])) / width


def head_angles(points: npt.NDArray[np.float64]) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees from the 3-D landmarks."""
    p = np.asarray(points, dtype=np.float64)
    x_axis = p[LEFT_EYE_OUTER] - p[RIGHT_EYE_OUTER]  # person's right -> left (image left -> right when frontal)
    up = p[FOREHEAD] - p[CHIN]  # chin -> forehead (image y points down, so up has a negative y when upright)
    x_axis /= max(np.linalg.norm(x_axis), 1e-9)
    up = up - np.dot(up, x_axis) * x_axis
    up /= max(np.linalg.norm(up), 1e-9)
    # The face's forward direction (out of the face towards the camera). Image axes: x right, y down, z away from
    # the camera (FaceMesh: smaller z = nearer), so a frontal face has forward ~ (0, 0, -1).
    forward = np.cross(x_axis, up)
    forward /= max(np.linalg.norm(forward), 1e-9)
    yaw = float(np.degrees(np.arctan2(forward[0], -forward[2])))
    pitch = float(np.degrees(np.arctan2(-forward[1], -forward[2])))
    roll = float(np.degrees(np.arctan2(x_axis[1], x_axis[0])))
    return yaw, pitch, roll


def pose(mesh: Mesh) -> Pose:
    """Head pose and openness of one mesh."""
    yaw, pitch, roll = head_angles(mesh.points)
    return Pose(
        yaw=yaw,
        pitch=pitch,
        roll=roll,
        eye_right=eye_openness(mesh.points, RIGHT_EYE_EAR),
        eye_left=eye_openness(mesh.points, LEFT_EYE_EAR),
        mouth=mouth_openness(mesh.points),
    )

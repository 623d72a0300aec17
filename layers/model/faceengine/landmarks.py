"""Dense face landmarks with MediaPipe FaceMesh (468 points) on an eye-levelled crop around a detection."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
from PIL import Image

from faceengine import align
from faceengine.detect import Detection

# FaceMesh indices (subject's right = image left for a frontal face).
RIGHT_EYE = (33, 133)  # outer, inner corner
LEFT_EYE = (263, 362)
NOSE_TIP = 1
MOUTH = (61, 291)


@dataclass(frozen=True)
class Mesh:
    """468 landmarks (x, y, z) in image pixels and FaceMesh's face-presence score (0..1)."""

    points: npt.NDArray[np.float64]
    presence: float

    def five_points(self) -> npt.NDArray[np.float64]:
        """Right eye centre, left eye centre, nose tip, right and left mouth corner (x, y)."""
        p = self.points[:, :2]
        return np.stack(
            [
                p[list(RIGHT_EYE)].mean(0),
                p[list(LEFT_EYE)].mean(0),
                p[NOSE_TIP],
                p[MOUTH[0]],
                p[MOUTH[1]],
            ]
        )


def warp_from(source: Image.Image, m: npt.NDArray[np.float64], size: int, scale: int = 1) -> npt.NDArray[np.uint8]:
    """align.warp for a frame already held as a Pillow image (no array round trip), possibly decoded at 1/scale of
    its size: m maps full-size pixel coordinates to the crop, and a full-size coordinate is `scale` times a reduced
    one. With scale 1 the pixels are those align.warp makes from the same frame as an array; the same rule applies
    (box-reduce first when shrinking by 2 or more), so a reduced decode stands in for that box reduction."""
    if scale != 1:
        m = m @ np.array([[scale, 0.0, 0.0], [0.0, scale, 0.0], [0.0, 0.0, 1.0]])
    shrink = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
    factor = int(1.0 / shrink) if shrink > 0 else 1
    if factor >= 2:
        reduced = source.reduce(factor)
        sx, sy = source.width / reduced.width, source.height / reduced.height
        m = m @ np.array([[sx, 0.0, 0.0], [0.0, sy, 0.0], [0.0, 0.0, 1.0]])
        source = reduced
    inv = align.invert(m)
    out = source.transform(
        (size, size),
        Image.Transform.AFFINE,
        data=tuple(inv.reshape(-1).tolist()),
        resample=Image.Resampling.BILINEAR,
        fillcolor=(0, 0, 0),
    )
    return np.asarray(out, dtype=np.uint8)


def reduction_for(m: npt.NDArray[np.float64], largest: int = 8) -> int:
    """The JPEG reduction (1, 2, 4 or 8, at most `largest`) that a crop through m can be taken from without losing
    detail: the crop would be box-reduced by at least that factor anyway (align.warp's rule)."""
    shrink = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
    factor = int(1.0 / shrink) if shrink > 0 else 1
    return max(s for s in (1, 2, 4, 8) if s <= max(1, min(factor, largest)))


class FaceMesh:
    """Runs FaceMesh on a rotated square crop; optionally a second pass on the crop the first mesh implies."""

    def __init__(self, session: ort.InferenceSession, spec: dict[str, Any], settings: dict[str, Any]) -> None:
        self.session = session
        self.size = int(spec["input"]["shape"][1])
        self.input_name = session.get_inputs()[0].name
        self.mesh_name = spec["outputs"]["mesh"]
        self.flag_name = spec["outputs"]["faceflag"]
        self.crop_scale = float(settings["crop_scale"])
        self.passes = int(settings.get("passes", 1))

    def _run(self, image: npt.NDArray[np.uint8], m: npt.NDArray[np.float64]) -> Mesh:
        return self.run_crop(image, m)[0]

    def run_crop(
        self, image: npt.NDArray[np.uint8] | Image.Image, m: npt.NDArray[np.float64], scale: int = 1
    ) -> tuple[Mesh, npt.NDArray[np.uint8]]:
        """The mesh found in the crop that the image->crop matrix m selects, and that crop (size x size RGB).

        image is an RGB array, or a Pillow image of the frame decoded at 1/scale of its size (see warp_from); m and
        the mesh are in full-size pixel coordinates either way."""
        if isinstance(image, np.ndarray):
            pixels = align.warp(image, m, self.size)
        else:
            pixels = warp_from(image, m, self.size, scale)
        crop = pixels.astype(np.float32) / 255.0
        mesh, flag = self.session.run([self.mesh_name, self.flag_name], {self.input_name: crop[None]})
        pts = mesh.reshape(-1, 3).astype(np.float64)
        inv = align.invert(m)
        xy = align.apply(inv, pts[:, :2])
        z = pts[:, 2:3] * float(np.sqrt(abs(np.linalg.det(inv[:, :2]))))
        presence = float(np.clip(flag.reshape(-1)[0], 0.0, 1.0))  # the graph already ends in a sigmoid
        return Mesh(points=np.concatenate([xy, z], axis=1), presence=presence), pixels

    def predict(self, image: npt.NDArray[np.uint8], det: Detection) -> Mesh:
        """Landmarks for one detection."""
        x, y, w, h = det.box
        eyes = det.keypoints[:2]
        angle = float(np.arctan2(eyes[1, 1] - eyes[0, 1], eyes[1, 0] - eyes[0, 0]))
        centre = np.array([x + w / 2.0, y + h / 2.0])
        m = align.rotation_scale_transform(centre, angle, max(w, h) * self.crop_scale, self.size)
        mesh = self._run(image, m)
        for _ in range(self.passes - 1):
            m = self.crop_from_mesh(mesh)
            mesh = self._run(image, m)
        return mesh

    def crop_from_mesh(self, mesh: Mesh) -> npt.NDArray[np.float64]:
        """The crop MediaPipe derives from a previous mesh: eye-levelled, box of all points, scaled."""
        p = mesh.points[:, :2]
        r, left = p[RIGHT_EYE[0]], p[LEFT_EYE[0]]
        angle = float(np.arctan2(left[1] - r[1], left[0] - r[0]))
        rot = align.rotation_scale_transform(np.zeros(2), angle, float(self.size), self.size)
        q = align.apply(rot, p)  # eye-levelled frame (unit scale)
        lo, hi = q.min(0), q.max(0)
        centre_q = (lo + hi) / 2.0
        centre = align.apply(align.invert(rot), centre_q[None])[0]
        side = float(max(hi - lo)) * self.crop_scale
        return align.rotation_scale_transform(centre, angle, side, self.size)

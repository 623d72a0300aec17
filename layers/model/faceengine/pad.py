"""Passive presentation-attack detection with Silent-Face's MiniFASNet (V2 at 2.7x, V1SE at 4.0x the face box).

Each network sees an 80x80 BGR crop (0..255, not normalised) of the face box scaled about its centre and shifted
back inside the image (as Silent-Face's CropImage does), and outputs 3 class probabilities, of which class 1 is
"real face". The score of a face is the mean real-class probability over the networks (Silent-Face sums the
softmax outputs of both models).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
from PIL import Image


def silent_face_crop(
    image: npt.NDArray[np.uint8], box: tuple[float, float, float, float], scale: float, size: int
) -> npt.NDArray[np.uint8]:
    """The face box (x, y, w, h) scaled by `scale` (less if the image is too small), shifted inside the image,
    resized to size x size (RGB)."""
    height, width = image.shape[:2]
    x, y, w, h = box
    w, h = max(w, 1.0), max(h, 1.0)
    scale = min((height - 1) / h, (width - 1) / w, scale)
    nw, nh = w * scale, h * scale
    cx, cy = x + w / 2.0, y + h / 2.0
    left, top, right, bottom = cx - nw / 2.0, cy - nh / 2.0, cx + nw / 2.0, cy + nh / 2.0
    if left < 0:
        right -= left
        left = 0
    if top < 0:
        bottom -= top
        top = 0
    if right > width - 1:
        left -= right - width + 1
        right = width - 1
    if bottom > height - 1:
        top -= bottom - height + 1
        bottom = height - 1
    patch = image[int(top) : int(bottom) + 1, int(left) : int(right) + 1]
    return np.asarray(Image.fromarray(patch).resize((size, size), Image.Resampling.BILINEAR), dtype=np.uint8)


@dataclass(frozen=True)
class _Net:
    name: str
    session: ort.InferenceSession
    scale: float
    size: int
    real_class: int
    input_name: str
    output_name: str


class PassivePad:
    """The networks named in the manifest's `pipeline.pad.models` (each with its crop scale)."""

    def __init__(self, sessions: dict[str, ort.InferenceSession], specs: dict[str, Any], settings: dict[str, Any]):
        self.nets = []
        for name in settings["models"]:
            spec = specs[name]
            pre = spec["preprocessing"]
            self.nets.append(
                _Net(
                    name=name,
                    session=sessions[name],
                    scale=float(pre["box_scale"]),
                    size=int(spec["input"]["shape"][2]),
                    real_class=int(spec["postprocessing"]["real_class"]),
                    input_name=spec["input"]["name"],
                    output_name=spec["outputs"]["probabilities"],
                )
            )

    def scores(
        self, image: npt.NDArray[np.uint8], boxes: list[tuple[float, float, float, float]]
    ) -> npt.NDArray[np.float64]:
        """Real-face score (0..1) of each face box in one image."""
        if not boxes:
            return np.zeros(0)
        total = np.zeros(len(boxes))
        for net in self.nets:
            crops = np.stack([silent_face_crop(image, b, net.scale, net.size) for b in boxes])
            x = np.ascontiguousarray(crops[..., ::-1].transpose(0, 3, 1, 2), dtype=np.float32)  # RGB -> BGR, NCHW
            probs = net.session.run([net.output_name], {net.input_name: x})[0]
            total += probs[:, net.real_class]
        return total / len(self.nets)

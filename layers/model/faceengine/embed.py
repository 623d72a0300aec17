"""Face embedders: aligned chip -> L2-normalised descriptor (optionally averaged with the mirrored chip)."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort


def l2_normalise(v: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Unit-length rows."""
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return np.asarray(v / np.maximum(n, 1e-12), dtype=np.float32)


class Embedder:
    """One recognition network described by the manifest (input size, output name, value range)."""

    def __init__(self, name: str, session: ort.InferenceSession, spec: dict[str, Any]) -> None:
        self.name = name
        self.session = session
        self.size = int(spec["input"]["shape"][1])
        self.input_name = session.get_inputs()[0].name
        self.output_name = spec["outputs"]["embedding"]
        self.dimension = int(spec["onnx_io"]["outputs"][self.output_name][-1])
        pre = spec.get("preprocessing", {})
        # Optional input conversion (absent = RGB 0..255 as is): channel order, per-channel means to subtract and
        # a divisor (`std`).
        self.bgr = str(pre.get("channel_order", "RGB")).upper() == "BGR"
        mean = pre.get("mean")
        self.mean = None if mean is None else np.asarray(mean, dtype=np.float32).reshape(1, 1, 1, 3)
        std = pre.get("std")
        self.std = None if std is None else np.float32(std)
        # Models trained on 5-point aligned chips carry their template (continuous px of a chip of that size).
        template = pre.get("five_point_template")
        self.five_point_template = (
            None
            if template is None
            else np.asarray(template, dtype=np.float64) / float(pre.get("five_point_template_size", self.size))
        )

    def embed(self, chip: npt.NDArray[np.uint8], mirror: bool) -> npt.NDArray[np.float32]:
        """Descriptor of one chip (size x size x 3, RGB 0..255); with mirror, the mean with its flip's.

        The manifest's preprocessing may ask for BGR order (`channel_order`), channel means to subtract (`mean`)
        and a divisor (`std`).
        """
        x = chip.astype(np.float32)[None]
        if mirror:
            x = np.concatenate([x, x[:, :, ::-1]], axis=0)
        if self.bgr:
            x = x[..., ::-1]
        if self.mean is not None:
            x = x - self.mean
        if self.std is not None:
            x = x / self.std
        x = np.ascontiguousarray(x, dtype=np.float32)
        out = self.session.run([self.output_name], {self.input_name: x})[0]
        v = l2_normalise(np.asarray(out, dtype=np.float32)).sum(0)
        return l2_normalise(v)

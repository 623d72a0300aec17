"""Face detection with MediaPipe BlazeFace (256x256 back-camera model): boxes, 6 keypoints, scores."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
from PIL import Image


@dataclass(frozen=True)
class Detection:
    """One detected face, in image pixels: box (x, y, w, h), 6 keypoints (x, y) and a score in 0..1."""

    box: tuple[float, float, float, float]
    keypoints: npt.NDArray[np.float64]
    score: float


def _anchors(size: int, layout: list[dict[str, int]]) -> npt.NDArray[np.float64]:
    """Anchor centres in input pixels, in the order the model emits them."""
    out = []
    for layer in layout:
        stride, per_cell = layer["stride"], layer["per_cell"]
        n = size // stride
        ys, xs = np.mgrid[0:n, 0:n]
        centres = np.stack([(xs.ravel() + 0.5) * stride, (ys.ravel() + 0.5) * stride], axis=1)
        out.append(np.repeat(centres, per_cell, axis=0))
    return np.concatenate(out, axis=0)


def _iou(box: npt.NDArray[np.float64], boxes: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    x1 = np.maximum(box[0], boxes[:, 0])
    y1 = np.maximum(box[1], boxes[:, 1])
    x2 = np.minimum(box[2], boxes[:, 2])
    y2 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return np.asarray(inter / np.maximum(area + areas - inter, 1e-9), dtype=np.float64)


class BlazeFaceDetector:
    """Runs BlazeFace on a letterboxed copy of the image and decodes anchors with weighted NMS."""

    def __init__(self, session: ort.InferenceSession, spec: dict[str, Any], settings: dict[str, Any]) -> None:
        self.session = session
        self.size = int(spec["input"]["shape"][1])
        self.input_name = session.get_inputs()[0].name
        outs = spec["outputs"]
        self.output_names = [
            outs["scores_stride16"],
            outs["regressors_stride16"],
            outs["scores_stride32"],
            outs["regressors_stride32"],
        ]
        self.anchors = _anchors(self.size, spec["postprocessing"]["anchors"])
        self.score_threshold = float(settings["score_threshold"])
        self.nms_iou = float(settings["nms_iou"])
        self.max_faces = int(settings.get("max_faces", 20))

    def preprocess(self, image: npt.NDArray[np.uint8]) -> tuple[npt.NDArray[np.float32], float]:
        """Letterbox (pad right/bottom) to a square, resize to the model size, scale to -1..1."""
        h, w = image.shape[:2]
        side = max(h, w)
        scale = side / self.size
        pil = Image.fromarray(image)
        nw, nh = max(1, round(w / scale)), max(1, round(h / scale))
        if side > 2 * self.size:
            pil = pil.reduce(max(1, int(side / self.size / 1.5)))
        resized = np.asarray(pil.resize((nw, nh), Image.Resampling.BILINEAR), dtype=np.float32)
        canvas = np.zeros((self.size, self.size, 3), dtype=np.float32)
        canvas[:nh, :nw] = resized
        return (canvas / 127.5 - 1.0)[None], scale

    def detect(self, image: npt.NDArray[np.uint8]) -> list[Detection]:
        """All faces above the score threshold, best first."""
        tensor, scale = self.preprocess(image)
        s16, r16, s32, r32 = self.session.run(self.output_names, {self.input_name: tensor})
        logits = np.concatenate([s16[0, :, 0], s32[0, :, 0]]).astype(np.float64)
        regs = np.concatenate([r16[0], r32[0]]).astype(np.float64)
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits, -80, 80)))
        keep = np.flatnonzero(scores >= self.score_threshold)
        if keep.size == 0:
            return []
        anchors = self.anchors[keep]
        reg = regs[keep]
        centres = reg[:, 0:2] + anchors
        half = reg[:, 2:4] / 2.0
        boxes = np.concatenate([centres - half, centres + half], axis=1)
        kps = reg[:, 4:16].reshape(-1, 6, 2) + anchors[:, None, :]
        sc = scores[keep]
        order = np.argsort(-sc)
        used = np.zeros(len(order), dtype=bool)
        faces: list[Detection] = []
        for i in order:
            if used[i]:
                continue
            overlap = _iou(boxes[i], boxes)
            group = np.flatnonzero((overlap >= self.nms_iou) & ~used)
            used[group] = True
            # Weighted NMS (as MediaPipe): average the overlapping candidates by score.
            wts = sc[group] / sc[group].sum()
            box = (boxes[group] * wts[:, None]).sum(0) * scale
            kp = (kps[group] * wts[:, None, None]).sum(0) * scale
            faces.append(
                Detection(
                    box=(float(box[0]), float(box[1]), float(box[2] - box[0]), float(box[3] - box[1])),
                    keypoints=kp,
                    score=float(sc[i]),
                )
            )
            if len(faces) >= self.max_faces:
                break
        return faces

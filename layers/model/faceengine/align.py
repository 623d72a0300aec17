"""Alignment as pure functions: landmarks -> similarity transform -> fixed-size face chip.

Coordinates are continuous pixel coordinates (the centre of pixel (i, j) is at (i + 0.5, j + 0.5)), which is
also what PIL's affine warp uses, so no half-pixel shifts creep in between the stages.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from PIL import Image

FloatArray = npt.NDArray[np.float64]


def similarity_transform(src: npt.ArrayLike, dst: npt.ArrayLike) -> FloatArray:
    """Least-squares similarity (rotation, uniform scale, translation) mapping src points onto dst (Umeyama).

    Returns a 2x3 matrix M with dst ~= M[:, :2] @ src + M[:, 2].
    """
    s = np.asarray(src, dtype=np.float64).reshape(-1, 2)
    d = np.asarray(dst, dtype=np.float64).reshape(-1, 2)
    if s.shape != d.shape or s.shape[0] < 2:
        raise ValueError("need at least two matching point pairs")
    ms, md = s.mean(0), d.mean(0)
    sc, dc = s - ms, d - md
    var = float((sc**2).sum()) / len(s)
    if var <= 0:
        raise ValueError("source points are degenerate")
    cov = dc.T @ sc / len(s)
    u, sig, vt = np.linalg.svd(cov)
    sign = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[1] = -1.0
    rot = u @ np.diag(sign) @ vt
    scale = float((sig * sign).sum()) / var
    m = np.zeros((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = md - m[:, :2] @ ms
    return m


def rotation_scale_transform(centre: npt.ArrayLike, angle: float, side: float, size: int) -> FloatArray:
    """2x3 matrix mapping a square of `side` px centred on `centre`, rotated by `angle` (radians), to size x size."""
    cx, cy = np.asarray(centre, dtype=np.float64)
    k = size / side
    c, s = np.cos(angle) * k, np.sin(angle) * k
    # Rotate by -angle about the centre so that the rotated square becomes axis-aligned.
    m = np.array([[c, s, 0.0], [-s, c, 0.0]])
    m[:, 2] = np.array([size / 2.0, size / 2.0]) - m[:, :2] @ np.array([cx, cy])
    return m


def invert(m: FloatArray) -> FloatArray:
    """Inverse of a 2x3 affine matrix."""
    full = np.vstack([m, [0.0, 0.0, 1.0]])
    return np.linalg.inv(full)[:2]


def apply(m: FloatArray, points: npt.ArrayLike) -> FloatArray:
    """Apply a 2x3 affine matrix to Nx2 points."""
    p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    return p @ m[:, :2].T + m[:, 2]


def warp(image: npt.NDArray[np.uint8], m: FloatArray, size: int) -> npt.NDArray[np.uint8]:
    """Crop `size` x `size` pixels through the image->crop matrix m (bilinear; box-filtered first if shrinking)."""
    scale = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
    pil = Image.fromarray(image)
    factor = int(1.0 / scale) if scale > 0 else 1
    if factor >= 2:
        # Shrinking a lot with bilinear sampling aliases: box-reduce first, then warp the smaller image.
        pil = pil.reduce(factor)
        sx = image.shape[1] / pil.width
        sy = image.shape[0] / pil.height
        m = m @ np.array([[sx, 0.0, 0.0], [0.0, sy, 0.0], [0.0, 0.0, 1.0]])
    inv = invert(m)
    out = pil.transform(
        (size, size),
        Image.Transform.AFFINE,
        data=tuple(inv.reshape(-1).tolist()),
        resample=Image.Resampling.BILINEAR,
        fillcolor=(0, 0, 0),
    )
    return np.asarray(out, dtype=np.uint8)

"""Calibration data for the face engine's manifest (data, not code constants).

  python tools/calibrate.py chip-template PHOTO...   # where FaceMesh points land on dlib's own face chips
  python tools/calibrate.py thresholds SCORES.npz     # similarity thresholds at FAR 1e-2/1e-3/1e-4

chip-template needs dlib and face_recognition_models (the peer, not a project requirement). dlib's ResNet was
trained on chips made by get_face_chip_details(68 landmarks, 150 px, padding 0.25); for each face in the given
photos this maps our FaceMesh landmarks into that chip's coordinates and stores their mean (in the unit square)
as the alignment template. Fit it on photos that are NOT in the evaluation set (we use faces_misc/multi_*).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "layers" / "model"))

from faceengine import align  # noqa: E402
from faceengine.engine import FARS, MODELS_DIR, FaceEngine  # noqa: E402

CHIP = 150
PADDING = 0.25


def dlib_chip_matrix(details: Any) -> np.ndarray:
    """Image->chip 2x3 matrix (continuous pixel coordinates) of a dlib chip_details."""
    rc = details.rect
    cx, cy = (rc.left() + rc.right()) / 2.0, (rc.top() + rc.bottom()) / 2.0
    c, s = np.cos(details.angle), np.sin(details.angle)
    k = (rc.right() - rc.left()) / (details.cols - 1)
    chip_to_img = np.zeros((2, 3))
    chip_to_img[:, :2] = np.array([[c, -s], [s, c]]) * k
    chip_to_img[:, 2] = np.array([cx, cy]) - chip_to_img[:, :2] @ np.array(
        [(details.cols - 1) / 2.0, (details.rows - 1) / 2.0]
    )
    m = align.invert(chip_to_img)
    m[:, 2] = m[:, 2] + 0.5 - m[:, :2] @ np.array([0.5, 0.5])  # dlib uses integer pixel centres
    return m


def fit_chip_template(photos: list[Path], engine: FaceEngine) -> tuple[np.ndarray, int]:
    """Mean FaceMesh landmark positions (unit square of dlib's 150 px chip) over all faces both find."""
    import dlib
    import face_recognition_models as frm

    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(frm.pose_predictor_model_location())
    samples = []
    for path in photos:
        image = engine.decode(path.read_bytes())
        faces = engine.analyse(path.read_bytes())
        for rect in detector(image, 1):
            centre = np.array([(rect.left() + rect.right()) / 2.0, (rect.top() + rect.bottom()) / 2.0])
            near = [
                f
                for f in faces
                if np.linalg.norm(f.mesh.points[:, :2].mean(0) - centre) < 0.25 * rect.width()
                and f.mesh.presence >= 0.5
            ]
            if len(near) != 1:
                continue
            m = dlib_chip_matrix(dlib.get_face_chip_details(predictor(image, rect), CHIP, PADDING))
            samples.append(align.apply(m, near[0].mesh.points[:, :2]) / CHIP)
    if not samples:
        raise SystemExit("no face was found by both dlib and the engine")
    return np.mean(samples, axis=0), len(samples)


def thresholds_at(genuine: np.ndarray, impostor: np.ndarray) -> dict[str, float]:
    """Smallest threshold whose impostor acceptance rate (score >= t) is at most each FAR."""
    imp = np.sort(np.asarray(impostor, dtype=np.float64))[::-1]
    out = {}
    for far in FARS:
        k = int(np.floor(far * len(imp)))  # at most k impostors may pass
        t = float(np.nextafter(imp[k], np.inf)) if k < len(imp) else float(imp[-1])
        # Six decimals, rounded UP: rounding to nearest could land at or below the (k+1)-th impostor score and let
        # it pass too (1.2.0's calibration did that).
        t6 = float(np.ceil(t * 1e6) / 1e6)
        while t6 < t:
            t6 = float(np.nextafter(t6, np.inf))
        out[f"{far:.0e}"] = t6
    return out


def write_section(models_dir: Path, key: str, value: Any) -> None:
    """Replace one top-level section of the manifest (alignment lives under pipeline)."""
    path = models_dir / "manifest.json"
    manifest = json.loads(path.read_text())
    if key == "alignment":
        manifest["pipeline"]["alignment"].update(value)
    else:
        manifest[key] = value
    path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")


def main() -> None:
    """Command line."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models-dir", type=Path, default=MODELS_DIR)
    sub = ap.add_subparsers(dest="cmd", required=True)
    ct = sub.add_parser("chip-template")
    ct.add_argument("photos", nargs="+", type=Path)
    sub.add_parser("thresholds").add_argument("scores", type=Path)
    args = ap.parse_args()
    if args.cmd == "chip-template":
        engine = FaceEngine(args.models_dir)
        template, n = fit_chip_template(args.photos, engine)
        write_section(
            args.models_dir,
            "alignment",
            {
                "template_all": np.round(template, 5).tolist(),
                "template": np.round(template[engine.manifest["pipeline"]["alignment"]["points"]], 5).tolist(),
                "template_fitted_on": f"{n} faces in {len(args.photos)} photos outside the evaluation set",
            },
        )
        print(f"chip template from {n} faces written to {args.models_dir / 'manifest.json'}")
    else:
        data = np.load(args.scores)
        th = thresholds_at(data["genuine"], data["impostor"])
        write_section(args.models_dir, "calibration", {"thresholds": th})
        print(json.dumps(th))


if __name__ == "__main__":
    main()

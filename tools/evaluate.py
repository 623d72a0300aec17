"""Verification accuracy and speed of the face engine on a labelled folder (<person>/<image>).

  python tools/evaluate.py /work/shared/faces [--peer] [--plot det.png] [--calibrate] [--held-out] [--override JSON]

All same-person pairs and --impostors sampled different-person pairs (fixed seed). A photo that fails to enrol
(no face, several faces, low quality) makes every pair it is in a non-match. ms_per_image is the time of
detection + landmarks + quality + alignment + embedding per image with onnxruntime on one thread (decoding
excluded). The last line printed is one JSON object. --peer runs face_recognition 1.3.0 (dlib) side by side;
install it with `pip install dlib-bin face-recognition-models 'setuptools<81'` and
`pip install --no-deps face_recognition` (an evaluation tool, not a project requirement).
--calibrate writes the thresholds at FAR 1e-2/1e-3/1e-4 into the manifest. --held-out also calibrates on half
of the identities and reports TAR and the FAR actually reached on the other half.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
from tqdm import tqdm

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "layers" / "model"))
sys.path.insert(0, str(REPO / "tools"))

from calibrate import thresholds_at, write_section  # noqa: E402

from faceengine import FaceEngine, Template, errors  # noqa: E402
from faceengine.engine import FARS, MODELS_DIR  # noqa: E402

IMAGE_EXT = {".jpg", ".jpeg", ".png", ".webp"}


def list_dataset(root: Path) -> list[tuple[str, Path]]:
    """(identity, path) for every image, sorted."""
    out = []
    for person in sorted(p for p in root.iterdir() if p.is_dir()):
        out += [(person.name, f) for f in sorted(person.iterdir()) if f.suffix.lower() in IMAGE_EXT]
    return out


def make_pairs(labels: list[str], n_impostor: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """All genuine pairs and n_impostor distinct random impostor pairs (i < j)."""
    lab = np.asarray(labels)
    genuine = np.array([(i, j) for i in range(len(lab)) for j in range(i + 1, len(lab)) if lab[i] == lab[j]])
    rng = np.random.default_rng(seed)
    total_imp = len(lab) * (len(lab) - 1) // 2 - len(genuine)
    n_impostor = min(n_impostor, total_imp)
    seen: set[tuple[int, int]] = set()
    while len(seen) < n_impostor:
        a = rng.integers(0, len(lab), size=2 * n_impostor)
        b = rng.integers(0, len(lab), size=2 * n_impostor)
        for i, j in zip(a.tolist(), b.tolist(), strict=True):
            if lab[i] != lab[j]:
                seen.add((min(i, j), max(i, j)))
                if len(seen) >= n_impostor:
                    break
    return genuine, np.array(sorted(seen))


def pair_scores(emb: np.ndarray, ok: np.ndarray, pairs: np.ndarray, sim: Callable[..., np.ndarray]) -> np.ndarray:
    """Similarity per pair; -inf where either photo failed to enrol."""
    s = sim(emb[pairs[:, 0]], emb[pairs[:, 1]])
    return np.where(ok[pairs[:, 0]] & ok[pairs[:, 1]], s, -np.inf)


def metrics(gen: np.ndarray, imp: np.ndarray) -> dict[str, float]:
    """TAR at the calibrated thresholds and the equal error rate."""
    th = thresholds_at(gen, imp)
    out: dict[str, float] = {}
    for far in FARS:
        out[f"tar_at_far_{far:.0e}".replace("e-0", "e-")] = float(np.mean(gen >= th[f"{far:.0e}"]))
    finite = np.concatenate([gen[np.isfinite(gen)], imp[np.isfinite(imp)]])
    grid = np.unique(np.quantile(finite, np.linspace(0, 1, 4001)))
    frr = np.array([np.mean(gen < t) for t in grid])
    far_ = np.array([np.mean(imp >= t) for t in grid])
    k = int(np.argmin(np.abs(frr - far_)))
    out["eer"] = float((frr[k] + far_[k]) / 2)
    return out


def run_engine(engine: FaceEngine, items: list[tuple[str, Path]]) -> tuple[np.ndarray, np.ndarray, list[float], dict]:
    """Embeddings, success mask, per-image ms (excluding decode) and failure counts by error code."""
    emb = np.zeros((len(items), engine.dimension), dtype=np.float32)
    ok = np.zeros(len(items), dtype=bool)
    times: list[float] = []
    fails: dict[str, int] = {}
    for k, (_, path) in enumerate(tqdm(items, desc="engine", unit="img", file=sys.stderr)):
        image = engine.decode(path.read_bytes())
        t0 = time.perf_counter()
        try:
            tpl = engine.enrol_image(image)
            emb[k], ok[k] = tpl.vector, True
        except errors.FaceEngineError as exc:
            fails[exc.code] = fails.get(exc.code, 0) + 1
        times.append((time.perf_counter() - t0) * 1000)
    return emb, ok, times, fails


def run_peer(items: list[tuple[str, Path]]) -> tuple[np.ndarray, np.ndarray, list[float], dict]:
    """face_recognition 1.3.0: HOG detector (1 upsample), 5-point alignment, dlib ResNet (1 jitter)."""
    import face_recognition

    emb = np.zeros((len(items), 128), dtype=np.float32)
    ok = np.zeros(len(items), dtype=bool)
    times: list[float] = []
    fails: dict[str, int] = {}
    for k, (_, path) in enumerate(tqdm(items, desc="peer", unit="img", file=sys.stderr)):
        image = face_recognition.load_image_file(str(path))
        t0 = time.perf_counter()
        boxes = face_recognition.face_locations(image)
        if len(boxes) >= 1:
            # The peer has no multiple-face rule: it takes the largest face.
            box = max(boxes, key=lambda b: (b[2] - b[0]) * (b[1] - b[3]))
            emb[k] = face_recognition.face_encodings(image, [box])[0]
            ok[k] = True
        else:
            fails["no_face"] = fails.get("no_face", 0) + 1
        times.append((time.perf_counter() - t0) * 1000)
    return emb, ok, times, fails


def search_keys(engine: FaceEngine, emb: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """The 1:N search key of every enrolled photo (zeros where enrolment failed)."""
    out = np.zeros((len(emb), engine.search_dimension), dtype=np.float32)
    for k in np.flatnonzero(ok):
        out[k] = engine.search_vector(Template(emb[k], engine.model_id, engine.model_version))
    return out


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.asarray(np.sum(a * b, axis=1))


def neg_euclidean(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.asarray(-np.linalg.norm(a - b, axis=1))


def summarise(name: str, emb: Any, ok: Any, times: list[float], fails: dict, pairs: tuple, sim: Callable) -> dict:
    gen = pair_scores(emb, ok, pairs[0], sim)
    imp = pair_scores(emb, ok, pairs[1], sim)
    res: dict[str, Any] = {"name": name, **metrics(gen, imp)}
    res["fte"] = float(1.0 - ok.mean())
    res["ms_per_image"] = float(np.median(times))
    res["ms_per_image_mean"] = float(np.mean(times))
    res["failures"] = fails
    res["_scores"] = (gen, imp)
    return res


def held_out(
    labels: list[str], pairs: tuple[np.ndarray, np.ndarray], gen: np.ndarray, imp: np.ndarray, seed: int
) -> dict:
    """Thresholds calibrated on half of the identities, applied to the pairs of the other half (and back).

    The figures above set and measure thresholds on the same pairs; this shows how far that flatters them. Pairs
    are split by identity (a pair belongs to a half when both of its people do), so no person's photos are seen
    on both sides. Returns, per FAR target, the TAR and the FAR actually reached on the unseen half (mean of the
    two directions).
    """
    people = sorted(set(labels))
    rng = np.random.default_rng(seed)
    half = set(rng.permutation(people)[: len(people) // 2].tolist())
    side = np.array([label in half for label in labels])
    out: dict[str, dict[str, float]] = {}
    for far in FARS:
        key = f"{far:.0e}"
        tars, fars = [], []
        for a in (True, False):
            g_fit = gen[(side[pairs[0][:, 0]] == a) & (side[pairs[0][:, 1]] == a)]
            i_fit = imp[(side[pairs[1][:, 0]] == a) & (side[pairs[1][:, 1]] == a)]
            g_test = gen[(side[pairs[0][:, 0]] != a) & (side[pairs[0][:, 1]] != a)]
            i_test = imp[(side[pairs[1][:, 0]] != a) & (side[pairs[1][:, 1]] != a)]
            th = thresholds_at(g_fit, i_fit)[key]
            tars.append(float(np.mean(g_test >= th)))
            fars.append(float(np.mean(i_test >= th)))
        out[key] = {"tar": float(np.mean(tars)), "far": float(np.mean(fars))}
    return out


def det_plot(results: list[dict], path: Path) -> None:
    """DET curve (false non-match vs false match rate, log axes)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 5))
    for r in results:
        gen, imp = r["_scores"]
        finite = np.concatenate([gen[np.isfinite(gen)], imp[np.isfinite(imp)]])
        grid = np.unique(np.quantile(finite, np.linspace(0, 1, 2001)))
        fmr = np.array([np.mean(imp >= t) for t in grid])
        fnmr = np.array([np.mean(gen < t) for t in grid])
        ax.plot(np.maximum(fmr, 1e-6), np.maximum(fnmr, 1e-4), label=f"{r['name']} (EER {r['eer']:.3f})")
    for far in FARS:
        ax.axvline(far, color="grey", lw=0.5, ls=":")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("false match rate")
    ax.set_ylabel("false non-match rate")
    ax.set_title("DET")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    """Command line."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dataset", type=Path)
    ap.add_argument("--models-dir", type=Path, default=MODELS_DIR)
    ap.add_argument("--impostors", type=int, default=200_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--peer", action="store_true", help="also run face_recognition 1.3.0 (dlib)")
    ap.add_argument("--plot", type=Path, help="write a DET plot (PNG)")
    ap.add_argument("--calibrate", action="store_true", help="write the thresholds into the manifest")
    ap.add_argument("--override", default="", help="JSON merged into the manifest's pipeline (variants)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--save-scores", type=Path)
    ap.add_argument(
        "--held-out", action="store_true", help="also calibrate on half of the identities and test on the other half"
    )
    args = ap.parse_args()

    items = list_dataset(args.dataset)
    labels = [p for p, _ in items]
    pairs = make_pairs(labels, args.impostors, args.seed)
    overrides = json.loads(args.override) if args.override else None
    engine = FaceEngine(args.models_dir, threads=args.threads, overrides=overrides)
    engine.enrol_image(engine.decode(items[0][1].read_bytes()))  # warm-up
    emb, ok, times, fails = run_engine(engine, items)
    results = [summarise("facegate", emb, ok, times, fails, pairs, cosine)]
    # The 1:N search key (part of the template) has thresholds of its own.
    search = None
    if engine.search_dimension != engine.dimension:
        search_emb = search_keys(engine, emb, ok)
        search = summarise("facegate 1:N search key", search_emb, ok, times, fails, pairs, cosine)
    peer = summarise("face_recognition 1.3.0", *run_peer(items), pairs, neg_euclidean) if args.peer else None

    print(
        f"\n{len(items)} images, {len(set(labels))} identities, "
        f"{len(pairs[0])} genuine / {len(pairs[1])} impostor pairs"
    )
    head = f"{'pipeline':<26}{'TAR@1e-2':>10}{'TAR@1e-3':>10}{'TAR@1e-4':>10}{'EER':>8}{'FTE':>8}{'ms/img':>8}"
    print(head)
    print("-" * len(head))
    for r in results + [r for r in (search, peer) if r is not None]:
        print(
            f"{r['name']:<26}{r['tar_at_far_1e-2']:>10.3f}{r['tar_at_far_1e-3']:>10.3f}{r['tar_at_far_1e-4']:>10.3f}"
            f"{r['eer']:>8.3f}{r['fte']:>8.3f}{r['ms_per_image']:>8.1f}   failures {r['failures']}"
        )
    if args.plot:
        det_plot(results + [r for r in (search, peer) if r is not None], args.plot)
        print(f"DET plot written to {args.plot}")
    gen, imp = results[0]["_scores"]
    held = held_out(labels, pairs, gen, imp, args.seed) if args.held_out else None
    if held:
        print("\nheld-out thresholds (calibrated on half of the identities, applied to the other half):")
        for key, v in held.items():
            print(f"  target FAR {key}: TAR {v['tar']:.3f}, FAR reached {v['far']:.1e}")
    if args.save_scores:
        np.savez(args.save_scores, genuine=gen, impostor=imp)
    if args.calibrate:
        th = thresholds_at(gen, imp)
        write_section(
            args.models_dir,
            "calibration",
            {
                "thresholds": th,
                "model_id": engine.model_id,
                "model_version": engine.model_version,
                "dataset": f"{args.dataset.name}: {len(items)} images, {len(set(labels))} identities",
                "pairs": {"genuine": len(pairs[0]), "impostor": len(pairs[1]), "seed": args.seed},
                "measured": {k: round(v, 4) for k, v in results[0].items() if k.startswith(("tar", "eer", "fte"))},
                "note": "similarity (cosine) >= threshold accepts; FAR is measured on impostor pairs",
                **({"search_thresholds": thresholds_at(*search["_scores"])} if search else {}),
                **(
                    {"search_measured": {k: round(v, 4) for k, v in search.items() if k.startswith(("tar", "eer"))}}
                    if search
                    else {}
                ),
            },
        )
        print(f"thresholds written to the manifest: {th}")
    summary: dict[str, Any] = {
        "images": len(items),
        "identities": len(set(labels)),
        "genuine_pairs": len(pairs[0]),
        "impostor_pairs": len(pairs[1]),
    }
    keys = ["tar_at_far_1e-2", "tar_at_far_1e-3", "tar_at_far_1e-4", "eer", "fte", "ms_per_image"]
    summary.update({k: round(results[0][k], 4) for k in keys})
    if held:
        summary["held_out"] = {k: {m: round(x, 5) for m, x in v.items()} for k, v in held.items()}
    if search:
        summary["search_key"] = {k: round(search[k], 4) for k in keys if not k.startswith(("fte", "ms"))}
    if peer:
        summary["peer"] = {k: round(peer[k], 4) for k in keys}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()

"""Verification accuracy and speed of the face engine, per population, at each security level.

  python tools/evaluate.py [--shared ../shared] [--plot det.png] [--calibrate] [--held-out]
                           [--baseline-models-dir DIR] [--override JSON] [--cache FILE]
  python tools/evaluate.py DATASET [...]            # one folder <person>/<image> (e.g. an independent set)
  python tools/evaluate.py --set NAME=DIR [--set NAME=DIR ...] [--check]   # independent sets, one population each

Without DATASET or --set, the populations are built from ../shared as tools/populations.json says: "Western"
(shared/faces minus the East Asian people) and "East Asian" (CASIA-FaceV5 crops in faces_asia, the NUAA webcam
photos in pad/bona_fide with ONE frame per sequence, as frames of a sequence are near-identical, and the East
Asian people of shared/faces). Every same-person pair and every different-person pair inside a population is
scored (a folder with more than --impostors different-person pairs is sampled, fixed seed). A photo that fails to
enrol (no face, several faces, low quality) makes every pair it is in a non-match.

For each population and security level (standard / high / very_high = promised false-match rate 1e-2 / 1e-3 /
1e-4) it reports the FMR the population really gets at the shipped threshold, the TAR there, and the pair counts.
A figure is "cannot be measured" when fewer than 10 impostor scores would be expected at the promised rate
(impostor pairs x promise < 10). The last lines printed are one JSON object per population.

ms_per_image is detection + landmarks + quality + alignment + embedding per image with onnxruntime on one thread
(decoding excluded). --baseline-models-dir runs a second engine (e.g. the previous release's models directory) on
the same images, alternating image by image so that both see the same machine load, and reports its figures too.
--calibrate writes thresholds into the manifest: at each level, the highest of the populations' thresholds at the
promised rate (so the worst population decides), with the per-population figures. --held-out also calibrates on
half of the identities of each population and reports the FMR reached on the other half. --peer runs
face_recognition 1.3.0 (dlib) side by side on single-folder runs (`pip install dlib-bin face-recognition-models
'setuptools<81'` and `pip install --no-deps face_recognition`; an evaluation tool, not a project requirement).
"""

from __future__ import annotations

import argparse
import hashlib
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
LEVELS = {"standard": 1e-2, "high": 1e-3, "very_high": 1e-4}
MIN_EXPECTED_IMPOSTORS = 10  # below this many expected false matches at the promise, the FMR is not measured
POPULATIONS_FILE = REPO / "tools" / "populations.json"


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
    """Similarity per pair, in float64; -inf where either photo failed to enrol.

    float64 because that is how the engine decides: Template.similarity promotes the float32 dot product to a Python
    float and compares it with the float64 threshold. Compared in float32 (NumPy 2 keeps an array's dtype against a
    Python float), a score just below a six-decimal threshold can round onto it and count as a match the engine
    would not make."""
    s = np.asarray(sim(emb[pairs[:, 0]], emb[pairs[:, 1]]), dtype=np.float64)
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


def list_populations(shared: Path, spec_path: Path = POPULATIONS_FILE) -> list[tuple[str, str, Path]]:
    """(population, identity, path) for every image of the populations in populations.json, sorted per set.

    "folders" sets are <root>/<person>/<image> (optionally only, or all but, a named list of people); "sequences"
    sets are <root>/<person>/<sequence>/<frame> and contribute ONE frame per sequence (the middle one).
    """
    spec = json.loads(spec_path.read_text())
    out: list[tuple[str, str, Path]] = []
    for population, pop in spec["populations"].items():
        for s in pop["sets"]:
            root = shared / s["root"]
            prefix = s.get("prefix", "")
            people = sorted(p for p in root.iterdir() if p.is_dir())
            if "include" in s:
                people = [p for p in people if p.name in set(spec[s["include"]])]
            if "exclude" in s:
                people = [p for p in people if p.name not in set(spec[s["exclude"]])]
            for person in people:
                if s["kind"] == "folders":
                    files = [f for f in sorted(person.iterdir()) if f.suffix.lower() in IMAGE_EXT]
                else:
                    files = []
                    for seq in sorted(q for q in person.iterdir() if q.is_dir()):
                        frames = [f for f in sorted(seq.iterdir()) if f.suffix.lower() in IMAGE_EXT]
                        if frames:
                            files.append(frames[len(frames) // 2])
                out += [(population, prefix + person.name, f) for f in files]
    return out


def all_pairs(labels: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Every same-label pair and every different-label pair (i < j), as index arrays."""
    lab = np.asarray(labels)
    i, j = np.triu_indices(len(lab), k=1)
    same = lab[i] == lab[j]
    return np.stack([i[same], j[same]], 1), np.stack([i[~same], j[~same]], 1)


def run_engines(engines: list[FaceEngine], paths: list[Path]) -> list[tuple[np.ndarray, np.ndarray, list[float], dict]]:
    """Per engine: embeddings, success mask, per-image ms (excluding decode) and failure counts by error code.

    With several engines each image is run by all of them in turn (the order alternating), so a noisy machine
    loads them alike and their ms are comparable.
    """
    out = []
    for engine in engines:
        out.append((np.zeros((len(paths), engine.dimension), dtype=np.float32), np.zeros(len(paths), bool), [], {}))
    for k, path in enumerate(tqdm(paths, desc="engine", unit="img", file=sys.stderr, disable=None)):
        order = list(range(len(engines)))
        if k % 2:
            order.reverse()
        for e in order:
            engine, (emb, ok, times, fails) = engines[e], out[e]
            image = engine.decode(path.read_bytes())
            t0 = time.perf_counter()
            try:
                tpl = engine.enrol_image(image)
                emb[k], ok[k] = tpl.vector, True
            except errors.FaceEngineError as exc:
                fails[exc.code] = fails.get(exc.code, 0) + 1
            times.append((time.perf_counter() - t0) * 1000)
    return out


def run_engine(engine: FaceEngine, items: list[tuple[str, Path]]) -> tuple[np.ndarray, np.ndarray, list[float], dict]:
    """Embeddings, success mask, per-image ms (excluding decode) and failure counts by error code."""
    return run_engines([engine], [p for _, p in items])[0]


def run_peer(items: list[tuple[str, Path]]) -> tuple[np.ndarray, np.ndarray, list[float], dict]:
    """face_recognition 1.3.0: HOG detector (1 upsample), 5-point alignment, dlib ResNet (1 jitter)."""
    import face_recognition

    emb = np.zeros((len(items), 128), dtype=np.float32)
    ok = np.zeros(len(items), dtype=bool)
    times: list[float] = []
    fails: dict[str, int] = {}
    for k, (_, path) in enumerate(tqdm(items, desc="peer", unit="img", file=sys.stderr, disable=None)):
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


def level_figures(gen: np.ndarray, imp: np.ndarray, thresholds: dict[str, float]) -> dict[str, dict[str, Any]]:
    """Per security level: FMR and TAR at the shipped threshold, the pair counts behind them, and whether the FMR
    can be measured (at least MIN_EXPECTED_IMPOSTORS impostor scores expected at the promised rate)."""
    out: dict[str, dict[str, Any]] = {}
    gen, imp = np.asarray(gen, dtype=np.float64), np.asarray(imp, dtype=np.float64)  # as the engine compares
    for level, far in LEVELS.items():
        t = thresholds[f"{far:.0e}"]
        false_matches = int(np.sum(imp >= t))
        measurable = len(imp) * far >= MIN_EXPECTED_IMPOSTORS
        out[level] = {
            "promised_fmr": far,
            "threshold": round(float(t), 6),
            "fmr": float(false_matches / max(len(imp), 1)),
            "false_matches": false_matches,
            "impostor_pairs": len(imp),
            "tar": float(np.mean(gen >= t)) if len(gen) else float("nan"),
            "genuine_pairs": len(gen),
            "fmr_measurable": bool(measurable),
            "within_2x_promise": bool(false_matches / max(len(imp), 1) <= 2 * far) if measurable else None,
        }
    return out


def worst_case_thresholds(scores: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
    """At each level, the highest of the populations' thresholds at the promised rate: the worst population decides."""
    per = [thresholds_at(g, i) for g, i in scores.values()]
    return {k: max(t[k] for t in per) for k in per[0]}


def held_out_populations(
    pops: dict[str, dict[str, Any]], score: str = "scores", seed: int = 0
) -> dict[str, dict[str, dict[str, float]]]:
    """Worst-case thresholds fitted on the pairs of half of each population's identities, applied to the other half
    (both ways, averaged): the FMR and TAR each population reaches on people the thresholds never saw."""
    rng = np.random.default_rng(seed)
    halves = {}
    for name, p in pops.items():
        people = sorted(set(p["labels"]))
        half = set(rng.permutation(people)[: len(people) // 2].tolist())
        halves[name] = np.array([label in half for label in p["labels"]])
    out: dict[str, dict[str, dict[str, float]]] = {name: {} for name in pops}
    for level, far in LEVELS.items():
        key = f"{far:.0e}"
        acc: dict[str, list[tuple[float, float]]] = {name: [] for name in pops}
        for a in (True, False):
            fit, test = {}, {}
            for name, p in pops.items():
                (gp, ip), (g, i), side = p["pairs"], p[score], halves[name]
                gin = (side[gp[:, 0]] == a) & (side[gp[:, 1]] == a)
                iin = (side[ip[:, 0]] == a) & (side[ip[:, 1]] == a)
                gout = (side[gp[:, 0]] != a) & (side[gp[:, 1]] != a)
                iout = (side[ip[:, 0]] != a) & (side[ip[:, 1]] != a)
                fit[name] = (g[gin], i[iin])
                test[name] = (g[gout], i[iout])
            t = worst_case_thresholds(fit)[key]
            for name, (g, i) in test.items():
                acc[name].append((float(np.mean(i >= t)), float(np.mean(g >= t))))
        for name, vals in acc.items():
            out[name][level] = {
                "fmr": float(np.mean([v[0] for v in vals])),
                "tar": float(np.mean([v[1] for v in vals])),
            }
    return out


def tar_interval(
    gen: np.ndarray, pairs: np.ndarray, labels: list[str], threshold: float, reps: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """90 % interval of the TAR at a fixed threshold, by resampling PEOPLE with replacement (a person's genuine
    pairs are not independent of each other, so resampling pairs would understate the spread)."""
    lab = np.asarray(labels)
    people, inv = np.unique(lab[pairs[:, 0]], return_inverse=True)
    if len(people) == 0:
        return float("nan"), float("nan")
    n_pairs = np.bincount(inv, minlength=len(people)).astype(np.float64)
    n_pass = np.bincount(inv, weights=(gen >= threshold).astype(np.float64), minlength=len(people))
    counts = np.random.default_rng(seed).multinomial(len(people), np.full(len(people), 1 / len(people)), size=reps)
    tar = (counts @ n_pass) / np.maximum(counts @ n_pairs, 1)
    lo, hi = np.quantile(tar, [0.05, 0.95])
    return float(lo), float(hi)


def held_out_repeated(pops: dict[str, dict[str, Any]], splits: int, seed: int = 0) -> dict[str, dict[str, Any]]:
    """held_out_populations over `splits` random halvings of the people (seeds seed .. seed+splits-1), averaged:
    one halving of 37 East Asian people is a noisy estimate on its own. Also the worst split's FMR per level."""
    runs = [held_out_populations(pops, seed=seed + k) for k in range(splits)]
    out: dict[str, dict[str, Any]] = {}
    for name in pops:
        out[name] = {}
        for level in LEVELS:
            fmr = [r[name][level]["fmr"] for r in runs]
            tar = [r[name][level]["tar"] for r in runs]
            out[name][level] = {"fmr": float(np.mean(fmr)), "tar": float(np.mean(tar)), "fmr_max": float(max(fmr))}
        out[name]["splits"] = splits
    return out


def det_curve(gen: np.ndarray, imp: np.ndarray, points: int = 2001) -> tuple[np.ndarray, np.ndarray]:
    """(FMR, FNMR) over thresholds spanning the scores."""
    finite = np.concatenate([gen[np.isfinite(gen)], imp[np.isfinite(imp)]])
    grid = np.unique(np.quantile(finite, np.linspace(0, 1, points)))
    imp_sorted, gen_sorted = np.sort(imp), np.sort(gen)
    fmr = 1.0 - np.searchsorted(imp_sorted, grid, side="left") / max(len(imp), 1)
    fnmr = np.searchsorted(gen_sorted, grid, side="left") / max(len(gen), 1)
    return fmr, fnmr


def det_plot(curves: list[dict[str, Any]], path: Path, thresholds: dict[str, float] | None = None) -> None:
    """DET plot (false non-match vs false match rate, log axes), one curve per population (and per engine); the
    shipped operating points are marked on each curve."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 5))
    for c in curves:
        gen, imp = c["scores"]
        fmr, fnmr = det_curve(gen, imp)
        (line,) = ax.plot(np.maximum(fmr, 1e-6), np.maximum(fnmr, 1e-4), ls=c.get("ls", "-"), label=c["label"])
        if thresholds and c.get("ls", "-") == "-":
            for t in thresholds.values():
                ax.plot(
                    max(float(np.mean(imp >= t)), 1e-6),
                    max(float(np.mean(gen < t)), 1e-4),
                    "o",
                    color=line.get_color(),
                    ms=4,
                )
    for far in LEVELS.values():
        ax.axvline(far, color="grey", lw=0.5, ls=":")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("false match rate")
    ax.set_ylabel("false non-match rate")
    ax.set_title("DET per population (dots: shipped thresholds)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _fmt_level(f: dict[str, Any]) -> str:
    fmr = f"{f['fmr']:.1e} ({f['false_matches']}/{f['impostor_pairs']})"
    if not f["fmr_measurable"]:
        fmr += " cannot be measured"
    elif not f["within_2x_promise"]:
        fmr += " ABOVE 2x PROMISE"
    ci = f" 90% {f['tar_ci90'][0]:.3f}-{f['tar_ci90'][1]:.3f}" if "tar_ci90" in f else ""
    return f"{fmr:<44}{f['tar']:>7.3f} ({f['genuine_pairs']}){ci}"


def shared_faces_line(
    thresholds: dict[str, float],
    emb: np.ndarray,
    ok: np.ndarray,
    items: list[tuple[str, str, Path]],
    shared: Path,
    seed: int,
) -> str:
    """TAR and FMR at each level's threshold on all of ../shared/faces (both populations' people in it, every pair):
    the figure the issue's "TAR at high >= 0.93 on ../shared/faces" target is about."""
    root = (shared / "faces").resolve()
    idx = np.array([k for k, (_, _, path) in enumerate(items) if path.resolve().is_relative_to(root)])
    if len(idx) == 0:
        return "shared/faces: not among the populations"
    labels = [items[k][1] for k in idx]
    pairs = all_pairs(labels)
    gen, imp = (pair_scores(emb[idx], ok[idx], pr, cosine) for pr in pairs)
    parts = []
    for level, far in LEVELS.items():
        t = thresholds[f"{far:.0e}"]
        lo, hi = tar_interval(gen, pairs[0], labels, t, seed=seed)
        parts.append(f"{level} TAR {np.mean(gen >= t):.4f} (90% {lo:.3f}-{hi:.3f}) FMR {np.mean(imp >= t):.1e}")
    return f"all of shared/faces ({len(idx)} photos, {len(gen)} genuine / {len(imp)} impostor pairs): " + "; ".join(
        parts
    )


def print_report(name: str, engine_label: str, pops: dict[str, dict[str, Any]], key: str = "levels") -> None:
    print(f"\n{engine_label}: {name}")
    fmr_head = "FMR at the threshold (false / impostor pairs)"
    head = f"{'population':<14}{'level':<11}{'promise':>8}  {fmr_head:<44}{'TAR (genuine pairs)':>20}"
    print(head)
    print("-" * len(head))
    for pop, p in pops.items():
        for level, f in p[key].items():
            print(f"{pop:<14}{level:<11}{f['promised_fmr']:>8.0e}  {_fmt_level(f)}")


def _cache_key(engine: FaceEngine, paths: list[Path]) -> str:
    h = hashlib.sha256()
    h.update(json.dumps(engine.manifest["pipeline"], sort_keys=True).encode())
    h.update(json.dumps({k: v["sha256"] for k, v in engine.manifest["models"].items()}, sort_keys=True).encode())
    h.update("\n".join(str(p) for p in paths).encode())
    return h.hexdigest()[:16]


def embed_all(
    engines: list[FaceEngine], paths: list[Path], cache: Path | None
) -> list[tuple[np.ndarray, np.ndarray, list[float], dict]]:
    """run_engines, with results kept in a cache file per (pipeline, models, image list) if asked."""
    files = [cache.with_name(f"{cache.stem}-{_cache_key(e, paths)}.npz") for e in engines] if cache else []
    if files and all(f.exists() for f in files):
        out = []
        for f in files:
            d = np.load(f, allow_pickle=False)
            out.append((d["emb"], d["ok"], d["times"].tolist(), json.loads(str(d["fails"]))))
        print(
            f"embeddings from the cache {', '.join(str(f) for f in files)} (ms are those of that run)", file=sys.stderr
        )
        return out
    out = run_engines(engines, paths)
    for f, (emb, ok, times, fails) in zip(files, out, strict=False):
        np.savez(f, emb=emb, ok=ok, times=np.asarray(times), fails=json.dumps(fails))
    return out


def population_scores(
    engine: FaceEngine, emb: np.ndarray, ok: np.ndarray, items: list[tuple[str, str, Path]], impostors: int, seed: int
) -> dict[str, dict[str, Any]]:
    """Per population: labels, pairs, template scores and (when it differs) 1:N search-key scores."""
    keys = search_keys(engine, emb, ok) if engine.search_dimension != engine.dimension else None
    out: dict[str, dict[str, Any]] = {}
    for pop in dict.fromkeys(p for p, _, _ in items):
        idx = np.array([k for k, (p, _, _) in enumerate(items) if p == pop])
        labels = [items[k][1] for k in idx]
        n = len(labels)
        if n * (n - 1) // 2 > impostors + len(labels) * 10:
            pairs = make_pairs(labels, impostors, seed)
        else:
            pairs = all_pairs(labels)
        e, o = emb[idx], ok[idx]
        scores = (pair_scores(e, o, pairs[0], cosine), pair_scores(e, o, pairs[1], cosine))
        out[pop] = {
            "labels": labels,
            "images": n,
            "identities": len(set(labels)),
            "pairs": pairs,
            "scores": scores,
            "fte": float(1.0 - o.mean()),
        }
        if keys is not None:
            k = keys[idx]
            out[pop]["search_scores"] = (pair_scores(k, o, pairs[0], cosine), pair_scores(k, o, pairs[1], cosine))
    return out


def summary_json(engine: FaceEngine, name: str, p: dict[str, Any], ms: float, ms_mean: float) -> dict[str, Any]:
    """The JSON object printed for one population."""
    gen, imp = p["scores"]
    return {
        "population": name,
        "model_id": engine.model_id,
        "model_version": engine.model_version,
        "images": p["images"],
        "identities": p["identities"],
        "genuine_pairs": len(gen),
        "impostor_pairs": len(imp),
        "fte": round(p["fte"], 4),
        "eer": round(metrics(gen, imp)["eer"], 4),
        "ms_per_image": round(ms, 2),
        "ms_per_image_mean": round(ms_mean, 2),
        "levels": {
            lv: {k: (round(v, 6) if isinstance(v, float) else v) for k, v in f.items()} for lv, f in p["levels"].items()
        },
        **({"held_out": p["held_out"]} if "held_out" in p else {}),
    }


def main() -> None:
    """Command line."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dataset", type=Path, nargs="?", help="one folder <person>/<image> (one population)")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=DIR", help="a population from a folder")
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared", help="../shared (default populations)")
    ap.add_argument("--models-dir", type=Path, default=MODELS_DIR)
    ap.add_argument("--baseline-models-dir", type=Path, help="also run this models directory (e.g. 1.2.0's)")
    ap.add_argument("--impostors", type=int, default=400_000, help="sample a population with more impostor pairs")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--peer", action="store_true", help="also run face_recognition 1.3.0 (dlib)")
    ap.add_argument("--plot", type=Path, help="write a DET plot (PNG), one curve per population")
    ap.add_argument("--calibrate", action="store_true", help="write worst-population thresholds into the manifest")
    ap.add_argument("--override", default="", help="JSON merged into the manifest's pipeline (variants)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--cache", type=Path, help="keep embeddings in FILE-<key>.npz (e.g. /tmp/facegate-eval)")
    ap.add_argument(
        "--held-out", action="store_true", help="also fit thresholds on half the identities, test on the rest"
    )
    ap.add_argument("--splits", type=int, default=20, help="random halvings averaged by --held-out (default 20)")
    ap.add_argument(
        "--check",
        action="store_true",
        help="exit 1 unless every population keeps every measurable promise within 2x (an independent evaluation)",
    )
    args = ap.parse_args()

    if args.dataset or args.set:
        sets = [(args.dataset.name, args.dataset)] if args.dataset else []
        sets += [(s.split("=", 1)[0], Path(s.split("=", 1)[1])) for s in args.set]
        items = [(name, person, path) for name, root in sets for person, path in list_dataset(root)]
    else:
        items = list_populations(args.shared)
    paths = [p for _, _, p in items]
    overrides = json.loads(args.override) if args.override else None
    engine = FaceEngine(args.models_dir, threads=args.threads, overrides=overrides)
    engines = [engine]
    if args.baseline_models_dir:
        engines.append(FaceEngine(args.baseline_models_dir, threads=args.threads))
    for e in engines:
        e.enrol_image(e.decode(paths[0].read_bytes()))  # warm-up
    runs = embed_all(engines, paths, args.cache)

    reports = []
    for e, (emb, ok, times, fails) in zip(engines, runs, strict=True):
        pops = population_scores(e, emb, ok, items, args.impostors, args.seed)
        shipped = {f"{far:.0e}": e.threshold(far) for far in LEVELS.values()} if e.manifest.get("calibration") else {}
        for p in pops.values():
            if shipped:
                p["levels"] = level_figures(*p["scores"], shipped)
        label = f"{e.model_id}@{e.model_version}"
        reports.append((e, label, pops, times, fails))

    engine_pops = reports[0][2]
    new_th = worst_case_thresholds({k: p["scores"] for k, p in engine_pops.items()}) if args.calibrate else None
    if new_th:
        for p in engine_pops.values():
            p["levels"] = level_figures(*p["scores"], new_th)
    if args.held_out:
        for name, h in held_out_repeated(engine_pops, args.splits, seed=args.seed).items():
            engine_pops[name]["held_out"] = {
                lv: (f if lv == "splits" else {k: round(v, 6) for k, v in f.items()}) for lv, f in h.items()
            }
    for p in engine_pops.values():
        for f in p.get("levels", {}).values():
            lo, hi = tar_interval(p["scores"][0], p["pairs"][0], p["labels"], f["threshold"], seed=args.seed)
            f["tar_ci90"] = [round(lo, 4), round(hi, 4)]

    n_pairs = ", ".join(
        f"{n}: {p['images']} images, {p['identities']} people, {len(p['scores'][0])} genuine / "
        f"{len(p['scores'][1])} impostor pairs"
        for n, p in engine_pops.items()
    )
    print(f"\n{n_pairs}")
    for e, label, pops, times, fails in reports:
        if all("levels" in p for p in pops.values()):
            print_report("thresholds " + ("calibrated now" if e is engine and new_th else "shipped"), label, pops)
        print(f"{label}: ms/image median {np.median(times):.1f} (mean {np.mean(times):.1f}), failures {fails}")
    for name, p in engine_pops.items():
        if "held_out" in p:
            levels = {lv: v for lv, v in p["held_out"].items() if lv != "splits"}
            print(
                f"held-out ({name}, mean of {p['held_out']['splits']} halvings; worst halving's FMR in brackets): "
                + ", ".join(
                    f"{lv} FMR {v['fmr']:.1e} [{v['fmr_max']:.1e}] TAR {v['tar']:.3f}" for lv, v in levels.items()
                )
            )
    if not (args.dataset or args.set):
        th = new_th or {f"{far:.0e}": engine.threshold(far) for far in LEVELS.values()}
        print(shared_faces_line(th, runs[0][0], runs[0][1], items, args.shared, args.seed))

    if args.peer:
        peer = run_peer([(i, p) for _, i, p in items])
        for name, p in engine_pops.items():
            idx = np.array([k for k, it in enumerate(items) if it[0] == name])
            res = summarise("face_recognition 1.3.0", peer[0][idx], peer[1][idx], [], {}, p["pairs"], neg_euclidean)
            print(f"peer ({name}): TAR@1e-3 {res['tar_at_far_1e-3']:.3f}, EER {res['eer']:.3f}")

    if args.plot:
        curves = [{"label": f"{n} ({reports[0][1]})", "scores": p["scores"]} for n, p in engine_pops.items()]
        for _e, label, pops, *_ in reports[1:]:
            curves += [{"label": f"{n} ({label})", "scores": p["scores"], "ls": "--"} for n, p in pops.items()]
        det_plot(curves, args.plot, new_th or {f"{f:.0e}": engine.threshold(f) for f in LEVELS.values()})
        print(f"DET plot written to {args.plot}")

    if args.calibrate and new_th:
        search_th = None
        if all("search_scores" in p for p in engine_pops.values()):
            search_th = worst_case_thresholds({k: p["search_scores"] for k, p in engine_pops.items()})
        write_section(
            args.models_dir,
            "calibration",
            calibration_section(engine, engine_pops, new_th, search_th, reports[0][3], args.seed),
        )
        print(f"thresholds written to the manifest: {new_th}")

    broken = promise_failures(engine_pops)
    if args.check:
        print("promise check: " + ("; ".join(broken) if broken else "every measurable FMR within 2x of its promise"))

    # Last lines: one JSON object per population (the engine under test; its per-population median ms).
    times = np.asarray(reports[0][3])
    for name, p in engine_pops.items():
        if "levels" in p:
            t = times[[k for k, it in enumerate(items) if it[0] == name]]
            print(json.dumps(summary_json(engine, name, p, float(np.median(t)), float(np.mean(t)))))
    if args.check and broken:
        sys.exit(1)


def promise_failures(pops: dict[str, dict[str, Any]]) -> list[str]:
    """Each (population, level) whose FMR can be measured and is above twice the promise, as text."""
    return [
        f"{name} {level}: FMR {f['fmr']:.1e} ({f['false_matches']}/{f['impostor_pairs']}) > 2x {f['promised_fmr']:.0e}"
        for name, p in pops.items()
        for level, f in p.get("levels", {}).items()
        if f["fmr_measurable"] and not f["within_2x_promise"]
    ]


def calibration_section(
    engine: FaceEngine,
    pops: dict[str, dict[str, Any]],
    thresholds: dict[str, float],
    search_thresholds: dict[str, float] | None,
    times: list[float],
    seed: int,
) -> dict[str, Any]:
    """The manifest's calibration: thresholds, how they were set, and what each population gets at them."""
    section: dict[str, Any] = {
        "thresholds": thresholds,
        "model_id": engine.model_id,
        "model_version": engine.model_version,
        "levels": {level: f"{far:.0e}" for level, far in LEVELS.items()},
        "method": "at each level, the highest of the populations' thresholds at the promised false-match rate "
        "(every same-person and different-person pair inside each population; the worst population decides); "
        "similarity (cosine) >= threshold accepts",
        "min_expected_impostors": MIN_EXPECTED_IMPOSTORS,
        "populations": {},
    }
    for name, p in pops.items():
        gen, imp = p["scores"]
        entry: dict[str, Any] = {
            "images": p["images"],
            "identities": p["identities"],
            "genuine_pairs": len(gen),
            "impostor_pairs": len(imp),
            "fte": round(p["fte"], 4),
            "eer": round(metrics(gen, imp)["eer"], 4),
            "levels": {
                lv: {k: (round(v, 6) if isinstance(v, float) else v) for k, v in f.items() if k != "promised_fmr"}
                for lv, f in p["levels"].items()
            },
        }
        if "held_out" in p:
            entry["held_out"] = p["held_out"]
        if search_thresholds and "search_scores" in p:
            entry["search_levels"] = {
                lv: {k: (round(v, 6) if isinstance(v, float) else v) for k, v in f.items() if k != "promised_fmr"}
                for lv, f in level_figures(*p["search_scores"], search_thresholds).items()
            }
        section["populations"][name] = entry
    section["seed"] = seed
    section["ms_per_image_median"] = round(float(np.median(times)), 2)
    # The 1:N search key follows the shipped embedders: when it is the whole template, so are its thresholds.
    section["search_thresholds"] = search_thresholds or dict(thresholds)
    return section


if __name__ == "__main__":
    main()

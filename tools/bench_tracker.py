"""Benchmark the face tracker against a full analyse(), per frame, decode included, on one core; the last line
printed is JSON.

Usage: python tools/bench_tracker.py [../shared] [--baseline main] [--clip-frames 30] [--pad-sequences 30]
                                     [--pad-frames 8] [--repeat 1] [--cpu N]

Frames: the first --clip-frames frames of every clip in ../shared/clips (JPEG, 288x360 to 640x480) and the first
--pad-frames frames of --pad-sequences NUAA sequences in ../shared/pad (webcam 640x480, bona fide and prints,
taken alternately). Every variant runs on the same frames, interleaved: each sequence goes through all variants
in turn before the next one starts, and the order of the variants rotates from one sequence to the next.

* (a) `analyse`: engine.analyse(jpeg) on every frame (decode, BlazeFace, FaceMesh, quality);
* (b) `track`: engine.track(jpegs), timed frame by frame (the tracker's encoded-frame road: a JPEG is decoded at
  1/2, 1/4 or 1/8 size when the previous face is that large); `track_full` is the same with the reduced decode
  turned off (`pipeline.tracking.reduced_decode: false`), which gives the same landmarks as tracking decoded arrays;
* (c) `track_id5` / `track_id10`: tracking plus an identity check every k frames (that frame decoded in full,
  tracked, embedded with embed_mesh and compared with the first embedding: what proctoring does);
* `main:*`: the same variants run by the face engine of another git revision (--baseline, default main; its
  Python files are taken with `git show` into a temporary directory and run in a worker subprocess with the
  current models), alternating with ours frame sequence by frame sequence. `--baseline ''` skips it.

Per variant: ms/frame p50 / p95 / mean in wall time and in CPU time of the process (CPU time is what one core
spends; wall time also counts time the scheduler gave to other jobs on a shared machine), the ratio (b)/(a) of
the mean costs, frames/s per core for (c). Accuracy of the reduced decode: landmark, pose, eye and mouth
differences between `track` and `track_full` on the same frames, track ids and the liveness actions detected on
each clip; and that `track_full` agrees with the baseline's tracker.

Threads: onnxruntime runs with one intra-op thread (FaceEngine's default); OMP and OpenBLAS are pinned to one
thread before numpy loads. `--cpu N` also pins both processes to CPU N.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import gc
import json
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

REPO = Path(__file__).resolve().parents[1]
MODELS = REPO / "layers" / "model" / "faceengine" / "models"
IDENTITY_EVERY = (5, 10)


# -- the variants (run the same way by us and by the baseline worker) ------------------------------------------------


def _timed(frames: list[bytes], step: Callable[[int, bytes], Any]) -> tuple[list[float], list[float], list[Any]]:
    """Per frame: wall ms, CPU ms and what step returned."""
    wall, cpu, out = [], [], []
    gc.collect()
    for i, data in enumerate(frames):
        w0, c0 = time.perf_counter(), time.process_time()
        out.append(step(i, data))
        cpu.append((time.process_time() - c0) * 1000)
        wall.append((time.perf_counter() - w0) * 1000)
    return wall, cpu, out


def _summary(frame: Any) -> dict[str, Any] | None:
    """What the accuracy comparison needs from a tracked frame (JSON-able)."""
    if frame.mesh is None:
        return {"track_id": None, "detected": bool(frame.detected)}
    p = frame.pose
    return {
        "track_id": frame.track_id,
        "detected": bool(frame.detected),
        "scale": int(getattr(frame, "decoded_scale", 1)),
        "five": [list(map(float, xy)) for xy in frame.landmarks],
        "size": float(max(frame.box[2:])),
        "pose": [p.yaw, p.pitch, p.roll, p.eye_right, p.eye_left, p.mouth],
        "quality": [frame.quality.measures["sharpness"], frame.quality.measures["brightness"], frame.quality.ok],
    }


def run_variant(engines: dict[str, Any], variant: str, frames: list[bytes], keep: bool) -> dict[str, Any]:
    """Time one variant over one sequence of JPEG frames; keep=True also returns frame summaries (and meshes)."""
    import faceengine

    engine = engines["default"]
    if variant == "analyse":
        wall, cpu, _ = _timed(frames, lambda i, b: engine.analyse(b))
        return {"wall": wall, "cpu": cpu}
    if variant in ("track", "track_full"):
        eng = engines["full"] if variant == "track_full" else engine
        it: Iterator[Any] = eng.track(frames)
        wall, cpu, out = _timed(frames, lambda i, b: next(it))
        result: dict[str, Any] = {"wall": wall, "cpu": cpu, "detected": [bool(f.detected) for f in out]}
        if keep:
            result["frames"] = [_summary(f) for f in out]
            result["meshes"] = [None if f.mesh is None else f.mesh.points for f in out]
        return result
    if variant.startswith("track_id"):
        k = int(variant.removeprefix("track_id"))
        tracker = engine.tracker()
        encoded = getattr(tracker, "update_encoded", None)
        reference: list[Any] = []

        def step(i: int, data: bytes) -> Any:
            if i % k and encoded is not None:
                return encoded(data)
            if i % k:
                return tracker.update(engine.decode(data))
            image = engine.decode(data)  # identity frames: decoded in full, tracked, embedded, compared
            frame = tracker.update(image)
            if frame.mesh is not None:
                vec = engine.embed_mesh(image, frame.mesh)
                if not reference:
                    reference.append(vec)
                frame = (frame, float(np.dot(reference[0], vec)))
            return frame

        wall, cpu, _ = _timed(frames, step)
        return {"wall": wall, "cpu": cpu}
    raise ValueError(f"unknown variant {variant} ({faceengine.__name__})")


def load_engines() -> dict[str, Any]:
    from faceengine import FaceEngine

    engine = FaceEngine.load(MODELS, threads=1)
    # The reduced decode turned off (the setting is unknown to, and ignored by, an engine without it).
    full = FaceEngine(MODELS, threads=1, overrides={"tracking": {"reduced_decode": False}})
    return {"default": engine, "full": full}


def worker(package_dir: str) -> None:
    """Baseline worker: JSON lines in ({variant, files, keep}), JSON lines out (the timings, frame summaries)."""
    sys.path.insert(0, package_dir)
    engines = load_engines()
    import faceengine

    assert Path(faceengine.__file__).is_relative_to(package_dir), faceengine.__file__
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        frames = [Path(f).read_bytes() for f in req["files"]]
        res = run_variant(engines, req["variant"], frames, req["keep"])
        res.pop("meshes", None)
        print(json.dumps(res), flush=True)


class Baseline:
    """The face engine of another revision, in a subprocess (its own faceengine package, our models)."""

    def __init__(self, rev: str, cpu: int | None) -> None:
        self.rev = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", rev], check=True, capture_output=True, text=True
        ).stdout.strip()
        self.tmp = tempfile.TemporaryDirectory(prefix="bench-tracker-")
        pkg = Path(self.tmp.name) / "faceengine"
        pkg.mkdir()
        names = subprocess.run(
            ["git", "-C", str(REPO), "ls-tree", "--name-only", rev, "layers/model/faceengine/"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()
        for name in names:
            if name.endswith(".py"):
                text = subprocess.run(
                    ["git", "-C", str(REPO), "show", f"{rev}:{name}"], check=True, capture_output=True
                ).stdout
                (pkg / Path(name).name).write_bytes(text)
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
        args = [sys.executable, __file__, "--worker", self.tmp.name] + ([] if cpu is None else ["--cpu", str(cpu)])
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        assert self.proc.stdout is not None
        json.loads(self.proc.stdout.readline())

    def run(self, variant: str, files: list[Path], keep: bool) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps({"variant": variant, "files": [str(f) for f in files], "keep": keep}) + "\n")
        self.proc.stdin.flush()
        return dict(json.loads(self.proc.stdout.readline()))

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=60)
        self.tmp.cleanup()


# -- data, machine, statistics ---------------------------------------------------------------------------------------


def sequences(shared: Path, clip_frames: int, pad_sequences: int, pad_frames: int) -> list[tuple[str, list[Path]]]:
    out = []
    for clip in sorted(p for p in (shared / "clips").iterdir() if p.is_dir()):
        files = sorted(clip.glob("*.jpg"))[:clip_frames]
        if files:
            out.append((f"clips/{clip.name}", files))
    kinds = [sorted(p for p in (shared / "pad" / k).glob("*/*") if p.is_dir()) for k in ("bona_fide", "attack")]
    taken = 0
    for pair in zip(*kinds, strict=False):
        for seq in pair:
            if taken < pad_sequences:
                files = sorted(seq.glob("*.jpg"))[:pad_frames]
                if files:
                    out.append((f"pad/{seq.parent.parent.name}/{seq.name}", files))
                    taken += 1
    return out


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {"python": platform.python_version(), "cores_visible": os.cpu_count()}
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        fields = dict(line.split(":", 1) for line in lscpu.splitlines() if ":" in line)
        info["cpu"] = fields.get("Model name", "").strip()
        info["cores"] = fields.get("CPU(s)", "").strip()
        info["threads_per_core"] = fields.get("Thread(s) per core", "").strip()
        info["flags_avx512f"] = "avx512f" in fields.get("Flags", "")
    except (OSError, subprocess.CalledProcessError):
        info["cpu"] = platform.processor()
    import onnxruntime
    import PIL

    info["onnxruntime"] = onnxruntime.__version__
    info["pillow"] = PIL.__version__
    info["numpy"] = np.__version__
    info["threads"] = {"onnxruntime_intra_op": 1, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")}
    return info


def stats(values: list[float]) -> dict[str, float]:
    a = np.asarray(values, dtype=np.float64)
    return {
        "p50": round(float(np.percentile(a, 50)), 2),
        "p95": round(float(np.percentile(a, 95)), 2),
        "mean": round(float(a.mean()), 2),
        "n": len(values),
    }


def _ids(frames: list[dict[str, Any] | None]) -> list[int | None]:
    """Track ids renumbered in order of appearance (two runs number their tracks independently)."""
    seen: dict[int, int] = {}
    return [None if f is None or f["track_id"] is None else seen.setdefault(f["track_id"], len(seen)) for f in frames]


def accuracy(pairs: list[tuple[str, dict[str, Any], dict[str, Any]]]) -> dict[str, Any]:
    """Reduced-decode tracking against full-size tracking on the same frames."""
    lm_rel, five_px, angles, eyes, mouth, sharp, bright = [], [], [], [], [], [], []
    quality_flips = reduced = both = 0
    id_mismatch, detect_mismatch = [], []
    for name, red, full in pairs:
        if _ids(red["frames"]) != _ids(full["frames"]):
            id_mismatch.append(name)
        if [f["detected"] for f in red["frames"]] != [f["detected"] for f in full["frames"]]:
            detect_mismatch.append(name)
        for fr, ff, mr, mf in zip(red["frames"], full["frames"], red["meshes"], full["meshes"], strict=True):
            if mr is None or mf is None:
                continue
            both += 1
            reduced += fr["scale"] > 1
            lm_rel.append(float(np.abs(mr[:, :2] - mf[:, :2]).max()) / ff["size"])
            five_px.append(float(np.abs(np.asarray(fr["five"]) - np.asarray(ff["five"])).max()))
            d = np.abs(np.asarray(fr["pose"]) - np.asarray(ff["pose"]))
            angles.append(float(d[:3].max()))
            eyes.append(float(d[3:5].max()))
            mouth.append(float(d[5]))
            sharp.append(abs(fr["quality"][0] - ff["quality"][0]) / max(ff["quality"][0], 1e-9))
            bright.append(abs(fr["quality"][1] - ff["quality"][1]))
            quality_flips += fr["quality"][2] != ff["quality"][2]

    def q(v: list[float], nd: int = 4) -> dict[str, float]:
        a = np.asarray(v) if v else np.zeros(1)
        return {k: round(float(np.percentile(a, p)), nd) for k, p in (("p50", 50), ("p99", 99), ("max", 100))}

    return {
        "frames_with_face_in_both": both,
        "frames_decoded_reduced": reduced,
        "landmarks_max_abs_diff_over_face_size": q(lm_rel),
        "five_points_max_abs_diff_px": q(five_px, 2),
        "pose_angles_max_abs_diff_deg": q(angles, 2),
        "eye_openness_abs_diff": q(eyes),
        "mouth_openness_abs_diff": q(mouth),
        "sharpness_rel_diff": q(sharp, 3),
        "brightness_abs_diff": q(bright, 2),
        "quality_ok_flips": quality_flips,
        "sequences_with_other_track_ids": id_mismatch,
        "sequences_with_other_detections": detect_mismatch,
    }


def actions_agree(engine: Any, shared: Path, clip_frames: int) -> dict[str, Any]:
    """The liveness actions detected on each clip (first clip_frames frames) with and without the reduced decode."""
    from faceengine.liveness import detect_actions

    full = load_engines()["full"]
    out = {}
    for clip in sorted(p for p in (shared / "clips").iterdir() if p.is_dir()):
        frames = [f.read_bytes() for f in sorted(clip.glob("*.jpg"))[:clip_frames]]
        a = detect_actions(list(engine.track(frames)), engine.liveness_params())
        b = detect_actions(list(full.track(frames)), engine.liveness_params())
        out[clip.name] = {"same": a == b, "reduced": a} if a != b else {"same": True}
    return out


GROUPS = ("clips", "pad_bona_fide", "pad_attack")


def _group(name: str) -> str:
    return "clips" if name.startswith("clips/") else "pad_" + name.split("/")[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("shared", nargs="?", default=str(REPO.parent / "shared"))
    ap.add_argument("--baseline", default="main", help="git revision to compare with ('' to skip)")
    ap.add_argument("--clip-frames", type=int, default=30)
    ap.add_argument("--pad-sequences", type=int, default=12)
    ap.add_argument("--pad-frames", type=int, default=16)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--actions-frames", type=int, default=120, help="frames per clip for the liveness-action check")
    ap.add_argument("--cpu", type=int, default=None, help="pin to this CPU")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    if args.worker:
        worker(args.worker)
        return

    shared = Path(args.shared)
    seqs = sequences(shared, args.clip_frames, args.pad_sequences, args.pad_frames)
    load_before = os.getloadavg()
    engines = load_engines()
    ours = ["analyse", "track", "track_full", *(f"track_id{k}" for k in IDENTITY_EVERY)]
    baseline = Baseline(args.baseline, args.cpu) if args.baseline else None
    theirs = [f"main:{v}" for v in ("analyse", "track", *(f"track_id{k}" for k in IDENTITY_EVERY))] if baseline else []
    variants = ours + theirs
    # Per variant, per frame (the same frames in the same order for every variant): wall and CPU ms.
    wall: dict[str, list[float]] = {v: [] for v in variants}
    cpu: dict[str, list[float]] = {v: [] for v in variants}
    group: list[str] = []  # per frame: clips, pad_bona_fide or pad_attack
    followed: list[bool] = []  # per frame: our tracker followed the face (no detector run) on it
    kept: dict[str, dict[str, dict[str, Any]]] = {}
    # Warm-up (first inference allocations) on a few frames, not timed.
    for v in variants:
        if v.startswith("main:") and baseline is not None:
            baseline.run(v.removeprefix("main:"), seqs[0][1][:3], False)
        else:
            run_variant(engines, v, [f.read_bytes() for f in seqs[0][1][:3]], False)
    turn = 0
    for rep in range(args.repeat):
        for name, files in seqs:
            frames = [f.read_bytes() for f in files]
            order = variants[turn % len(variants) :] + variants[: turn % len(variants)]
            turn += 1
            results = {}
            for v in order:
                keep = rep == 0 and v in ("track", "track_full", "main:track")
                if v.startswith("main:") and baseline is not None:
                    results[v] = baseline.run(v.removeprefix("main:"), files, keep)
                else:
                    results[v] = run_variant(engines, v, frames, keep)
                if keep:
                    kept.setdefault(name, {})[v] = results[v]
            for v in variants:
                wall[v] += results[v]["wall"]
                cpu[v] += results[v]["cpu"]
            group += [_group(name)] * len(files)
            followed += [not d for d in results["track"]["detected"]]
            print(
                f"{name}: " + ", ".join(f"{v} {np.mean(results[v]['cpu']):.1f}" for v in variants) + " (CPU ms/frame)",
                file=sys.stderr,
            )
    if baseline is not None:
        baseline.close()
    load_after = os.getloadavg()

    def select(g: str | None, only_followed: bool) -> npt.NDArray[np.bool_]:
        return np.array(
            [(g is None or x == g) and (f or not only_followed) for x, f in zip(group, followed, strict=True)]
        )

    def report(mask: npt.NDArray[np.bool_]) -> dict[str, Any]:
        out: dict[str, Any] = {"frames": int(mask.sum())}
        if not mask.any():
            return out
        out["ms_per_frame"] = {
            v: {"cpu": stats(list(np.asarray(cpu[v])[mask])), "wall": stats(list(np.asarray(wall[v])[mask]))}
            for v in variants
        }
        out["ratio_of_means"] = {
            clock: {
                f"{t}/{a}": round(float(np.asarray(times[t])[mask].mean() / np.asarray(times[a])[mask].mean()), 3)
                for t, a in (("track", "analyse"), ("track_full", "analyse"), ("main:track", "main:analyse"))
                if t in variants
            }
            for clock, times in (("cpu", cpu), ("wall", wall))
        }
        out["frames_per_second"] = {
            v: {
                "per_core_cpu": round(1000 / float(np.asarray(cpu[v])[mask].mean()), 1),
                "wall": round(1000 / float(np.asarray(wall[v])[mask].mean()), 1),
            }
            for v in variants
            if "track_id" in v
        }
        return out

    by_group = {
        "all": report(select(None, False)),
        **{g: report(select(g, False)) for g in GROUPS},
        "followed_frames": {g: report(select(g, True)) for g in GROUPS},
    }
    acc = accuracy([(n, k["track"], k["track_full"]) for n, k in kept.items()])
    same_as_baseline = None
    if baseline is not None:
        diffs = [
            float(np.abs(np.asarray(a["five"]) - np.asarray(b["five"])).max())
            for k in kept.values()
            for a, b in zip(k["track_full"]["frames"], k["main:track"]["frames"], strict=True)
            if a.get("five") and b.get("five")
        ]
        same_as_baseline = {
            "five_points_max_abs_diff_px": round(max(diffs), 6) if diffs else None,
            "same_track_ids": all(
                _ids(k["track_full"]["frames"]) == _ids(k["main:track"]["frames"]) for k in kept.values()
            ),
        }
    summary = {
        "machine": {
            **machine(),
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in load_after],
            "pinned_cpu": args.cpu,
        },
        "baseline": baseline.rev if baseline else None,
        "frames": {"sequences": len(seqs), "per_repeat": len(group) // args.repeat, "repeat": args.repeat},
        "results": by_group,
        "reduced_vs_full_decode": acc,
        "track_full_vs_baseline": same_as_baseline,
        "liveness_actions_same": actions_agree(engines["default"], shared, args.actions_frames),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()

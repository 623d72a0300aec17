"""Benchmark proctoring: frames per second per core through FaceEngine.proctor, end to end from 640x480 JPEG, against
plain tracking of the same frames in the same run; and the cost per exam-hour. The last line printed is JSON.

Usage: python tools/bench_proctor.py [../shared] [--frames 200] [--chunk 25] [--rounds 2] [--cpu N]

* Frames: session_a's first --frames frames (5 fps, 360x288), scaled and cropped to 640x480 and re-encoded as
  JPEG in memory (tools/compose_sessions.fit), taken as a continuous 25 fps stream in chunks of --chunk frames.
* Variants, interleaved chunk by chunk with their order rotating (the machine is shared and noisy):
  - `track`: engine.track over the chunk (the tracker alone, decode included): the baseline;
  - `proctor_k1`: FaceEngine.proctor with the shipped thresholds (comparable faces, identity and passive PAD on
    every frame: the capture policy sends one frame every 2 s);
  - `proctor_k5`, `proctor_k10`: the same with faces, identity and PAD every k frames (manifest overrides), the
    settings for a continuous stream.
  Per variant: CPU ms per frame (time.process_time of this one-thread process: what one core spends) and wall
  ms, frames/s per core = 1000 / CPU ms per frame.
* Cost per exam-hour at one frame every 2 s, in batches of 5 frames every 10 s (360 requests an hour): the
  batches are session_a frames 2 s apart (every 10th frame), proctored with the shipped thresholds, the state
  through JSON; Lambda GB-s = requests x billed seconds per batch x MemorySize of MatchingFunction in
  template.yaml / 1024, at list prices (x86: $0.0000166667 per GB-s, $0.20 per million requests), beside
  per-image cloud APIs for the same 1800 frames (Rekognition DetectFaces + CompareFaces, $0.001 each, first tier).
  Only the engine's time is measured (no request parsing, DynamoDB or signing).

Threads: onnxruntime with one intra-op thread; OMP and OpenBLAS pinned to one thread before numpy loads.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import json
import math
import re
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "layers" / "model"))
sys.path.insert(0, str(REPO / "tools"))

from compose_sessions import fit, jpeg  # noqa: E402
from evaluate_proctoring import machine  # noqa: E402
from PIL import Image  # noqa: E402

from faceengine import FaceEngine  # noqa: E402
from faceengine.engine import MODELS_DIR  # noqa: E402

LAMBDA_GB_S = 0.0000166667
LAMBDA_REQUEST = 0.20 / 1_000_000
REKOGNITION_PER_IMAGE = 0.001  # DetectFaces and CompareFaces each, first pricing tier
FRAMES_PER_HOUR = 1800  # one frame every 2 s
BATCH = 5  # frames per request: one request every 10 s
EVERY = (5, 10)


def memory_mb(function: str = "MatchingFunction") -> int:
    """MemorySize of a function in template.yaml (read as text: the template has CloudFormation tags)."""
    text = (REPO / "template.yaml").read_text()
    start = text.index(f"  {function}:")
    match = re.search(r"MemorySize:\s*(\d+)", text[start:])
    if match is None:
        raise ValueError(f"no MemorySize for {function}")
    return int(match.group(1))


def exam_hour_cost(ms_per_batch: float, memory: int) -> dict[str, float]:
    """Lambda dollars per exam-hour (one frame every 2 s in batches of BATCH, each billed ms rounded up) at
    `memory` MB, and Rekognition's for the same frames (one DetectFaces and one CompareFaces per frame)."""
    requests = FRAMES_PER_HOUR // BATCH
    gb_s = requests * math.ceil(ms_per_batch) / 1000.0 * memory / 1024.0
    return {
        "requests_per_hour": requests,
        "gb_s_per_hour": gb_s,
        "lambda_usd": gb_s * LAMBDA_GB_S + requests * LAMBDA_REQUEST,
        "rekognition_usd": FRAMES_PER_HOUR * 2 * REKOGNITION_PER_IMAGE,
    }


def frames_640(shared: Path, count: int, step: int = 1) -> list[bytes]:
    files = sorted((shared / "clips" / "session_a").glob("*.jpg"))[: count * step : step]
    return [jpeg(fit(Image.open(p))) for p in files]


def timed(run: Callable[[], Any]) -> tuple[float, float]:
    """(CPU ms, wall ms) of one call."""
    c0, w0 = time.process_time(), time.perf_counter()
    run()
    return (time.process_time() - c0) * 1000.0, (time.perf_counter() - w0) * 1000.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("shared", nargs="?", type=Path, default=REPO.parent / "shared")
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--chunk", type=int, default=25)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--cost-batches", type=int, default=20)
    ap.add_argument("--cpu", type=int, help="pin this process to one CPU")
    args = ap.parse_args()
    if args.cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})
    info = machine()
    print(f"machine: {info['cpu']}, {info['cores']} cores, Python {info['python']}; one thread")
    engines = {"track": FaceEngine(MODELS_DIR, threads=1), "proctor_k1": FaceEngine(MODELS_DIR, threads=1)}
    for k in EVERY:
        keys = ("faces_every_frames", "identity_every_frames", "pad_every_frames")
        engines[f"proctor_k{k}"] = FaceEngine(MODELS_DIR, threads=1, overrides={"proctoring": dict.fromkeys(keys, k)})
    base = engines["track"]
    stream = frames_640(args.shared, args.frames)
    template = base.enrol(stream[0])
    chunks = [stream[i : i + args.chunk] for i in range(0, len(stream), args.chunk)]
    names = list(engines)
    cpu: dict[str, float] = dict.fromkeys(names, 0.0)
    wall: dict[str, float] = dict.fromkeys(names, 0.0)
    frames: dict[str, int] = dict.fromkeys(names, 0)
    checks: dict[str, int] = dict.fromkeys(names, 0)

    def one(name: str, chunk: list[bytes], t0: float) -> Callable[[], Any]:
        engine = engines[name]
        times = [t0 + 40.0 * i for i in range(len(chunk))]  # 25 fps
        if name == "track":
            return lambda: list(engine.track(chunk, times))

        def run() -> None:
            update = engine.proctor(None, chunk, times, template)
            checks[name] += int(update.stats["identity_checks"])

        return run

    for name in names:  # warm up every engine once
        one(name, chunks[0][:3], 0.0)()
    checks.update(dict.fromkeys(names, 0))
    for r in range(args.rounds):
        for c, chunk in enumerate(chunks):
            order = names[(c + r) % len(names) :] + names[: (c + r) % len(names)]
            for name in order:
                c_ms, w_ms = timed(one(name, chunk, 0.0))
                cpu[name] += c_ms
                wall[name] += w_ms
                frames[name] += len(chunk)
    variants: dict[str, Any] = {}
    print(f"\n{len(stream)} frames 640x480 JPEG (session_a) x {args.rounds} rounds, chunks of {args.chunk}, one core")
    print(f"  {'variant':12s} {'CPU ms/frame':>12s} {'wall ms/frame':>13s} {'frames/s/core':>13s} {'vs track':>8s}")
    for name in names:
        c, w = cpu[name] / frames[name], wall[name] / frames[name]
        variants[name] = {
            "cpu_ms_per_frame": round(c, 2),
            "wall_ms_per_frame": round(w, 2),
            "fps_per_core": round(1000.0 / c, 1),
            "cost_vs_track": round(c / (cpu["track"] / frames["track"]), 2),
            "identity_checks_per_frame": round(checks[name] / frames[name], 3) if name != "track" else None,
        }
        v = variants[name]
        print(
            f"  {name:12s} {v['cpu_ms_per_frame']:12.2f} {v['wall_ms_per_frame']:13.2f} {v['fps_per_core']:13.1f} "
            f"{v['cost_vs_track']:7.2f}x"
        )
    # Cost per exam-hour: batches of 5 frames 2 s apart, shipped thresholds, state through JSON.
    sparse = frames_640(args.shared, args.cost_batches * BATCH, step=10)
    engine = engines["proctor_k1"]
    state: dict[str, Any] | None = None
    batch_cpu, batch_wall = [], []
    for b in range(0, len(sparse), BATCH):
        times = [2000.0 * (b + i) for i in range(BATCH)]
        holder: dict[str, Any] = {}

        def run(b: int = b, times: list[float] = times, holder: dict[str, Any] = holder, state: Any = state) -> None:
            holder["u"] = engine.proctor(state, sparse[b : b + BATCH], times, template)

        c_ms, w_ms = timed(run)
        state = json.loads(json.dumps(holder["u"].state))
        batch_cpu.append(c_ms)
        batch_wall.append(w_ms)
    mem = memory_mb()
    per_batch_ms = statistics.mean(batch_wall)
    dollars = exam_hour_cost(per_batch_ms, mem)
    requests = int(dollars["requests_per_hour"])
    cost = {
        "frames_per_hour": FRAMES_PER_HOUR,
        "batch_frames": BATCH,
        "requests_per_hour": requests,
        "ms_per_batch_wall_mean": round(per_batch_ms, 1),
        "ms_per_batch_wall_p95": round(sorted(batch_wall)[max(0, math.ceil(0.95 * len(batch_wall)) - 1)], 1),
        "ms_per_batch_cpu_mean": round(statistics.mean(batch_cpu), 1),
        "memory_mb": mem,
        "gb_s_per_hour": round(dollars["gb_s_per_hour"], 2),
        "lambda_usd_per_exam_hour": round(dollars["lambda_usd"], 5),
        "lambda_usd_per_exam_hour_cpu_time": round(exam_hour_cost(statistics.mean(batch_cpu), mem)["lambda_usd"], 5),
        "rekognition_usd_per_exam_hour": round(dollars["rekognition_usd"], 2),
    }
    print(f"\ncost per exam-hour at one frame every 2 s ({requests} requests of {BATCH} frames, engine time only):")
    print(
        f"  {cost['ms_per_batch_wall_mean']} ms per batch (p95 {cost['ms_per_batch_wall_p95']}, CPU "
        f"{cost['ms_per_batch_cpu_mean']}) x {requests} at {mem} MB (MatchingFunction) = {cost['gb_s_per_hour']} GB-s"
    )
    print(
        f"  Lambda: ${cost['lambda_usd_per_exam_hour']:.4f} (GB-s at $0.0000166667 + requests at $0.20/M; with CPU "
        f"time instead of wall time ${cost['lambda_usd_per_exam_hour_cpu_time']:.4f})"
    )
    print(
        f"  Rekognition DetectFaces + CompareFaces per frame: {FRAMES_PER_HOUR} x $0.002 = "
        f"${cost['rekognition_usd_per_exam_hour']:.2f}"
    )
    print(json.dumps({"machine": info, "frames": len(stream), "variants": variants, "cost": cost}))


if __name__ == "__main__":
    main()

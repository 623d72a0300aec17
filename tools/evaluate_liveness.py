"""Evaluate liveness on the development data (ISO/IEC 30107-3 metrics); the last line printed is JSON.

Usage: python tools/evaluate_liveness.py [../shared] [--quick] [--speed-frames 60]

* BPCER (bona fide presentations classified as attacks, i.e. not `live`) on genuine challenge bursts composed
  from the clips' real frames (tests/fixtures/clips.json says which frames show which action): 30-frame bursts of
  one person doing the requested actions in order, re-timed at 10 fps. turns_a gives two-action challenges
  (turn_left then turn_right, and the reverse by reordering its segments); blink_a, mouth_a, webcam_a and talk_a
  show one action each, so they give one-action challenges.
* The passive PAD score's BPCER on pad/bona_fide (each sequence as a burst: median of its frames' scores, as the
  judgement takes it; and per frame).
* APCER (attacks classified as `live`) per attack species:
  - printed photo: each pad/attack sequence as a burst, with each two-action challenge;
  - screen replay: 30-frame windows of replay_a (which performs the turns);
  - still photo: a photo from ../shared/faces repeated as a burst, and the same with small random shifts,
    rotations and scalings per frame (a hand-held print);
  - the enrolment photo itself sent as the burst (jittered), with that photo given as the enrolment photo.
* Time per liveness judgement + verification of a 30-frame burst (JPEG bytes in, decision and match out; one
  thread), p50 / p95; tracking ms/frame against a full analyse() per frame on the same frames in the same run.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import random
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "layers" / "model"))

from faceengine import FaceEngine  # noqa: E402

BURST = 30
FPS_MS = 100.0
PAIRS = [("turn_left", "turn_right"), ("turn_right", "turn_left"), ("turn_left", "blink"), ("blink", "open_mouth")]


def _jpeg(image: np.ndarray[Any, Any], quality: int = 90) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def _times(n: int) -> list[float]:
    return [k * FPS_MS for k in range(n)]


def _spread(indices: list[int], n: int) -> list[int]:
    if len(indices) <= n:
        return indices
    return [indices[round(k)] for k in np.linspace(0, len(indices) - 1, n)]


def _clip_files(shared: Path, clip: str) -> list[Path]:
    return sorted((shared / "clips" / clip).glob("*.jpg"))


def _range(r: list[int]) -> list[int]:
    return list(range(r[0], r[1] + 1))


def genuine_bursts(shared: Path, notes: dict[str, Any]) -> list[tuple[str, list[bytes], list[str]]]:
    """(name, frames, actions) of composed genuine challenges."""
    out = []
    turns = notes["turns_a"]
    files = _clip_files(shared, "turns_a")
    left = _range(turns["turn_left"][0])
    right = _range([turns["turn_right"][0][0], turns["turn_right"][-1][1]])
    rest = _range(turns["rest"])
    for shift in range(0, 8, 2):
        # rest -> turn_left -> back -> turn_right, in the clip's own order (frames 0..110)
        seq = list(range(shift, 111 - (6 - shift)))
        out.append(
            (f"turns_a L>R +{shift}", [files[i].read_bytes() for i in _spread(seq, BURST)], ["turn_left", "turn_right"])
        )
        # rest -> turn_right segment -> turn_left segment (segments reordered)
        seq = rest[shift:] + list(range(right[0] - 3, right[-1] + 6)) + list(range(left[0] - 3, left[-1] + 4))
        out.append(
            (f"turns_a R>L +{shift}", [files[i].read_bytes() for i in _spread(seq, BURST)], ["turn_right", "turn_left"])
        )
    for clip, action in (
        ("blink_a", "blink"),
        ("mouth_a", "open_mouth"),
        ("webcam_a", "open_mouth"),
        ("talk_a", "blink"),
    ):
        files = _clip_files(shared, clip)
        note = notes[clip]
        for k, r in enumerate(note[action]):
            start = max(0, r[0] - 15 + (k % 3))
            seq = list(range(start, min(len(files), start + BURST)))
            out.append((f"{clip} {action}@{r[0]}", [files[i].read_bytes() for i in seq], [action]))
    return out


def jitter(image: np.ndarray[Any, Any], rng: random.Random) -> np.ndarray[Any, Any]:
    """A small random shift, rotation and scaling (a photo held in the hand)."""
    pil = Image.fromarray(image)
    w, h = pil.size
    angle = rng.uniform(-4, 4)
    scale = rng.uniform(0.96, 1.04)
    dx, dy = rng.uniform(-0.03, 0.03) * w, rng.uniform(-0.03, 0.03) * h
    out = pil.rotate(angle, resample=Image.Resampling.BILINEAR, translate=(dx, dy), fillcolor=(40, 40, 40))
    out = out.resize((max(1, int(w * scale)), max(1, int(h * scale))), Image.Resampling.BILINEAR).resize((w, h))
    return np.asarray(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("shared", nargs="?", type=Path, default=REPO.parent / "shared")
    ap.add_argument("--quick", action="store_true", help="fewer still photos and pad sequences")
    ap.add_argument("--stills", type=int, default=40)
    args = ap.parse_args()
    shared: Path = args.shared
    engine = FaceEngine.load(threads=1)
    notes = json.loads((REPO / "tests" / "fixtures" / "clips.json").read_text())["clips"]
    {"params": engine.liveness_params()}
    timings: list[float] = []

    def run(frames: list[bytes], actions: list[str], enrol: bytes | None = None, timed: bool = False) -> Any:
        t0 = time.perf_counter()
        res = engine.liveness(frames, _times(len(frames)), actions, enrolment_image=enrol)
        if res.template is not None and res.decision.live:
            engine.similarity(res.template, res.template)  # the verification itself is one dot product
        if timed and len(frames) == BURST:
            timings.append(time.perf_counter() - t0)
        return res

    # -- bona fide --------------------------------------------------------------------------------------------
    genuine = []
    for name, frames, actions in genuine_bursts(shared, notes):
        res = run(frames, actions, timed=True)
        genuine.append(
            {
                "burst": name,
                "actions": actions,
                "decision": res.decision.decision,
                "reasons": res.decision.reasons,
                **res.decision.details,
            }
        )
        print(
            f"genuine {name:28s} {res.decision.decision:6s} {res.decision.reasons} "
            f"{ {k: res.decision.details.get(k) for k in ('pad_score', 'depth_residual', 'identity_similarity')} }",
            flush=True,
        )
    bpcer = sum(g["decision"] != "live" for g in genuine) / len(genuine)

    pad_seq, pad_frames = [], []
    for seq in sorted((shared / "pad" / "bona_fide").glob("*/*")):
        files = sorted(seq.glob("*.jpg"))
        res = run([f.read_bytes() for f in files[:BURST]], ["turn_left", "turn_right"])
        pad_seq.append(res.decision.details.get("pad_score", 0.0))
        for f in files[:: 4 if args.quick else 2]:
            image = engine.decode(f.read_bytes())
            faces = [x for x in engine._analyse_image(image) if x.usable]
            if faces:
                pad_frames.append(engine.pad_score(image, faces[0].box))
    thr = float(engine.liveness_params()["pad_threshold"])

    # -- attacks ----------------------------------------------------------------------------------------------
    species: dict[str, list[dict[str, Any]]] = {
        "print": [],
        "replay": [],
        "still": [],
        "still_jittered": [],
        "enrolment_photo": [],
    }
    attack_pad = []
    for seq in sorted((shared / "pad" / "attack").glob("*/*")):
        files = sorted(seq.glob("*.jpg"))[:BURST]
        for actions in PAIRS[: 1 if args.quick else 2]:
            res = run([f.read_bytes() for f in files], list(actions))
            attack_pad.append(res.decision.details.get("pad_score", 0.0))
            species["print"].append(
                {"burst": seq.name, "decision": res.decision.decision, "reasons": res.decision.reasons}
            )
    replay = _clip_files(shared, "replay_a")
    for start in range(0, len(replay) - BURST, 15):
        frames = [f.read_bytes() for f in replay[start : start + BURST]]
        for actions in PAIRS[:2]:
            res = run(frames, list(actions))
            species["replay"].append(
                {"burst": f"replay_a@{start}", "decision": res.decision.decision, "reasons": res.decision.reasons}
            )
    people = sorted(p for p in (shared / "faces").iterdir() if p.is_dir() and any(p.glob("*.jpg")))
    rng = random.Random(0)
    chosen = rng.sample(people, min(args.stills // (4 if args.quick else 1), len(people)))
    for k, person in enumerate(chosen):
        photo = sorted(person.glob("*.jpg"))[0]
        data = photo.read_bytes()
        image = engine.decode(data)
        actions = list(PAIRS[k % len(PAIRS)])
        res = run([data] * BURST, actions)
        species["still"].append(
            {"burst": person.name, "decision": res.decision.decision, "reasons": res.decision.reasons}
        )
        frames = [_jpeg(jitter(image, rng)) for _ in range(BURST)]
        res = run(frames, actions)
        species["still_jittered"].append(
            {"burst": person.name, "decision": res.decision.decision, "reasons": res.decision.reasons}
        )
        res = run([data, *frames[1:]], actions, enrol=data)
        species["enrolment_photo"].append(
            {"burst": person.name, "decision": res.decision.decision, "reasons": res.decision.reasons}
        )

    apcer = {
        s: (sum(r["decision"] == "live" for r in rows) / len(rows) if rows else None) for s, rows in species.items()
    }
    reasons = {s: dict(Counter(x for r in rows for x in r["reasons"])) for s, rows in species.items()}
    decisions = {s: dict(Counter(r["decision"] for r in rows)) for s, rows in species.items()}

    # -- speed: tracking vs analyse, one thread, same frames, same run ---------------------------------------------
    frames = [f.read_bytes() for f in _clip_files(shared, "turns_a")[:60]]
    t0 = time.perf_counter()
    for f in frames:
        engine.analyse(f)
    analyse_ms = (time.perf_counter() - t0) * 1000 / len(frames)
    t0 = time.perf_counter()
    for _ in engine.track(frames):
        pass
    track_ms = (time.perf_counter() - t0) * 1000 / len(frames)

    cpu = (
        next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            platform.processor(),
        )
        if Path("/proc/cpuinfo").exists()
        else platform.processor()
    )
    summary = {
        "machine": {"cpu": cpu, "cores_visible": os.cpu_count(), "threads": 1, "python": platform.python_version()},
        "bpcer_challenges": round(bpcer, 4),
        "genuine_bursts": len(genuine),
        "genuine_failures": [g for g in genuine if g["decision"] != "live"],
        "pad_threshold": thr,
        "pad_bpcer_sequences": round(sum(s < thr for s in pad_seq) / max(len(pad_seq), 1), 4),
        "pad_bpcer_frames": round(sum(s < thr for s in pad_frames) / max(len(pad_frames), 1), 4),
        "pad_bona_fide_sequences": len(pad_seq),
        "pad_bona_fide_frames": len(pad_frames),
        "pad_bona_fide_sequence_scores_min": round(min(pad_seq), 4) if pad_seq else None,
        "pad_print_sequence_scores_max": round(max(attack_pad), 4) if attack_pad else None,
        "apcer": apcer,
        "attack_bursts": {s: len(r) for s, r in species.items()},
        "attack_decisions": decisions,
        "attack_reasons": reasons,
        "ms_liveness_verification_30_frames": {
            "p50": round(float(np.percentile(timings, 50)) * 1000, 1),
            "p95": round(float(np.percentile(timings, 95)) * 1000, 1),
            "n": len(timings),
        },
        "ms_per_frame": {
            "analyse": round(analyse_ms, 2),
            "track": round(track_ms, 2),
            "ratio": round(track_ms / analyse_ms, 3),
        },
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()

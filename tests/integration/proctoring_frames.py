"""Composed proctoring sessions from ../shared (never copied into the repo): the man of clips/turns_a is the
candidate (his challenge bursts start the session, his selfie video is the exam), with each incident type planted
over known frames. Timestamps are synthetic: one frame every 2 s, the capture policy's default.

Planted (as the engine's own tests on real footage plant them, tests/unit/faceengine/test_proctor_engine.py):
  looking_away         turns_a frames with the head turned beyond 30 degrees
  face_absent          scenes without people (faces_misc/noface_*)
  camera_obstructed_or_dark  near-black frames (a covered lens)
  different_person     another man (clips/talk_a)
  multiple_faces       another man's selfie frame joined beside the candidate's
  presentation_attack  the candidate's own video replayed on a laptop screen (clips/replay_a)
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

STEP_MS = 2000.0
CLEAN = [0, 3, 6, 9, 12, 15, 18, 58, 60, 62, 64, 66, 68, 70]  # turns_a frames facing the camera


@dataclass(frozen=True)
class Planted:
    type: str
    first: int  # index of the first planted frame in the session
    last: int

    @property
    def start_ts(self) -> float:
        return self.first * STEP_MS

    @property
    def end_ts(self) -> float:
        return self.last * STEP_MS


def clip(shared_dir: Path, name: str, indices: list[int]) -> list[bytes]:
    files = sorted((shared_dir / "clips" / name).glob("*.jpg"))
    return [files[i].read_bytes() for i in indices]


def capture(image: bytes | np.ndarray | Image.Image) -> bytes:
    """As the capture policy asks: a JPEG that fits 640x480."""
    if isinstance(image, bytes):
        picture = Image.open(io.BytesIO(image)).convert("RGB")
    elif isinstance(image, np.ndarray):
        picture = Image.fromarray(image)
    else:
        picture = image
    picture.thumbnail((640, 480))
    out = io.BytesIO()
    picture.save(out, format="JPEG", quality=88)
    return out.getvalue()


def beside(candidate_jpeg: bytes, other_jpeg: bytes) -> bytes:
    """Two people side by side: another man's selfie frame (talk_a) joined to the left of the candidate's. Both are
    real frames with their own backgrounds, so the passive PAD still sees real faces; the faces are comparable in
    size and neither is centred, so the other one is no bystander: multiple_faces, and the candidate is among the
    faces, so no different_person. (Pasting a head onto a widened frame, as the engine's test does with the small
    faces of session_a, makes the large face of a portrait selfie fail PAD: the padding fills its context.)"""
    me = np.asarray(Image.open(io.BytesIO(candidate_jpeg)).convert("RGB"))
    them = np.asarray(Image.open(io.BytesIO(other_jpeg)).convert("RGB").resize((me.shape[1], me.shape[0])))
    out = io.BytesIO()
    Image.fromarray(np.concatenate([them, me], axis=1)).save(out, format="JPEG", quality=90)
    return out.getvalue()


def clean_session(shared_dir: Path, frames: int = 20) -> list[bytes]:
    """The candidate alone, facing the exam."""
    picked = (CLEAN * (frames // len(CLEAN) + 1))[:frames]
    return clip(shared_dir, "turns_a", picked)


def composed_session(shared_dir: Path) -> tuple[list[bytes], list[Planted]]:
    """About 40 frames: each incident type planted once, two clean frames between plants."""
    frames: list[bytes] = []
    planted: list[Planted] = []
    separators = iter([CLEAN[k : k + 2] for k in range(0, len(CLEAN) - 1, 2)])

    def plant(kind: str, shown: list[bytes]) -> None:
        frames.extend(clip(shared_dir, "turns_a", next(separators)))
        planted.append(Planted(kind, len(frames), len(frames) + len(shown) - 1))
        frames.extend(shown)

    misc = shared_dir / "faces_misc"
    noface = [capture(p.read_bytes()) for p in sorted(misc.glob("noface_*.jpg"))]
    black = capture(np.full((480, 640, 3), 6, dtype=np.uint8))
    me = clip(shared_dir, "turns_a", [0, 3, 6, 9])
    other = clip(shared_dir, "talk_a", [0, 10, 20, 30])
    plant("looking_away", clip(shared_dir, "turns_a", [30, 34, 38, 42, 46]))
    plant("face_absent", [noface[k % len(noface)] for k in range(5)])
    plant("camera_obstructed_or_dark", [black] * 5)
    plant("different_person", clip(shared_dir, "talk_a", [0, 10, 20, 30, 40]))
    plant("multiple_faces", [beside(a, b) for a, b in zip(me, other, strict=True)])
    plant("presentation_attack", clip(shared_dir, "replay_a", list(range(0, 50, 5))))
    frames.extend(clip(shared_dir, "turns_a", next(separators)))
    return frames, planted


def timestamps(n: int, first: int = 0) -> list[float]:
    return [(first + k) * STEP_MS for k in range(n)]

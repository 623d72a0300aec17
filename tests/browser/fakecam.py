"""A fake camera for Chromium (`--use-file-for-fake-video-capture=FILE.y4m`) built from the real frames of
../shared/clips, ordered to perform a challenge, at test time into a temporary directory (never into the repo).

Timing. Chromium opens the file when the page starts the camera (getUserMedia) and plays it from its first
frame at the file's frame rate, looping. The demo page then shows "get ready" for READY_MS before it captures
`frames` frames at `fps` (the session's capture advice: 30 at 10 fps, 3 s). So the file holds:
  lead-in  the clip's rest frames (played forwards and backwards: consecutive frames always differ, which the
           engine's duplicate-frame check needs), long enough that the actions begin ACTION_AFTER_S after the
           ready phase;
  actions  the clip's frames performing the actions, in the challenge's order, played at FILE_FPS (the 111
           frames of turns_a's left-then-right take 2.5 s at 45 fps), so that a 3 s capture window holds them
           all even if the camera came up a few hundred ms later or earlier than expected;
  tail     rest frames again, for a late window and for the loop.
Frames are captured at 10 fps from a 45 fps file, so no two captured frames are the same file frame.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
FILE_FPS = 45
READY_S = 3.0  # sdk/js/src/challenge.ts READY_MS
ACTION_AFTER_S = 0.75  # the actions start this long after the ready phase ends (file time)
TAIL_S = 4.0


def _notes() -> dict:
    return json.loads((REPO / "tests" / "fixtures" / "clips.json").read_text())["clips"]


def _files(shared: Path, clip: str) -> list[Path]:
    return sorted((shared / "clips" / clip).glob("*.jpg"))


def _pingpong(indices: list[int], count: int) -> list[int]:
    cycle = indices + indices[-2:0:-1]
    return [cycle[k % len(cycle)] for k in range(count)]


def _action_frames(note: dict, actions: tuple[str, ...], last: int) -> list[int]:
    """The clip's frames that perform `actions` in order (turns only: the clips with both turns)."""
    left = note["turn_left"][0]
    right = [note["turn_right"][0][0], note["turn_right"][-1][1]]
    if actions == ("turn_left", "turn_right"):
        return list(range(left[0] - 3, min(last, right[1] + 7)))
    if actions == ("turn_right", "turn_left"):
        return list(range(right[0] - 3, right[1] + 6)) + list(range(left[0] - 3, left[1] + 4))
    raise ValueError(f"no clip performs {actions}")


PERFORMABLE = {("turn_left", "turn_right"), ("turn_right", "turn_left")}


def challenge_frames(shared: Path, clip: str, actions: tuple[str, ...]) -> list[Path]:
    """The file frames, in play order, for `clip` (turns_a, or its screen replay replay_a) performing `actions`."""
    note = _notes()[clip]
    files = _files(shared, clip)
    rest = list(range(*note["rest"])) if "rest" in note else list(range(0, note["turn_left"][0][0] - 8))
    acts = _action_frames(note, actions, len(files))
    lead = int((READY_S + ACTION_AFTER_S) * FILE_FPS)
    tail = int(TAIL_S * FILE_FPS)
    order = _pingpong(rest, lead) + acts + _pingpong(list(reversed(rest)), tail)
    return [files[i] for i in order]


def rest_frames(shared: Path, clip: str, seconds: float = 2.0) -> list[Path]:
    note = _notes()[clip]
    files = _files(shared, clip)
    return [files[i] for i in _pingpong(list(range(*note["rest"])), int(seconds * FILE_FPS))]


def write_y4m(path: Path, frames: list[Path], fps: int = FILE_FPS) -> None:
    """YUV 4:2:0 (what Chromium's file capture reads), written next to `path` and renamed onto it, so that a
    camera starting meanwhile never reads half a file."""
    first = Image.open(frames[0])
    width, height = first.size[0] // 2 * 2, first.size[1] // 2 * 2
    tmp = path.with_suffix(".part")
    with open(tmp, "wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg XYSCSS=420JPEG\n".encode())
        for frame in frames:
            image = Image.open(frame).convert("RGB")
            if image.size != (width, height):
                image = image.resize((width, height))
            y, cb, cr = image.convert("YCbCr").split()
            half = (width // 2, height // 2)
            out.write(b"FRAME\n")
            out.write(np.asarray(y, dtype=np.uint8).tobytes())
            out.write(np.asarray(cb.resize(half, Image.Resampling.BILINEAR), dtype=np.uint8).tobytes())
            out.write(np.asarray(cr.resize(half, Image.Resampling.BILINEAR), dtype=np.uint8).tobytes())
    os.replace(tmp, path)

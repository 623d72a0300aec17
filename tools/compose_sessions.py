"""Compose proctoring sessions with planted incidents from the real clips in ../shared (deterministic, seeded).

Usage: python tools/compose_sessions.py [../shared] [--seed 0] [--sessions 4] [--step 10] [--out DIR]

The base is clips/session_a: 200 s at 5 fps of one man (the candidate) talking to the camera. Into it, at seeded
times and for seeded durations (10-16 s, at least 12 s of the candidate between two), each composed session
splices one segment of every kind below; each segment plants the incidents listed (its ground truth):

  other_person  another person's clip (talk_a, webcam_a, blink_a, mouth_a), looped    different_person
  beside        the candidate with another person's head pasted beside him, at the    multiple_faces
                candidate's face size (someone leaning into the camera)
  group_photo   a faces_misc/multi_* photo of two to four people (the candidate is      multiple_faces,
                not in it)                                                              different_person
  no_face       faces_misc/noface_* scenes (no person), changing every 4 s              face_absent
  dark          a covered lens (near-black noise), a blank grey frame, or the           camera_obstructed_or_dark
                candidate's own frames darkened to 12 %
  looking_away  turns_a frames with the head turned (yaw > 30 degrees), played slowed   looking_away
                over the segment
  replay        clips/replay_a (a video replayed on a laptop screen)                   presentation_attack,
                                                                                        different_person
The replay and the turned head are of another man (turns_a's): the data holds no replay and no sustained turn of
the candidate. Identity is only checked on frames facing the camera, so the turned segment plants looking_away
only; the replay and the group photos plant different_person too, because it is true.

Every frame is scaled and cropped to 640x480 (`fit`; photos: `fit_whole`) and re-encoded as JPEG (quality 85),
as one webcam would deliver it.
`--step` samples the 5 fps timeline: 10 = one frame every 2 s (the capture policy), 1 = every frame. A planted
incident's start_ts / end_ts are the first and last sampled frames of its segment. Frames are made in memory;
`--out` writes only the ground truth (JSON), never a frame.

`clean_sessions()` gives the clean references: session_a alone and each other bona fide clip alone (its own
person enrolled from its first usable frame).
"""

from __future__ import annotations

import argparse
import io
import json
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "layers" / "model"))

if TYPE_CHECKING:
    from faceengine import FaceEngine

WIDTH, HEIGHT = 640, 480
BASE_FPS = 5.0
KINDS: dict[str, tuple[str, ...]] = {
    "other_person": ("different_person",),
    "beside": ("multiple_faces",),
    "group_photo": ("multiple_faces", "different_person"),
    "no_face": ("face_absent",),
    "dark": ("camera_obstructed_or_dark",),
    "looking_away": ("looking_away",),
    "replay": ("presentation_attack", "different_person"),
}
OTHER_PEOPLE = ("talk_a", "webcam_a", "blink_a", "mouth_a")
CLEAN_CLIPS = ("session_a", "talk_a", "webcam_a", "blink_a", "mouth_a", "turns_a")
# Scenes of a few people, as beside a candidate (not crowds of tiny faces such as multi_many_*).
GROUP_PHOTOS = ("multi_2faces_", "multi_3faces_", "multi_4faces_")
# turns_a frames with the head turned away (measured with the tracker: yaw 31-50 degrees). Its bowed-head frames
# (pitch -37 to -43, 119-136) are not used: at 640x480 FaceMesh loses that face, so the engine reports it as
# face_absent (a technical condition), not looking_away; the README says so among the limits.
TURNED = ((24, 53),)
SEGMENT_S = (10.0, 16.0)
GAP_S = 12.0
LEAD_S = 10.0


@dataclass
class Session:
    """A composed (or clean) session: frames (640x480 JPEG bytes), timestamps (ms), the candidate's enrolment
    frame and the planted incidents ({type, start_ts, end_ts, kind, source})."""

    name: str
    frames: list[bytes]
    timestamps_ms: list[float]
    enrolment: bytes
    planted: list[dict[str, Any]] = field(default_factory=list)

    @property
    def duration_s(self) -> float:
        if len(self.timestamps_ms) < 2:
            return 0.0
        step = self.timestamps_ms[1] - self.timestamps_ms[0]
        return (self.timestamps_ms[-1] - self.timestamps_ms[0] + step) / 1000.0


def fit(image: Image.Image, centre_y: float = 0.45) -> Image.Image:
    """The image scaled to cover 640x480 and cropped to it (horizontally centred, vertically around centre_y of
    its height, where a selfie's face sits), as a 4:3 webcam would frame the scene: no borders, which the PAD
    networks would take for a screen's bezel."""
    image = image.convert("RGB")
    scale = max(WIDTH / image.width, HEIGHT / image.height)
    w, h = max(WIDTH, round(image.width * scale)), max(HEIGHT, round(image.height * scale))
    image = image.resize((w, h), Image.Resampling.BILINEAR)
    left = (w - WIDTH) // 2
    top = min(max(0, round(centre_y * h - HEIGHT / 2)), h - HEIGHT)
    return image.crop((left, top, left + WIDTH, top + HEIGHT))


def fit_whole(image: Image.Image) -> Image.Image:
    """The whole image scaled to fit 640x480, over a blurred copy of itself that covers the frame (a photo held
    up or shown whole, every face kept; no dark borders)."""
    from PIL import ImageFilter

    image = image.convert("RGB")
    back = fit(image, 0.5).filter(ImageFilter.GaussianBlur(12))
    scale = min(WIDTH / image.width, HEIGHT / image.height)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    back.paste(image.resize(size, Image.Resampling.BILINEAR), ((WIDTH - size[0]) // 2, (HEIGHT - size[1]) // 2))
    return back


def jpeg(image: Image.Image | np.ndarray[Any, Any], quality: int = 85) -> bytes:
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=quality)
    return out.getvalue()


class Sources:
    """The clips and photos of ../shared, opened lazily."""

    def __init__(self, shared: Path, engine: FaceEngine) -> None:
        self.shared = shared
        self.engine = engine
        self._clips: dict[str, list[Path]] = {}
        self._fps: dict[str, float] = {}

    def clip(self, name: str) -> list[Path]:
        if name not in self._clips:
            folder = self.shared / "clips" / name
            self._clips[name] = sorted(folder.glob("*.jpg"))
            self._fps[name] = float(json.loads((folder / "clip.json").read_text())["fps"])
        return self._clips[name]

    def fps(self, name: str) -> float:
        self.clip(name)
        return self._fps[name]

    def image(self, path: Path) -> Image.Image:
        return Image.open(path).convert("RGB")

    def photos(self, prefixes: tuple[str, ...]) -> list[Path]:
        return sorted(p for p in (self.shared / "faces_misc").iterdir() if p.name.startswith(prefixes))

    def candidate(self, t_ms: float) -> Image.Image:
        frames = self.clip("session_a")
        return self.image(frames[min(len(frames) - 1, round(t_ms / 1000.0 * BASE_FPS))])

    def beside(self, me: Image.Image, other: Image.Image) -> Image.Image:
        """Two people side by side: the left half of the 640x480 frame is `me`, the right half the other person,
        each scaled so that the face box is 180 px high and cropped around the face."""
        halves = [_half(self.engine, im) for im in (me, other)]
        if any(h is None for h in halves):
            return fit(me)
        canvas = Image.new("RGB", (WIDTH, HEIGHT))
        for k, half in enumerate(halves):
            assert half is not None
            canvas.paste(half, (k * WIDTH // 2, 0))
        return canvas


def _half(engine: FaceEngine, image: Image.Image, face_px: float = 180.0) -> Image.Image | None:
    box = _face_box(engine, image)
    if box is None:
        return None
    x, y, w, h = box
    # Through the same low resolution first (face 100 px high, as in session_a), so both halves are as sharp.
    low = 100.0 / h
    image = image.resize((round(image.width * low), round(image.height * low)), Image.Resampling.BILINEAR)
    x, y, w, h = x * low, y * low, w * low, h * low
    scale = max(face_px / h, (WIDTH // 2) / image.width, HEIGHT / image.height)
    image = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.BILINEAR)
    cx, cy = (x + w / 2) * scale, (y + h / 2) * scale
    left = min(max(0, round(cx - WIDTH / 4)), image.width - WIDTH // 2)
    top = min(max(0, round(cy - HEIGHT / 2)), image.height - HEIGHT)
    return image.crop((left, top, left + WIDTH // 2, top + HEIGHT))


def _face_box(engine: FaceEngine, image: Image.Image) -> tuple[float, float, float, float] | None:
    faces = [f for f in engine._analyse_image(np.asarray(image.convert("RGB"))) if f.usable]
    return faces[0].box if faces else None


def _looped(src: Sources, name: str, offset: int, t_rel_ms: float) -> Image.Image:
    frames = src.clip(name)
    return src.image(frames[(offset + round(t_rel_ms / 1000.0 * src.fps(name))) % len(frames)])


def _renderer(kind: str, rng: random.Random, src: Sources, duration_ms: float) -> tuple[Callable[..., Any], str]:
    """A function (t_ms, t_rel_ms) -> the segment's image at that time, and a description of its source."""
    if kind == "other_person":
        name = rng.choice(OTHER_PEOPLE)
        offset = rng.randrange(len(src.clip(name)))
        return (lambda t, r: _looped(src, name, offset, r)), name
    if kind == "beside":
        name = rng.choice(OTHER_PEOPLE)
        offset = rng.randrange(len(src.clip(name)))
        return (lambda t, r: src.beside(src.candidate(t), _looped(src, name, offset, r))), f"session_a+{name}"
    if kind == "group_photo":
        photo = rng.choice(src.photos(GROUP_PHOTOS))
        return (lambda t, r: fit_whole(src.image(photo))), photo.name
    if kind == "no_face":
        photos = src.photos(("noface_",))
        first = rng.randrange(len(photos))
        return (
            lambda t, r: fit_whole(src.image(photos[(first + int(r // 4000)) % len(photos)]))
        ), "faces_misc/noface_*"
    if kind == "dark":
        variant = rng.choice(("covered", "blank", "dark_room"))
        seed = rng.randrange(1 << 30)
        if variant == "covered":

            def covered(t: float, r: float) -> Image.Image:
                noise = np.random.default_rng(seed + int(r)).integers(0, 12, (HEIGHT, WIDTH, 3), dtype=np.uint8)
                return Image.fromarray(noise)

            return covered, "covered lens (noise 0-11)"
        if variant == "blank":
            return (lambda t, r: Image.new("RGB", (WIDTH, HEIGHT), (128, 128, 128))), "blank grey frame"
        return (
            lambda t, r: Image.fromarray((np.asarray(src.candidate(t)) * 0.12).astype(np.uint8))
        ), "session_a darkened to 12 %"
    if kind == "looking_away":
        lo, hi = rng.choice(TURNED)
        frames = src.clip("turns_a")
        return (
            lambda t, r: src.image(frames[lo + min(hi - lo, int(r / duration_ms * (hi - lo + 1)))])
        ), f"turns_a {lo}-{hi} slowed"
    if kind == "replay":
        offset = rng.randrange(len(src.clip("replay_a")))
        return (lambda t, r: _looped(src, "replay_a", offset, r)), "replay_a"
    raise ValueError(f"unknown kind {kind}")


def plan(rng: random.Random, kinds: list[str], total_s: float) -> list[tuple[str, float, float]]:
    """(kind, start_s, duration_s) for each kind in a seeded order, with the candidate alone between them."""
    order = list(kinds)
    rng.shuffle(order)
    durations = [rng.uniform(*SEGMENT_S) for _ in order]
    slack = total_s - LEAD_S - sum(durations) - GAP_S * len(order)
    if slack < 0:
        raise ValueError("too many segments for the session's length")
    cuts = sorted(rng.uniform(0, slack) for _ in order)
    extra = [b - a for a, b in zip([0.0, *cuts[:-1]], cuts, strict=True)]
    out, t = [], LEAD_S
    for kind, dur, more in zip(order, durations, extra, strict=True):
        t += more
        out.append((kind, round(t, 1), round(dur, 1)))
        t += dur + GAP_S
    return out


def compose(
    shared: Path, engine: FaceEngine, seed: int, step: int = 10, kinds: list[str] | None = None, total_s: float = 200.0
) -> Session:
    """One composed session on session_a's timeline, sampled every `step` frames of 5 fps."""
    rng = random.Random(seed)
    src = Sources(shared, engine)
    base = src.clip("session_a")
    segments = plan(rng, list(kinds or KINDS), total_s)
    renderers = [(_renderer(k, rng, src, d * 1000.0), k, s * 1000.0, (s + d) * 1000.0) for k, s, d in segments]
    frames, times = [], []
    planted: dict[tuple[str, float], dict[str, Any]] = {}
    for index in range(0, min(len(base), round(total_s * BASE_FPS)), step):
        t = index * 1000.0 / BASE_FPS
        image = src.image(base[index])
        for (render, source), kind, start, end in renderers:
            if start <= t < end:
                image = render(t, t - start)
                for incident in KINDS[kind]:
                    entry = planted.setdefault(
                        (incident, start),
                        {"type": incident, "start_ts": t, "end_ts": t, "kind": kind, "source": source},
                    )
                    entry["end_ts"] = t
        frames.append(jpeg(fit(image)))
        times.append(t)
    return Session(
        name=f"composed-{seed}-step{step}",
        frames=frames,
        timestamps_ms=times,
        enrolment=jpeg(fit(src.image(base[0]))),
        planted=sorted(planted.values(), key=lambda p: (p["start_ts"], p["type"])),
    )


def clean_sessions(shared: Path, engine: FaceEngine, step_s: float | None = None) -> list[Session]:
    """Each bona fide clip alone, at its own rate (step_s None) or one frame every step_s seconds; the person
    enrolled from the clip's first frame the engine can enrol."""
    from faceengine.errors import FaceEngineError

    src = Sources(shared, engine)
    out = []
    for name in CLEAN_CLIPS:
        files, fps = src.clip(name), src.fps(name)
        every = 1 if step_s is None else max(1, round(step_s * fps))
        frames = [jpeg(fit(src.image(p))) for p in files[::every]]
        enrolment = None
        for f in frames:
            try:
                engine.enrol(f)
            except FaceEngineError:
                continue
            enrolment = f
            break
        if enrolment is None:
            continue
        times = [k * every * 1000.0 / fps for k in range(len(frames))]
        out.append(Session(name=f"clean-{name}-every{every}", frames=frames, timestamps_ms=times, enrolment=enrolment))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("shared", nargs="?", type=Path, default=REPO.parent / "shared")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sessions", type=int, default=4)
    ap.add_argument("--step", type=int, default=10)
    ap.add_argument("--out", type=Path, help="write the ground truth of each session as JSON into this folder")
    args = ap.parse_args()
    from faceengine import FaceEngine

    engine = FaceEngine.load()
    for k in range(args.sessions):
        s = compose(args.shared, engine, args.seed + k, args.step)
        truth = {"name": s.name, "frames": len(s.frames), "duration_s": s.duration_s, "planted": s.planted}
        print(json.dumps(truth))
        if args.out:
            args.out.mkdir(parents=True, exist_ok=True)
            (args.out / f"{s.name}.json").write_text(json.dumps(truth, indent=2) + "\n")


if __name__ == "__main__":
    main()

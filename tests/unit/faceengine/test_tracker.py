"""The face tracker on real clips with the real models: track ids, re-detection, pose and openness signs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from faceengine import FaceEngine
from faceengine.liveness import detect_actions

pytestmark = pytest.mark.unit

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "clips.json"


@pytest.fixture(scope="module")
def engine() -> FaceEngine:
    return FaceEngine.load()


@pytest.fixture(scope="module")
def notes() -> dict:
    return json.loads(FIXTURE.read_text())["clips"]


def _frames(shared_dir: Path, clip: str, first: int, last: int) -> list[bytes]:
    files = sorted((shared_dir / "clips" / clip).glob("*.jpg"))
    return [f.read_bytes() for f in files[first : last + 1]]


def test_one_track_and_one_detection_through_a_continuous_shot(engine: FaceEngine, shared_dir: Path) -> None:
    # Given 40 frames of one continuous selfie shot (turns and returns)
    frames = list(engine.track(_frames(shared_dir, "turns_a", 20, 59)))
    # Then one track id throughout, and BlazeFace ran on the first frame only
    assert {f.track_id for f in frames} == {frames[0].track_id}
    assert [f.index for f in frames if f.detected] == [0]
    assert all(f.box is not None and f.landmarks is not None and len(f.landmarks) == 5 for f in frames)


def test_a_cut_in_the_video_starts_a_new_track(engine: FaceEngine, shared_dir: Path, notes: dict) -> None:
    # Given frames around the cut annotated in turns_a (the face jumps to another place and size)
    cut = notes["turns_a"]["cuts"][0]
    frames = list(engine.track(_frames(shared_dir, "turns_a", cut - 6, cut + 5)))
    ids = [f.track_id for f in frames]
    # Then the id changes exactly at the cut, where the detector ran again
    assert len(set(ids[:6])) == 1 and len(set(ids[6:])) == 1 and ids[5] != ids[6]
    assert [f.index for f in frames if f.detected] == [0, 6]


def test_a_frame_without_a_face_loses_the_track(engine: FaceEngine, shared_dir: Path, faces_misc_dir: Path) -> None:
    # Given a clip interrupted by a photo with no face
    noface = sorted(faces_misc_dir.glob("noface_*.jpg"))[0].read_bytes()
    clip = _frames(shared_dir, "blink_a", 0, 5)
    frames = list(engine.track([*clip[:3], noface, *clip[3:]]))
    # Then the frame has no track, and the face after it is a new track found by the detector
    assert frames[3].track_id is None and frames[3].pose is None
    assert frames[4].detected and frames[4].track_id not in (None, frames[0].track_id)
    assert frames[0].track_id == frames[2].track_id


def test_pose_signs_follow_the_persons_own_left_and_right(engine: FaceEngine, shared_dir: Path) -> None:
    # Given frames checked by eye: frontal (0), nose to the frame's right (45), nose to the frame's left (90)
    files = sorted((shared_dir / "clips" / "turns_a").glob("*.jpg"))
    frontal, left, right = (next(engine.track([files[i].read_bytes()])) for i in (0, 45, 90))
    assert frontal.pose and left.pose and right.pose
    # Then turn_left (the person's left) is a positive yaw, turn_right a negative one
    assert abs(frontal.pose.yaw) < 10
    assert left.pose.yaw > frontal.pose.yaw + 25
    assert right.pose.yaw < frontal.pose.yaw - 10
    assert abs(frontal.pose.roll) < 10


def test_eye_and_mouth_openness(engine: FaceEngine, shared_dir: Path) -> None:
    blink = sorted((shared_dir / "clips" / "blink_a").glob("*.jpg"))
    mouth = sorted((shared_dir / "clips" / "mouth_a").glob("*.jpg"))
    eyes_open, eyes_shut = (next(engine.track([blink[i].read_bytes()])).pose for i in (4, 5))
    closed, wide = (next(engine.track([mouth[i].read_bytes()])).pose for i in (0, 25))
    assert eyes_open and eyes_shut and closed and wide
    # Eye aspect ratio roughly halves on a blink; the mouth ratio goes from about 0 to well above 0.35
    assert eyes_shut.eye_left < 0.6 * eyes_open.eye_left and eyes_shut.eye_right < 0.6 * eyes_open.eye_right
    assert closed.mouth < 0.1 < 0.35 < wide.mouth


def _ranges_hit(seen: list[int], ranges: list[list[int]], offset: int) -> tuple[bool, list[int]]:
    inside = [i + offset for i in seen if any(a <= i + offset <= b for a, b in ranges)]
    outside = [i + offset for i in seen if not any(a - 1 <= i + offset <= b + 1 for a, b in ranges)]
    return all(any(a <= i <= b for i in inside) for a, b in ranges), outside


@pytest.mark.slow  # every frame of three clips through the tracker
@pytest.mark.parametrize(
    ("clip", "first", "last"),
    [("turns_a", 0, 110), ("mouth_a", 0, 60), ("blink_a", 0, 40)],
)
def test_actions_are_detected_where_annotated(
    engine: FaceEngine, shared_dir: Path, notes: dict, clip: str, first: int, last: int
) -> None:
    # Given a stretch of a clip and its annotations (tests/fixtures/clips.json, checked by eye)
    frames = list(engine.track(_frames(shared_dir, clip, first, last)))
    seen = detect_actions(frames, engine.liveness_params())
    for action in ("turn_left", "turn_right", "blink", "open_mouth"):
        ranges = [r for r in notes[clip].get(action, []) if r[0] >= first and r[1] <= last]
        all_hit, outside = _ranges_hit(seen[action], ranges, first)
        # Then each annotated range contains a detection, and nothing is detected away from the annotations
        assert all_hit, (clip, action, ranges, seen[action])
        assert outside == [], (clip, action, outside)


@pytest.mark.slow
def test_tracking_costs_less_than_analyse_per_frame(engine: FaceEngine, shared_dir: Path) -> None:
    # A coarse guard (the measured figure is in the README): tracking must stay well below a full analyse
    import time

    frames = _frames(shared_dir, "turns_a", 0, 39)
    t0 = time.perf_counter()
    for f in frames:
        engine.analyse(f)
    analyse = time.perf_counter() - t0
    t0 = time.perf_counter()
    list(engine.track(frames))
    track = time.perf_counter() - t0
    assert track < 0.6 * analyse, (track, analyse)
    assert np.isfinite(track)

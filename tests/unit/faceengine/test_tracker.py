"""The face tracker on real clips with the real models: track ids, re-detection, pose and openness signs, and the
encoded-frame road (JPEG decoded at reduced size for FaceMesh) against full-size tracking.

No test is timed: the speed is measured by tools/bench_tracker.py (interleaved with a full analyse, same run)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from faceengine import FaceEngine, align, errors
from faceengine.decode import decode_image, decode_reduced
from faceengine.landmarks import reduction_for, warp_from
from faceengine.liveness import detect_actions

pytestmark = pytest.mark.unit

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "clips.json"


@pytest.fixture(scope="module")
def engine() -> FaceEngine:
    return FaceEngine.load()


@pytest.fixture(scope="module")
def full_size(engine: FaceEngine) -> FaceEngine:
    """The same engine with the tracker's reduced decode turned off."""
    return FaceEngine(engine.models_dir, overrides={"tracking": {"reduced_decode": False}})


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


# -- the encoded-frame road -------------------------------------------------------------------------------------------
#
# Tolerances for reduced against full-size decoding. The reduced road takes the FaceMesh crop from a JPEG decoded at
# 1/2 (DCT scaling) where the full-size road box-reduces the decoded frame by 2 before the same bilinear warp: the
# crops differ by a filter, not by resolution. Measured on the clips and pad frames (tools/bench_tracker.py, and on
# turns_a 0-39 here): landmarks within 0.5 % of the face size, angles within 0.6 degrees, eye ratio within 0.008,
# mouth ratio within 0.017. The limits below leave about 2x for other CPUs' float kernels (onnxruntime picks them per
# CPU) and are still far below what the liveness thresholds resolve (a blink halves the eye ratio of about 0.3; a
# turn is 20+ degrees).
LANDMARK_TOL = 0.01  # of the face box side
ANGLE_TOL = 1.5  # degrees
EYE_TOL = 0.02
MOUTH_TOL = 0.035
# Same process, same kernels, same pixels: the two roads must agree to float rounding of the same operations.
SAME_TOL = 1e-6


def test_without_reduction_encoded_frames_track_like_decoded_arrays(
    engine: FaceEngine, full_size: FaceEngine, shared_dir: Path
) -> None:
    # Given a stretch of a clip, as JPEG bytes and as decoded arrays
    jpegs = _frames(shared_dir, "blink_a", 0, 19)
    # When the reduced decode is off, bytes take the encoded road (Pillow image, no array) and arrays the old one
    encoded = list(full_size.track(jpegs))
    arrays = list(engine.track([engine.decode(j) for j in jpegs]))
    # Then the landmarks, ids and detections are the same
    assert [f.track_id for f in encoded] == [f.track_id for f in arrays]
    assert [f.detected for f in encoded] == [f.detected for f in arrays]
    for a, b in zip(encoded, arrays, strict=True):
        assert a.mesh is not None and b.mesh is not None and a.decoded_scale == 1
        assert np.abs(a.mesh.points - b.mesh.points).max() < SAME_TOL


def test_reduced_decode_stays_within_tolerance_of_full_size(
    engine: FaceEngine, full_size: FaceEngine, shared_dir: Path
) -> None:
    # Given 40 frames of a selfie clip whose face is large (FaceMesh crop of about 440 px, box-reduced by 2 anyway)
    jpegs = _frames(shared_dir, "turns_a", 20, 59)
    reduced = list(engine.track(jpegs))
    full = list(full_size.track(jpegs))
    # Then every frame after the first is decoded at half size, and only the first ran the detector (full size)
    assert [f.decoded_scale for f in reduced] == [1] + [2] * 39
    assert [f.detected for f in reduced] == [f.detected for f in full]
    assert len({f.track_id for f in reduced}) == 1
    # And the landmarks, pose and openness stay within the stated tolerances of full-size tracking
    for r, f in zip(reduced, full, strict=True):
        assert r.mesh is not None and f.mesh is not None and r.pose and f.pose and f.box
        assert np.abs(r.mesh.points[:, :2] - f.mesh.points[:, :2]).max() <= LANDMARK_TOL * max(f.box[2:])
        assert max(abs(r.pose.yaw - f.pose.yaw), abs(r.pose.pitch - f.pose.pitch), abs(r.pose.roll - f.pose.roll)) <= (
            ANGLE_TOL
        )
        assert abs(r.pose.eye_left - f.pose.eye_left) <= EYE_TOL and abs(r.pose.eye_right - f.pose.eye_right) <= EYE_TOL
        assert abs(r.pose.mouth - f.pose.mouth) <= MOUTH_TOL


def test_the_same_actions_are_detected_with_and_without_the_reduced_decode(
    engine: FaceEngine, full_size: FaceEngine, shared_dir: Path
) -> None:
    # Given clips showing turns, blinks and an open mouth (all large faces: the reduced decode is used)
    params = engine.liveness_params()
    for clip, last in (("turns_a", 110), ("blink_a", 40), ("mouth_a", 60)):
        jpegs = _frames(shared_dir, clip, 0, last)
        reduced = list(engine.track(jpegs))
        assert sum(f.decoded_scale == 2 for f in reduced) > len(jpegs) // 2, clip
        # Then the liveness actions found are the same frames as with full-size decoding
        assert detect_actions(reduced, params) == detect_actions(list(full_size.track(jpegs)), params), clip


def test_small_faces_are_decoded_in_full(engine: FaceEngine, shared_dir: Path) -> None:
    # Given a webcam clip whose face crop (about 175 px) is smaller than FaceMesh's 192 px input
    frames = list(engine.track(_frames(shared_dir, "webcam_a", 0, 9)))
    # Then no frame is decoded reduced (that would lose detail FaceMesh sees)
    assert all(f.mesh is not None for f in frames)
    assert {f.decoded_scale for f in frames} == {1}


@pytest.mark.parametrize(
    ("side", "expected"),
    [(100.0, 1), (191.0, 1), (192.0, 1), (383.0, 1), (384.0, 2), (700.0, 2), (768.0, 4), (1600.0, 8), (4000.0, 8)],
)
def test_the_reduction_is_the_box_reduction_the_crop_gets_anyway(side: float, expected: int) -> None:
    # Given a FaceMesh crop of `side` image pixels onto 192 (crops smaller than 192 px are enlarged: no reduction)
    m = align.rotation_scale_transform(np.array([500.0, 400.0]), 0.2, side, 192)
    # Then the JPEG reduction asked for is the power of two not above the factor align.warp would box-reduce by
    assert reduction_for(m) == expected


def _jpeg(size: tuple[int, int], exif_orientation: int | None = None) -> bytes:
    rng = np.random.default_rng(7)
    image = Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))
    buf = io.BytesIO()
    exif = Image.Exif()
    if exif_orientation is not None:
        exif[0x0112] = exif_orientation
    image.save(buf, format="JPEG", quality=90, exif=exif.tobytes())
    return buf.getvalue()


@pytest.mark.parametrize("orientation", [None, 1, 6, 3])
def test_decode_reduced_without_reduction_gives_decode_image_pixels(orientation: int | None) -> None:
    # Given a JPEG, upright or with an EXIF rotation
    data = _jpeg((64, 48), orientation)
    image, scale = decode_reduced(data)
    # Then the Pillow image holds exactly the pixels decode_image returns (same decoder, same transpose)
    assert scale == 1
    assert np.array_equal(np.asarray(image), decode_image(data))


@pytest.mark.parametrize("orientation", [None, 6])
def test_decode_reduced_scales_by_an_exact_factor(orientation: int | None) -> None:
    # Given a 640x480 JPEG (upright or rotated by EXIF)
    data = _jpeg((640, 480), orientation)
    full = decode_image(data)
    for reduce, expected in ((2, 2), (3, 2), (4, 4), (8, 8)):
        image, scale = decode_reduced(data, reduce)
        # Then the reduction applied is a power of two up to the one asked for, and the sizes are exact multiples
        assert scale == expected
        assert (image.height * scale, image.width * scale) == full.shape[:2]


def test_decode_reduced_refuses_inexact_reductions_and_other_formats() -> None:
    # Given a JPEG whose width does not divide by 2, and a PNG
    odd = _jpeg((641, 480))
    buf = io.BytesIO()
    Image.new("RGB", (640, 480)).save(buf, format="PNG")
    # Then nothing is reduced (a reduced coordinate times the scale would not be a full-size coordinate)
    assert decode_reduced(odd, 2)[1] == 1 and decode_reduced(odd, 2)[0].size == (641, 480)
    assert decode_reduced(buf.getvalue(), 2)[1] == 1


def test_decode_reduced_raises_the_decode_errors(faces_misc_dir: Path) -> None:
    # The same checks as decode_image: unsupported formats, corrupt data, empty input
    with pytest.raises(errors.UnsupportedMediaTypeError):
        decode_reduced(b"GIF89a" + b"\x00" * 64, 2)
    with pytest.raises(errors.InvalidImageError):
        decode_reduced((faces_misc_dir / "malformed_truncated.jpg").read_bytes(), 2)
    with pytest.raises(errors.InvalidImageError):
        decode_reduced(b"", 2)
    with pytest.raises(errors.ImageTooLargeError):
        decode_reduced(_jpeg((64, 48)), 2, max_bytes=100)


def test_warp_from_a_pillow_image_is_align_warp(engine: FaceEngine, shared_dir: Path) -> None:
    # Given a frame and two crops: one enlarged, one shrunk by more than 2 (box-reduced first)
    data = _frames(shared_dir, "turns_a", 0, 0)[0]
    array = engine.decode(data)
    image, _ = decode_reduced(data)
    for side in (150.0, 500.0):
        m = align.rotation_scale_transform(np.array([180.0, 300.0]), 0.15, side, 192)
        # Then the crop from the Pillow image is the crop align.warp makes from the array (same Pillow operations)
        assert np.array_equal(warp_from(image, m, 192), align.warp(array, m, 192))

"""Liveness on real frames with the real models: MiniFASNet pinned to its reference, genuine challenges, attacks."""

from __future__ import annotations

import io
import json
import pickle
import random
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image

from faceengine import FaceEngine
from faceengine.engine import MODELS_DIR
from faceengine.liveness import Evidence, homography_residual, judge

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "tools"))

import minifasnet  # noqa: E402

pytestmark = pytest.mark.unit

# Float tolerance: the NumPy reference runs in float64, onnxruntime in float32 with kernels picked per CPU
# (AVX2 / AVX-512 / plain SSE sum in different orders). On this machine the largest difference over the
# probabilities was 7e-7; 1e-4 leaves two orders of magnitude for other CPUs while still catching any wrong
# layer, stride, padding or folded BatchNorm (those move probabilities by 1e-2 or more).
PROB_TOL = 1e-4
TIMES = [k * 100.0 for k in range(30)]


@pytest.fixture(scope="module")
def engine() -> FaceEngine:
    return FaceEngine.load()


@pytest.fixture(scope="module")
def manifest() -> dict:
    return json.loads((MODELS_DIR / "manifest.json").read_text())


def _crops(engine: FaceEngine, shared_dir: Path, photos: list[str], scale: float) -> np.ndarray:
    from faceengine.pad import silent_face_crop

    out = []
    for rel in photos:
        image = engine.decode((shared_dir / rel).read_bytes())
        face = next(f for f in engine.analyse((shared_dir / rel).read_bytes()) if f.usable)
        out.append(silent_face_crop(image, face.box, scale, 80)[..., ::-1].transpose(2, 0, 1))
    return np.stack(out).astype(np.float32)


@pytest.mark.parametrize("name", ["minifasnet_v2", "minifasnet_v1se"])
def test_minifasnet_onnx_matches_the_numpy_reference_on_real_crops(
    engine: FaceEngine, manifest: dict, shared_dir: Path, name: str
) -> None:
    # Given the shipped ONNX graph and the original PyTorch checkpoint read without torch
    spec = manifest["models"][name]
    weights = minifasnet.read_pth(shared_dir / "models-src" / "minifasnet" / Path(spec["source"]["file"]).name)
    photos = spec["reference_check"]["photos"]
    x = _crops(engine, shared_dir, photos, float(spec["preprocessing"]["box_scale"]))
    # When both run on the same real face crops (bona fide, prints, a screen replay)
    sess = ort.InferenceSession(str(MODELS_DIR / spec["file"]), providers=["CPUExecutionProvider"])
    out = sess.run(["probs"], {"input": x})[0]
    ref = minifasnet.reference_forward(weights, x)
    # Then they agree, and the network separates the crops as recorded at build time (class 1 = real)
    assert np.abs(out - ref).max() < PROB_TOL
    labels = [p.split("/")[0] + "/" + p.split("/")[1] for p in photos]
    real = out[:, 1]
    for label, score in zip(labels, real, strict=True):
        if label.startswith("pad/attack") or label == "clips/replay_a":
            assert score < 0.01, (label, score)
        elif label.startswith("pad/bona_fide/0004") or label == "clips/turns_a":
            assert score > 0.9, (label, score)


def test_the_checkpoint_reader_runs_no_code(tmp_path: Path) -> None:
    # Given a "checkpoint" whose pickle asks for os.system
    bad = tmp_path / "evil.pth"
    with bad.open("wb") as f:
        pickle.dump(0x1950A86A20F9469CFC6C, f)
        pickle.dump(1001, f)
        pickle.dump({"little_endian": True}, f)
        f.write(b"cos\nsystem\n(S'echo pwned'\ntR.")
    # Then the reader refuses it
    with pytest.raises(pickle.UnpicklingError):
        minifasnet.read_pth(bad)


def _clip(shared_dir: Path, clip: str) -> list[Path]:
    return sorted((shared_dir / "clips" / clip).glob("*.jpg"))


def _spread(seq: list[int], n: int = 30) -> list[int]:
    return [seq[round(k)] for k in np.linspace(0, len(seq) - 1, n)]


@pytest.fixture(scope="module")
def genuine_turns(shared_dir: Path) -> list[bytes]:
    """turns_a: rest, turn to the person's left, back, turn to their right (frames 4..108, 30 of them)."""
    files = _clip(shared_dir, "turns_a")
    return [files[i].read_bytes() for i in _spread(list(range(4, 109)))]


def test_a_genuine_challenge_is_live_and_gives_a_template_of_that_person(
    engine: FaceEngine, genuine_turns: list[bytes], shared_dir: Path
) -> None:
    res = engine.liveness(genuine_turns, TIMES, ["turn_left", "turn_right"])
    assert res.decision.decision == "live", res.decision
    assert res.decision.reasons == []
    assert res.decision.actions["turn_left"] < res.decision.actions["turn_right"]
    assert res.decision.details["depth_residual"] > 5 * engine.liveness_params()["depth_min_residual"]
    # The best frontal frame's template matches the person's own enrolment from another moment of the clip
    enrolled = engine.enrol(_clip(shared_dir, "turns_a")[180].read_bytes())
    assert res.template is not None
    assert engine.similarity(res.template, enrolled) >= engine.threshold(1e-4)


def test_the_same_frames_with_the_actions_in_the_wrong_order_are_retry(
    engine: FaceEngine, genuine_turns: list[bytes]
) -> None:
    res = engine.liveness(genuine_turns, TIMES, ["turn_right", "turn_left"])
    assert res.decision.decision == "retry"
    assert res.decision.reasons == ["challenge_not_met"]


def test_a_genuine_blink_is_live(engine: FaceEngine, shared_dir: Path) -> None:
    files = _clip(shared_dir, "blink_a")[0:30]
    res = engine.liveness([f.read_bytes() for f in files], TIMES, ["blink"])
    assert res.decision.decision == "live", res.decision


def test_implausible_timestamps_are_a_spoof(engine: FaceEngine, genuine_turns: list[bytes]) -> None:
    res = engine.liveness(genuine_turns, [0.0] * 30, ["turn_left", "turn_right"])
    assert res.decision.decision == "spoof"
    assert "timestamps_implausible" in res.decision.reasons


@pytest.mark.slow  # bursts of every person's photos through the engine
def test_a_still_photo_burst_is_never_live(engine: FaceEngine, faces_dir: Path) -> None:
    # Given one press photo sent 30 times, and the same photo moved a little in every frame (a hand-held print)
    rng = random.Random(3)
    for person in ("Tony_Blair", "Angela_Merkel"):
        data = (faces_dir / person / "1.jpg").read_bytes()
        image = Image.open(io.BytesIO(data)).convert("RGB")
        moved = []
        for _ in range(30):
            frame = image.rotate(rng.uniform(-4, 4), translate=(rng.uniform(-6, 6), rng.uniform(-6, 6)))
            buf = io.BytesIO()
            frame.save(buf, format="JPEG", quality=90)
            moved.append(buf.getvalue())
        for actions in (["turn_left", "turn_right"], ["blink", "open_mouth"]):
            still = engine.liveness([data] * 30, TIMES, actions)
            assert still.decision.decision == "spoof" and "frames_duplicated" in still.decision.reasons
            shaken = engine.liveness(moved, TIMES, actions)
            assert shaken.decision.decision != "live", (person, actions, shaken.decision)
            # The enrolment photo itself among the frames is named as such
            enrol = engine.liveness([data, *moved[1:]], TIMES, actions, enrolment_image=data)
            assert enrol.decision.decision == "spoof" and "enrolment_photo" in enrol.decision.reasons


@pytest.mark.parametrize("seq", ["0001/0001_00_00_01", "0004/0004_01_00_01", "0006/0006_00_00_01"])
def test_print_attack_sequences_are_not_live(engine: FaceEngine, shared_dir: Path, seq: str) -> None:
    files = sorted((shared_dir / "pad" / "attack" / seq).glob("*.jpg"))
    assert len(files) >= 8
    res = engine.liveness([f.read_bytes() for f in files], TIMES[: len(files)], ["turn_left", "blink"])
    assert res.decision.decision == "spoof"
    assert "pad_score_low" in res.decision.reasons


@pytest.mark.slow
def test_a_screen_replay_performing_the_turns_is_a_spoof(engine: FaceEngine, shared_dir: Path) -> None:
    # replay_a replays turns_a on a laptop screen: the turns are there, the passive score is not
    files = _clip(shared_dir, "replay_a")
    frames = [files[i].read_bytes() for i in _spread(list(range(40, 140)))]
    res = engine.liveness(frames, TIMES, ["turn_left", "turn_right"])
    assert res.decision.decision == "spoof"
    assert "pad_score_low" in res.decision.reasons


def test_a_plane_moved_by_a_homography_leaves_no_residual_and_a_head_turn_does(
    engine: FaceEngine, genuine_turns: list[bytes]
) -> None:
    # Given the real landmarks of a frontal frame and of the turned frame of the same burst
    frames = [f for f in engine.track(genuine_turns) if f.mesh is not None]
    yaws = [f.pose.yaw for f in frames if f.pose]
    frontal, turned = frames[int(np.argmin(np.abs(yaws)))], frames[int(np.argmax(yaws))]
    assert frontal.mesh is not None and turned.mesh is not None
    pts = frontal.mesh.points[:, :2]
    # A print seen from another angle: the frontal landmarks moved by a projective transform
    h = np.array([[0.9, 0.08, 30.0], [-0.05, 1.02, 12.0], [2e-4, -1e-4, 1.0]])
    q = np.c_[pts, np.ones(len(pts))] @ h.T
    warped = q[:, :2] / q[:, 2:]
    assert homography_residual(pts, warped) < 1e-6
    assert homography_residual(pts, turned.mesh.points[:, :2]) > 0.05


def test_judge_refuses_a_burst_whose_identity_changes(engine: FaceEngine, genuine_turns: list[bytes]) -> None:
    # The evidence of a real burst, with the measured similarity of its first and last frontal frames replaced by
    # that of two different people (the tracked frames, PAD scores and actions stay real)
    frames = list(engine.track(genuine_turns, TIMES))
    ok = Evidence(frames, ["turn_left", "turn_right"], [0.9] * 6, 0.95, 0)
    params = engine.liveness_params()
    assert judge(ok, params).decision == "live"
    swapped = replace(ok, identity_similarity=0.1)
    assert judge(swapped, params).reasons == ["identity_changed"]
    assert judge(replace(ok, frames=frames[:5]), params).reasons == ["too_few_frames"]

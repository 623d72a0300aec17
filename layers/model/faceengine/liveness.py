"""Liveness judgement of a burst of frames: a pure function of the tracked frames and measured evidence.

`judge(evidence, params)` decides `live`, `spoof` or `retry` with stable reason strings. It runs no model: the
engine (FaceEngine.liveness) tracks the frames, scores them with the passive PAD networks, embeds the first and
last frontal frames and compares face crops, then calls it. Every threshold comes from the manifest's
`liveness` section (`params`).

Reasons (stable; an API maps them 1:1):
  spoof:  pad_score_low            the passive presentation-attack score (median over frames) is below threshold
          planar_motion            the head turned but its landmarks moved as one plane (a print or a screen)
          identity_changed         the first and last frontal frames are not the same person
          frames_duplicated        too many frames are near-identical copies of each other
          enrolment_photo          a frame is a copy of the enrolment photo
          timestamps_implausible   timestamps not increasing, frame rate or duration out of range
  retry:  too_few_frames           fewer frames than `min_frames` (or too few with a face)
          face_lost                the face is missing on too many frames
          track_cut                the face was lost and found again (more than one track)
          multiple_faces           more than one usable face in a frame
          no_frontal_frame         no frame frontal and sharp enough to compare identities or to verify
          challenge_not_met        the requested actions were not all seen, in order
Any spoof reason makes the decision `spoof`; otherwise any retry reason makes it `retry`; otherwise `live`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from faceengine.track import TrackedFrame

ACTIONS = ("turn_left", "turn_right", "blink", "open_mouth")
SPOOF_REASONS = (
    "pad_score_low",
    "planar_motion",
    "identity_changed",
    "frames_duplicated",
    "enrolment_photo",
    "timestamps_implausible",
)
RETRY_REASONS = (
    "too_few_frames",
    "face_lost",
    "track_cut",
    "multiple_faces",
    "no_frontal_frame",
    "challenge_not_met",
)
# Rigid landmarks for the depth check (face contour, eye corners, nose, brows): lids and lips move on their own.
RIGID_POINTS = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152,
                148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109, 33, 133, 263, 362,
                1, 4, 5, 6, 168, 197, 195, 98, 327, 70, 105, 107, 336, 334, 300)  # fmt: skip


@dataclass(frozen=True)
class Evidence:
    """What the judgement needs, all measured beforehand.

    frames: the tracked burst, in order; actions: the challenge (from ACTIONS); pad_scores: the passive score of
    each frame it was measured on; identity_similarity: cosine similarity of the first and last frontal frames'
    templates (None when there is no pair); duplicate_pairs: how many consecutive pairs of face crops are
    near-identical; enrolment_copy: the highest similarity of a frame's face crop to the enrolment photo's
    (None without an enrolment photo).
    """

    frames: Sequence[TrackedFrame]
    actions: Sequence[str]
    pad_scores: Sequence[float]
    identity_similarity: float | None
    duplicate_pairs: int
    enrolment_copy: float | None = None


@dataclass(frozen=True)
class Decision:
    """`decision` (live | spoof | retry), `reasons` (stable strings, see the module docstring) and the measures
    behind them (`details`: numbers for logs and evaluation, never images or embeddings); `actions` maps each
    requested action to the frame index where it was seen (None if not seen); `best_frame` is the index of the
    frame to verify identity on (the most frontal sharp frame), None if there is none."""

    decision: str
    reasons: list[str]
    details: dict[str, Any] = field(default_factory=dict)
    actions: dict[str, int | None] = field(default_factory=dict)
    best_frame: int | None = None

    @property
    def live(self) -> bool:
        """True when the decision is `live`."""
        return self.decision == "live"


def validate_actions(actions: Sequence[str]) -> None:
    """ValueError unless actions are distinct names from ACTIONS."""
    if len(set(actions)) != len(actions) or any(a not in ACTIONS for a in actions):
        raise ValueError(f"challenge actions must be distinct names from {', '.join(ACTIONS)}")


def homography_residual(src: npt.NDArray[np.float64], dst: npt.NDArray[np.float64]) -> float:
    """RMS distance (in units of the points' own spread) left after the best homography maps src onto dst."""
    s, d = np.asarray(src, dtype=np.float64), np.asarray(dst, dtype=np.float64)

    def normaliser(p: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        c = p.mean(0)
        k = np.sqrt(2.0) / max(float(np.sqrt(((p - c) ** 2).sum(1)).mean()), 1e-9)
        return np.array([[k, 0, -k * c[0]], [0, k, -k * c[1]], [0, 0, 1.0]])

    ts, td = normaliser(s), normaliser(d)
    sh = (ts @ np.c_[s, np.ones(len(s))].T).T
    dh = (td @ np.c_[d, np.ones(len(d))].T).T
    rows = []
    for (x, y, _), (u, v, _) in zip(sh, dh, strict=True):
        rows.append([-x, -y, -1, 0, 0, 0, u * x, u * y, u])
        rows.append([0, 0, 0, -x, -y, -1, v * x, v * y, v])
    _, _, vt = np.linalg.svd(np.asarray(rows))
    h = vt[-1].reshape(3, 3)
    mapped = (h @ sh.T).T
    mapped = mapped[:, :2] / np.where(np.abs(mapped[:, 2:3]) < 1e-12, 1e-12, mapped[:, 2:3])
    return float(np.sqrt(((mapped - dh[:, :2]) ** 2).sum(1).mean()))


def _series(frames: Sequence[TrackedFrame]) -> dict[str, npt.NDArray[np.float64]]:
    found = [f for f in frames if f.pose is not None]
    return {
        "index": np.array([f.index for f in found], dtype=np.float64),
        "yaw": np.array([f.pose.yaw for f in found if f.pose]),
        "pitch": np.array([f.pose.pitch for f in found if f.pose]),
        "eyes": np.array([f.pose.eyes for f in found if f.pose]),
        "mouth": np.array([f.pose.mouth for f in found if f.pose]),
    }


def detect_actions(frames: Sequence[TrackedFrame], p: dict[str, Any]) -> dict[str, list[int]]:
    """For each action, the frame indices where it is seen, relative to the burst's own resting face (the median
    yaw and pitch of its frames, and the `eyes_open_percentile` percentile of eye openness; mouth openness is
    absolute).

    turn_left: yaw at least `turn_degrees` above the resting yaw (nose towards the image's right); turn_right: that
    far below; blink: eye openness below `blink_ratio` x the resting openness, with the head near its resting pose
    (looking down narrows the eyes too); open_mouth: mouth openness at least `mouth_open`.
    """
    s = _series(frames)
    out: dict[str, list[int]] = {a: [] for a in ACTIONS}
    if len(s["index"]) == 0:
        return out
    yaw0, pitch0 = (float(np.median(s[k])) for k in ("yaw", "pitch"))
    near_rest = (np.abs(s["yaw"] - yaw0) <= p["blink_max_turn_degrees"]) & (
        np.abs(s["pitch"] - pitch0) <= p["blink_max_turn_degrees"]
    )
    # Open eyes: a high percentile over the frames near the resting pose (a long blink can cover half the burst,
    # so the median may be shut eyes; a turned head distorts the eye shape).
    eyes0 = float(np.percentile(s["eyes"][near_rest] if near_rest.any() else s["eyes"], p["eyes_open_percentile"]))
    idx = s["index"].astype(int)
    out["turn_left"] = idx[s["yaw"] - yaw0 >= p["turn_degrees"]].tolist()
    out["turn_right"] = idx[s["yaw"] - yaw0 <= -p["turn_degrees"]].tolist()
    out["blink"] = idx[(s["eyes"] <= p["blink_ratio"] * eyes0) & near_rest].tolist()
    out["open_mouth"] = idx[s["mouth"] >= p["mouth_open"]].tolist()
    return out


def challenge_met(seen: dict[str, list[int]], actions: Sequence[str]) -> dict[str, int | None]:
    """Each action's first frame after the previous action's (None from the first action not seen on)."""
    out: dict[str, int | None] = {}
    after = -1
    for a in actions:
        nxt = next((i for i in seen.get(a, []) if i > after), None)
        out[a] = nxt
        after = 1 << 30 if nxt is None else nxt
    return out


def depth_residual(frames: Sequence[TrackedFrame], p: dict[str, Any]) -> tuple[float | None, float]:
    """(homography residual between the most frontal frame and the most turned one, their yaw difference).

    None when the burst has no pair of frames whose yaw differs by `depth_min_yaw_degrees`.
    """
    found = [f for f in frames if f.pose is not None and f.mesh is not None]
    if len(found) < 2:
        return None, 0.0
    yaws = np.array([f.pose.yaw for f in found if f.pose])
    rest = float(np.median(yaws))
    ref = found[int(np.argmin(np.abs(yaws - rest)))]
    far = found[int(np.argmax(np.abs(yaws - rest)))]
    spread = abs((far.pose.yaw if far.pose else 0.0) - (ref.pose.yaw if ref.pose else 0.0))
    if spread < p["depth_min_yaw_degrees"] or ref.mesh is None or far.mesh is None:
        return None, spread
    pts = list(RIGID_POINTS)
    return homography_residual(ref.mesh.points[pts, :2], far.mesh.points[pts, :2]), spread


def _timestamps_ok(frames: Sequence[TrackedFrame], p: dict[str, Any]) -> tuple[bool, dict[str, float]]:
    t = np.array([f.timestamp_ms if f.timestamp_ms is not None else np.nan for f in frames], dtype=np.float64)
    if len(t) < 2 or np.isnan(t).any():
        return False, {}
    dt = np.diff(t)
    duration = float(t[-1] - t[0])
    fps = 1000.0 * (len(t) - 1) / duration if duration > 0 else float("inf")
    ok = bool(
        (dt > 0).all()
        and dt.max() <= p["max_gap_ms"]
        and p["min_fps"] <= fps <= p["max_fps"]
        and duration <= p["max_duration_ms"]
    )
    return ok, {"fps": round(fps, 2), "duration_ms": duration, "max_gap_ms": float(dt.max())}


def best_frame(frames: Sequence[TrackedFrame], p: dict[str, Any]) -> int | None:
    """The index of the most frontal frame with a usable quality, None if none is frontal enough."""
    found = [f for f in frames if f.pose is not None and f.quality is not None and f.quality.ok]
    if not found:
        return None
    # The quality yaw (nose offset between the eyes, -1..1) says how frontal a frame is; ties go to the earliest.
    cost = [abs(f.quality.measures["yaw"]) if f.quality else 1.0 for f in found]
    k = int(np.argmin(cost))
    if cost[k] > p["frontal_max_abs_yaw"]:
        return None
    return found[k].index


def judge(ev: Evidence, params: dict[str, Any]) -> Decision:
    """The decision on one burst (see the module docstring for the reasons)."""
    p = params
    validate_actions(ev.actions)
    reasons: list[str] = []
    details: dict[str, Any] = {"frames": len(ev.frames)}
    frames = list(ev.frames)
    if len(frames) < p["min_frames"]:
        return Decision("retry", ["too_few_frames"], details)
    ts_ok, ts = _timestamps_ok(frames, p)
    details.update(ts)
    if not ts_ok:
        reasons.append("timestamps_implausible")
    with_face = [f for f in frames if f.track_id is not None]
    details["face_fraction"] = round(len(with_face) / len(frames), 3)
    if len(with_face) / len(frames) < p["min_face_fraction"]:
        reasons.append("face_lost")
    tracks = {f.track_id for f in with_face}
    details["tracks"] = len(tracks)
    if len(tracks) > 1:
        reasons.append("track_cut")
    if any(f.faces > 1 for f in frames):
        reasons.append("multiple_faces")

    if ev.pad_scores:
        pad = float(np.median(ev.pad_scores))
        details["pad_score"] = round(pad, 4)
        if pad < p["pad_threshold"]:
            reasons.append("pad_score_low")
    else:
        reasons.append("face_lost")

    residual, spread = depth_residual(frames, p)
    details["yaw_spread"] = round(spread, 1)
    if residual is not None:
        details["depth_residual"] = round(residual, 4)
        if residual < p["depth_min_residual"]:
            reasons.append("planar_motion")

    pairs = max(len(frames) - 1, 1)
    details["duplicate_fraction"] = round(ev.duplicate_pairs / pairs, 3)
    if ev.duplicate_pairs / pairs > p["max_duplicate_fraction"]:
        reasons.append("frames_duplicated")
    if ev.enrolment_copy is not None:
        details["enrolment_copy"] = round(ev.enrolment_copy, 4)
        if ev.enrolment_copy >= p["enrolment_copy_threshold"]:
            reasons.append("enrolment_photo")

    if ev.identity_similarity is not None:
        details["identity_similarity"] = round(ev.identity_similarity, 4)
        if ev.identity_similarity < p["identity_threshold"]:
            reasons.append("identity_changed")
    best = best_frame(frames, p)
    if best is None:
        reasons.append("no_frontal_frame")

    seen = detect_actions(frames, p)
    met = challenge_met(seen, ev.actions)
    if any(v is None for v in met.values()):
        reasons.append("challenge_not_met")

    reasons = list(dict.fromkeys(reasons))
    ordered = [r for r in SPOOF_REASONS if r in reasons] + [r for r in RETRY_REASONS if r in reasons]
    if any(r in SPOOF_REASONS for r in ordered):
        decision = "spoof"
    elif ordered:
        decision = "retry"
    else:
        decision = "live"
    return Decision(decision, ordered, details, met, best)

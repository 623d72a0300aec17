"""Exam proctoring: a pure incident state machine over per-frame observations (no model, no image).

FaceEngine.proctor tracks a batch of frames, measures each one (face or not, head pose, frame exposure, how many
comparable faces, and on some frames an identity similarity or a passive PAD score) into an `Observation`, and
calls `advance` for each in order. Every threshold comes from the manifest's `proctoring` section (`params`).

The state is a JSON-serialisable dict (counters, timestamps and the runs of conditions in progress; never an
image, an embedding or landmarks), so a service can store it between batches and apply batches exactly once.

Rules (N, limits and counts from `params`):
  face_absent                no face on a frame that is not dark, for >= face_absent_s                (technical)
  camera_obstructed_or_dark  the whole frame is dark (mean grey < dark_brightness) or featureless
                             (grey standard deviation < obstructed_std), for >= dark_s                (technical)
  multiple_faces             more than one comparable face (the engine's bystander rule), for >= multiple_faces_s
  looking_away               |yaw| > yaw_limit_deg or |pitch| > pitch_limit_deg, for >= looking_away_s
  different_person           identity_failures_needed consecutive identity checks below the threshold (checks
                             run every identity_every_frames frames, on the first usable frame of every new
                             track, and again on the next usable frame after a failure)
  presentation_attack        pad_failures_needed consecutive passive PAD checks below pad_threshold
A duration condition keeps its run through short gaps (<= merge_gap_s) and needs at least min_frames frames, so
one bad frame is never an incident. An incident is reported from the batch in which it reaches its threshold,
then whenever it is extended, and once more when it closes (`open` False).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

INCIDENT_TYPES = (
    "face_absent",
    "multiple_faces",
    "different_person",
    "looking_away",
    "camera_obstructed_or_dark",
    "presentation_attack",
)
TECHNICAL = frozenset({"face_absent", "camera_obstructed_or_dark"})  # never blame the candidate
GUIDANCE = (
    "more_light",
    "move_closer",
    "move_back",
    "face_the_camera",
    "only_one_face",
    "uncover_camera",
    "centre_your_face",
)  # stable codes; UI text lives in the service
DURATION_TYPES = ("face_absent", "camera_obstructed_or_dark", "multiple_faces", "looking_away")
CHECK_TYPES = ("different_person", "presentation_attack")
STATE_VERSION = 1
TOTALS = (
    "frames",
    "frames_with_face",
    "frames_dark",
    "identity_checks",
    "identity_failures",
    "pad_checks",
    "pad_failures",
    "tracks",
)


@dataclass(frozen=True)
class Incident:
    """A flagged period for human review (never a verdict); times are the client's frame timestamps in ms."""

    incident_id: str  # deterministic: f"{type}-{start_frame_index}" (stable across retries/replays)
    type: str  # one of INCIDENT_TYPES
    start_ts: float
    end_ts: float  # the last frame seen in the condition so far
    frames: int  # frames in the condition
    confidence: float  # 0..1
    model_version: str  # engine model id@version
    open: bool  # still ongoing at the end of the batch

    def to_dict(self) -> dict[str, Any]:
        """The fields as a plain JSON-ready dict (Incident(**d) rebuilds it)."""
        return asdict(self)

    @property
    def technical(self) -> bool:
        """A technical condition (TECHNICAL): guidance for the candidate, never a flag against them."""
        return self.type in TECHNICAL


@dataclass(frozen=True)
class ProctorUpdate:
    """The result of one batch: the new state, the incidents opened or updated by it, guidance and statistics."""

    state: dict[str, Any]
    incidents: list[Incident]
    guidance: list[str]
    stats: dict[str, int | float]


@dataclass(frozen=True)
class Observation:
    """What the engine measured on one frame (numbers only).

    `faces`: comparable faces counted on this frame (None when not counted: the last count holds);
    `identity`: similarity to the enrolled template when checked; `pad`: passive real-face score when checked;
    `brightness` / `contrast`: mean and standard deviation of the whole frame's grey levels (0..255);
    `face_size`: the face box's longer side over the frame's longer side (None without a face).
    """

    index: int
    ts: float
    face: bool
    faces: int | None = None
    yaw: float | None = None
    pitch: float | None = None
    brightness: float = 128.0
    contrast: float = 60.0
    identity: float | None = None
    pad: float | None = None
    face_too_dark: bool = False
    face_size: float | None = None
    new_track: bool = False


def new_state() -> dict[str, Any]:
    """The state of a session before its first batch."""
    return {
        "version": STATE_VERSION,
        "frames": 0,
        "last_ts": None,
        "faces_seen": 0,
        "since_identity": 0,
        "identity_pending": True,
        "since_pad": 0,
        "pad_pending": True,
        "since_faces": 0,
        "runs": {},
        "totals": {k: 0 for k in TOTALS},
    }


def model_tag(model_id: str, model_version: str) -> str:
    """The `model_version` string incidents carry."""
    return f"{model_id}@{model_version}"


# -- per-frame conditions -------------------------------------------------------------------------------------


def is_dark(obs: Observation, p: dict[str, Any]) -> bool:
    """The whole frame is too dark or featureless (a covered lens, a blank screen): a technical condition."""
    return obs.brightness < float(p["dark_brightness"]) or obs.contrast < float(p["obstructed_std"])


def is_turned(obs: Observation, p: dict[str, Any]) -> bool:
    """The head is turned or tilted beyond the limits."""
    if not obs.face or obs.yaw is None or obs.pitch is None:
        return False
    return abs(obs.yaw) > float(p["yaw_limit_deg"]) or abs(obs.pitch) > float(p["pitch_limit_deg"])


def conditions(obs: Observation, faces_seen: int, p: dict[str, Any]) -> dict[str, bool]:
    """The duration conditions of one frame (faces_seen: the last count of comparable faces)."""
    dark = is_dark(obs, p)
    return {
        "camera_obstructed_or_dark": dark,
        "face_absent": not obs.face and not dark,
        "multiple_faces": obs.face and faces_seen >= 2,
        "looking_away": is_turned(obs, p),
    }


def guidance(obs: Observation, faces_seen: int, p: dict[str, Any]) -> list[str]:
    """Guidance codes for the candidate from one frame (in GUIDANCE order)."""
    out: set[str] = set()
    if obs.brightness < float(p["dark_brightness"]) or obs.face_too_dark:
        out.add("more_light")
    elif obs.contrast < float(p["obstructed_std"]):
        out.add("uncover_camera")
    elif not obs.face:
        out.add("centre_your_face")
    if obs.face:
        if faces_seen >= 2:
            out.add("only_one_face")
        if is_turned(obs, p):
            out.add("face_the_camera")
        if obs.face_size is not None and obs.face_size < float(p["min_face_size"]):
            out.add("move_closer")
        if obs.face_size is not None and obs.face_size > float(p["max_face_size"]):
            out.add("move_back")
    return [g for g in GUIDANCE if g in out]


# -- the state machine ------------------------------------------------------------------------------------------


def _new_run(obs: Observation) -> dict[str, Any]:
    return {
        "start_ts": obs.ts,
        "start_index": obs.index,
        "last_ts": obs.ts,
        "frames": 1,
        "span": 1,
        "gap": 0,
        "checks": 0,
        "margin": 0.0,
        "opened": False,
        "reported_end": None,
    }


def _reached(kind: str, run: dict[str, Any], p: dict[str, Any]) -> bool:
    if kind in CHECK_TYPES:
        needed = p["identity_failures_needed"] if kind == "different_person" else p["pad_failures_needed"]
        return int(run["checks"]) >= int(needed)
    seconds = float(p[f"{_duration_key(kind)}"])
    return run["frames"] >= int(p["min_frames"]) and (run["last_ts"] - run["start_ts"]) >= seconds * 1000.0


def _duration_key(kind: str) -> str:
    return {
        "face_absent": "face_absent_s",
        "camera_obstructed_or_dark": "dark_s",
        "multiple_faces": "multiple_faces_s",
        "looking_away": "looking_away_s",
    }[kind]


def _confidence(kind: str, run: dict[str, Any]) -> float:
    """Duration types: the share of the run's frames in the condition; check types: the mean margin of the failed
    checks below their threshold, relative to the threshold."""
    if kind in CHECK_TYPES:
        value = run["margin"] / max(int(run["checks"]), 1)
    else:
        value = run["frames"] / max(int(run["span"]), 1)
    return round(min(1.0, max(0.0, float(value))), 4)


def _incident(kind: str, run: dict[str, Any], model_version: str, is_open: bool) -> Incident:
    return Incident(
        incident_id=f"{kind}-{run['start_index']}",
        type=kind,
        start_ts=float(run["start_ts"]),
        end_ts=float(run["last_ts"]),
        frames=int(run["frames"]),
        confidence=_confidence(kind, run),
        model_version=model_version,
        open=is_open,
    )


def _close(state: dict[str, Any], kind: str, model_version: str, changed: dict[str, Incident]) -> None:
    run = state["runs"].pop(kind)
    if run["opened"]:
        changed[f"{kind}-{run['start_index']}"] = _incident(kind, run, model_version, False)


def _mark(
    state: dict[str, Any], kind: str, p: dict[str, Any], model_version: str, changed: dict[str, Incident]
) -> None:
    run = state["runs"][kind]
    if not run["opened"] and _reached(kind, run, p):
        run["opened"] = True
    if run["opened"] and run["reported_end"] != run["last_ts"]:
        run["reported_end"] = run["last_ts"]
        changed[f"{kind}-{run['start_index']}"] = _incident(kind, run, model_version, True)


def advance(state: dict[str, Any], obs: Observation, p: dict[str, Any], model_version: str) -> list[Incident]:
    """Apply one observation to `state` (in place); the incidents it opened, extended or closed."""
    changed: dict[str, Incident] = {}
    runs: dict[str, dict[str, Any]] = state["runs"]
    totals = state["totals"]
    totals["frames"] += 1
    totals["frames_with_face"] += int(obs.face)
    totals["tracks"] += int(obs.new_track)
    if obs.faces is not None:
        state["faces_seen"] = int(obs.faces)
    elif not obs.face:
        state["faces_seen"] = 0
    cond = conditions(obs, int(state["faces_seen"]), p)
    totals["frames_dark"] += int(cond["camera_obstructed_or_dark"])
    gap_ms = float(p["merge_gap_s"]) * 1000.0
    for kind in DURATION_TYPES:
        run = runs.get(kind)
        if cond[kind]:
            if run is None:
                runs[kind] = _new_run(obs)
            else:
                run["frames"] += 1
                run["span"] += run["gap"] + 1  # clean frames inside the run count against its confidence
                run["gap"] = 0
                run["last_ts"] = obs.ts
            _mark(state, kind, p, model_version, changed)
        elif run is not None:
            if obs.ts - run["last_ts"] > gap_ms:
                _close(state, kind, model_version, changed)
            else:
                run["gap"] += 1
    # Checks: a failure starts or extends a run, a pass closes it; unchecked frames with a face extend an open run.
    checks = (
        ("different_person", obs.identity, float(p["identity_threshold"]), "identity"),
        ("presentation_attack", obs.pad, float(p["pad_threshold"]), "pad"),
    )
    for kind, score, threshold, name in checks:
        run = runs.get(kind)
        if score is None:
            if run is not None and obs.face:
                run["frames"] += 1
                run["span"] += 1
                run["last_ts"] = obs.ts
                _mark(state, kind, p, model_version, changed)
            continue
        totals[f"{name}_checks"] += 1
        if score >= threshold:
            if run is not None:
                _close(state, kind, model_version, changed)
            continue
        totals[f"{name}_failures"] += 1
        if run is None:
            run = runs[kind] = _new_run(obs)
        else:
            run["frames"] += 1
            run["span"] += 1
            run["last_ts"] = obs.ts
        run["checks"] += 1
        run["margin"] += (threshold - score) / max(threshold, 1e-9)
        _mark(state, kind, p, model_version, changed)
    state["frames"] = obs.index + 1
    state["last_ts"] = obs.ts
    return list(changed.values())


def finish(state: dict[str, Any], model_version: str) -> list[Incident]:
    """Close every run: the incidents that were open, now closed (runs below their threshold are dropped)."""
    changed: dict[str, Incident] = {}
    for kind in [k for k in INCIDENT_TYPES if k in state["runs"]]:
        _close(state, kind, model_version, changed)
    return list(changed.values())


def merge_incidents(earlier: list[Incident], later: list[Incident]) -> list[Incident]:
    """The latest version of each incident, in order of first appearance."""
    out: dict[str, Incident] = {}
    for inc in [*earlier, *later]:
        out[inc.incident_id] = inc
    return list(out.values())


def check_state(state: dict[str, Any]) -> None:
    """Raise ValueError unless `state` looks like a state of this version (a stored state from elsewhere)."""
    if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
        raise ValueError("not a proctoring state of this engine version")
    for key in ("frames", "runs", "totals", "since_identity", "since_pad", "since_faces"):
        if key not in state:
            raise ValueError(f"proctoring state lacks {key}")
    last = state.get("last_ts")
    if last is not None and (not isinstance(last, int | float) or not math.isfinite(float(last))):
        raise ValueError("proctoring state has a bad last_ts")

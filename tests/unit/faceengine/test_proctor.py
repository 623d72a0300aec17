"""The proctoring incident rules (faceengine.proctor), a pure state machine, on hand-built observations.

The thresholds are the shipped manifest's `proctoring` section, so these tests also pin what the data says."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from faceengine import proctor
from faceengine.engine import FaceEngine
from faceengine.proctor import Observation

pytestmark = pytest.mark.unit

TAG = "facegate-test@1"
STEP = 2000.0  # the capture policy: one frame every 2 s


@pytest.fixture(scope="module")
def params() -> dict[str, Any]:
    return FaceEngine.load().proctoring_params()


def good(index: int, **kw: Any) -> Observation:
    """A frame of the candidate, alone, facing the camera, in good light (identity/PAD not checked)."""
    base = Observation(index=index, ts=index * STEP, face=True, faces=1, yaw=3.0, pitch=-2.0, face_size=0.4)
    return replace(base, **kw)


def run(observations: list[Observation], params: dict[str, Any], state: dict | None = None) -> tuple[dict, list]:
    """Advance over the observations, then end the session; every incident version seen, latest wins."""
    st = proctor.new_state() if state is None else state
    seen: list[proctor.Incident] = []
    for obs in observations:
        seen = proctor.merge_incidents(seen, proctor.advance(st, obs, params, TAG))
    seen = proctor.merge_incidents(seen, proctor.finish(st, TAG))
    return st, seen


def spans(frames: int, start: int, make: Any) -> list[Observation]:
    return [make(start + k) for k in range(frames)]


BAD_FRAMES = {
    "face_absent": lambda i: Observation(index=i, ts=i * STEP, face=False),
    "camera_obstructed_or_dark": lambda i: Observation(index=i, ts=i * STEP, face=False, brightness=5.0, contrast=2.0),
    "multiple_faces": lambda i: good(i, faces=2),
    "looking_away": lambda i: good(i, yaw=55.0),
}


@pytest.mark.parametrize("kind", sorted(BAD_FRAMES))
def test_one_bad_frame_is_never_an_incident(params: dict, kind: str) -> None:
    # Given a clean session with a single bad frame in the middle (even far from its neighbours in time)
    obs = [*spans(5, 0, good), BAD_FRAMES[kind](5), *spans(5, 6, good)]
    obs[5] = replace(obs[5], ts=obs[4].ts + 100.0)
    # When the machine runs
    _, incidents = run(obs, params)
    # Then nothing is flagged
    assert incidents == []


@pytest.mark.parametrize("kind", sorted(BAD_FRAMES))
def test_a_sustained_condition_is_one_incident_with_its_times(params: dict, kind: str) -> None:
    # Given 10 clean frames, 6 bad frames (10 s at one frame every 2 s, above every N), 10 clean frames
    obs = [*spans(10, 0, good), *spans(6, 10, BAD_FRAMES[kind]), *spans(10, 16, good)]
    # When the machine runs
    _, incidents = run(obs, params)
    # Then exactly one incident of that type covers the bad frames, closed, with a deterministic id
    assert [i.type for i in incidents] == [kind]
    inc = incidents[0]
    assert (inc.start_ts, inc.end_ts, inc.frames, inc.open) == (10 * STEP, 15 * STEP, 6, False)
    assert inc.incident_id == f"{kind}-10"
    assert inc.confidence == 1.0
    assert inc.technical == (kind in proctor.TECHNICAL)
    assert proctor.Incident(**json.loads(json.dumps(inc.to_dict()))) == inc


def test_a_condition_shorter_than_its_duration_is_not_an_incident(params: dict) -> None:
    # Given no face for a little less than face_absent_s (frames 2 s apart)
    n = int(params["face_absent_s"] * 1000 // STEP)  # frames spanning (n - 1) * 2 s < N s
    obs = [*spans(3, 0, good), *spans(n, 3, BAD_FRAMES["face_absent"]), *spans(5, 3 + n, good)]
    # Then nothing; one frame more would reach it
    assert run(obs, params)[1] == []
    obs = [*spans(3, 0, good), *spans(n + 1, 3, BAD_FRAMES["face_absent"]), *spans(5, 4 + n, good)]
    assert [i.type for i in run(obs, params)[1]] == ["face_absent"]


def test_a_dark_frame_is_technical_not_an_absence(params: dict) -> None:
    # Given a covered or dark camera (no face can be seen)
    obs = [*spans(2, 0, good), *spans(8, 2, BAD_FRAMES["camera_obstructed_or_dark"]), *spans(4, 10, good)]
    _, incidents = run(obs, params)
    # Then it is camera_obstructed_or_dark only, and technical
    assert [i.type for i in incidents] == ["camera_obstructed_or_dark"]
    assert incidents[0].type in proctor.TECHNICAL


def test_a_short_good_gap_does_not_split_an_incident(params: dict) -> None:
    # Given the head turned away for 12 s, one frontal frame, and 12 s more
    away = BAD_FRAMES["looking_away"]
    obs = [*spans(3, 0, good), *spans(6, 3, away), good(9), *spans(6, 10, away), *spans(5, 16, good)]
    _, incidents = run(obs, params)
    # Then one incident spans both, its confidence the share of frames in the condition
    assert [(i.type, i.start_ts, i.end_ts, i.frames) for i in incidents] == [("looking_away", 3 * STEP, 15 * STEP, 12)]
    assert incidents[0].confidence == pytest.approx(12 / 13, abs=1e-3)


def test_pitch_beyond_its_limit_is_looking_away(params: dict) -> None:
    limit = params["pitch_limit_deg"]
    obs = [*spans(2, 0, good), *spans(6, 2, lambda i: good(i, pitch=-(limit + 8))), *spans(4, 8, good)]
    assert [i.type for i in run(obs, params)[1]] == ["looking_away"]


def test_one_failed_identity_check_is_not_a_different_person(params: dict) -> None:
    thr = params["identity_threshold"]
    # Given one failed check between passing ones
    obs = [good(0, identity=thr + 0.2), good(1, identity=thr - 0.3), good(2, identity=thr + 0.2), *spans(5, 3, good)]
    _, incidents = run(obs, params)
    # Then no incident, but the statistics count the failure
    assert incidents == []


def test_consecutive_failed_identity_checks_are_a_different_person(params: dict) -> None:
    thr = params["identity_threshold"]
    need = int(params["identity_failures_needed"])
    # Given a new track whose checks fail `need` times in a row (unchecked frames between), then a pass
    obs = [good(0, identity=thr + 0.3)]
    obs += [good(1 + k, identity=thr - 0.4, new_track=k == 0) for k in range(need)]
    obs += [good(1 + need), good(2 + need, identity=thr + 0.3), good(3 + need)]
    st, incidents = run(obs, params)
    # Then one different_person incident from the first failure to the last frame before the pass
    assert [(i.type, i.start_ts, i.end_ts, i.open) for i in incidents] == [
        ("different_person", 1 * STEP, (1 + need) * STEP, False)
    ]
    assert incidents[0].confidence == pytest.approx(0.4 / thr, abs=1e-3)
    assert st["totals"]["identity_failures"] == need


def test_consecutive_low_pad_scores_are_a_presentation_attack(params: dict) -> None:
    thr, need = params["pad_threshold"], int(params["pad_failures_needed"])
    # Given need - 1 low scores, a good one, then need low scores
    obs = [good(k, pad=thr / 10) for k in range(need - 1)] + [good(need - 1, pad=0.9)]
    obs += [good(need + k, pad=0.0) for k in range(need)] + [good(2 * need, pad=0.9)]
    _, incidents = run(obs, params)
    # Then exactly one presentation_attack, starting at the second run
    assert [(i.type, i.start_ts) for i in incidents] == [("presentation_attack", need * STEP)]
    assert incidents[0].confidence == 1.0


def test_an_open_incident_is_reported_open_then_closed_at_the_end(params: dict) -> None:
    st = proctor.new_state()
    # Given frames without a face until the batch ends
    changed = []
    for obs in spans(6, 0, BAD_FRAMES["face_absent"]):
        changed = proctor.merge_incidents(changed, proctor.advance(st, obs, params, TAG))
    # Then the batch reports it open; ending the session closes it with the same id
    assert [(i.incident_id, i.open) for i in changed] == [("face_absent-0", True)]
    closed = proctor.finish(st, TAG)
    assert [(i.incident_id, i.open, i.end_ts) for i in closed] == [("face_absent-0", False, 5 * STEP)]


def test_the_state_round_trips_through_json_and_holds_no_arrays(params: dict) -> None:
    # Given a session cut in two, the state serialised to JSON and back between the halves
    thr = params["identity_threshold"]
    obs = [*spans(4, 0, good), *spans(5, 4, BAD_FRAMES["multiple_faces"]), good(9, identity=thr - 0.3)]
    obs += [good(10, identity=thr - 0.3), *spans(6, 11, BAD_FRAMES["face_absent"]), *spans(3, 17, good)]
    whole_state, whole = run(obs, params)
    st = proctor.new_state()
    first = []
    for o in obs[:8]:
        first = proctor.merge_incidents(first, proctor.advance(st, o, params, TAG))
    text = json.dumps(st, allow_nan=False)
    st2 = json.loads(text)
    assert st2 == st and len(text) < 16_000
    # Then continuing from the decoded state gives the same incidents as the uninterrupted run
    _, second = run(obs[8:], params, st2)
    assert proctor.merge_incidents(first, second) == whole
    assert {i.type for i in whole} == {"multiple_faces", "different_person", "face_absent"}

    # And the state holds only scalars and dicts of scalars (no lists: no landmarks, no embeddings)
    def scalars(v: Any) -> bool:
        if isinstance(v, dict):
            return all(scalars(x) for x in v.values())
        return v is None or isinstance(v, str | int | float | bool)

    assert scalars(whole_state)


def test_guidance_codes(params: dict) -> None:
    # Each condition gives its stable code
    assert proctor.guidance(Observation(index=0, ts=0.0, face=False, brightness=10.0), 0, params) == ["more_light"]
    assert proctor.guidance(Observation(index=0, ts=0.0, face=False, brightness=120.0, contrast=1.0), 0, params) == [
        "uncover_camera"
    ]
    assert proctor.guidance(Observation(index=0, ts=0.0, face=False), 0, params) == ["centre_your_face"]
    assert proctor.guidance(good(0, yaw=60.0), 1, params) == ["face_the_camera"]
    assert proctor.guidance(good(0), 2, params) == ["only_one_face"]
    assert proctor.guidance(good(0, face_size=0.05), 1, params) == ["move_closer"]
    assert proctor.guidance(good(0, face_size=0.95), 1, params) == ["move_back"]
    assert proctor.guidance(good(0, face_too_dark=True), 1, params) == ["more_light"]
    assert proctor.guidance(good(0), 1, params) == []
    assert set(proctor.GUIDANCE) >= {"more_light", "uncover_camera", "centre_your_face"}


def test_the_thresholds_are_data(params: dict) -> None:
    # Every rule's threshold is in the manifest's proctoring section; identity uses the shipped `high` level
    engine = FaceEngine.load()
    for key in ("face_absent_s", "multiple_faces_s", "looking_away_s", "yaw_limit_deg", "pitch_limit_deg", "dark_s"):
        assert key in engine.manifest["proctoring"]
    assert params["identity_threshold"] == engine.threshold(1e-3)

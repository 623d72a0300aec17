"""Liveness over HTTP on the local cloud as `make run` starts it (seeded purposes keep the default `required`)."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from evaluate_liveness import genuine_bursts

from localcloud.process import RunningCloud, running

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
TURNS = {("turn_left", "turn_right"), ("turn_right", "turn_left")}


@pytest.fixture(scope="module")
def cloud() -> Iterator[RunningCloud]:
    with running() as local:
        yield local


def call(cloud: RunningCloud, method: str, path: str, body: Any, token: str) -> tuple[int, Any]:
    request = urllib.request.Request(cloud.base + path, data=json.dumps(body).encode(), method=method)
    request.add_header("content-type", "application/json")
    request.add_header("authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def burst(session_id: str, frames: list[bytes]) -> dict[str, Any]:
    return {
        "session_id": session_id,
        "frames": [b64(f) for f in frames],
        "timestamps_ms": [k * 100.0 for k in range(len(frames))],
    }


def session(
    cloud: RunningCloud, token: str, subject: str, wanted: set[tuple[str, ...]] | None = None
) -> dict[str, Any]:
    for _ in range(200):
        status, s = call(cloud, "POST", "/v1/liveness/sessions", {"subject_id": subject, "purpose": "checkout"}, token)
        assert status == 201, s
        if wanted is None or tuple(s["challenge"]["actions"]) in wanted:
            return s
    raise AssertionError("no session with the wanted challenge in 200 tries")


def test_liveness_over_http(cloud: RunningCloud, shared_dir: Path) -> None:
    token = cloud.token("demo")
    notes = json.loads((REPO / "tests" / "fixtures" / "clips.json").read_text())["clips"]
    turns = {name: frames for name, frames, _ in genuine_bursts(shared_dir, notes) if "turns_a" in name}

    def frames_for(actions: tuple[str, ...], shift: int) -> list[bytes]:
        return turns[f"turns_a {'L>R' if actions == ('turn_left', 'turn_right') else 'R>L'} +{shift}"]

    subject = f"e2e-live-{uuid.uuid4().hex[:8]}"
    request = urllib.request.Request(cloud.base + "/v1/notices/checkout?locale=en")
    request.add_header("authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=30) as response:
        notice = json.loads(response.read())
    consent = {
        "purpose": "checkout",
        "notice_version": notice["version"],
        "notice_sha256": notice["sha256"],
        "decision": "granted",
        "channel": "web",
        "locale": "en",
        "age_band": "adult",
    }
    assert call(cloud, "POST", f"/v1/subjects/{subject}/consents", consent, token)[0] == 201
    still = sorted((shared_dir / "clips" / "turns_a").glob("*.jpg"))[180].read_bytes()

    # The seeded purpose keeps the default: a single photo is refused, for enrolment and for verification
    status, refused = call(
        cloud, "POST", f"/v1/subjects/{subject}/enrolments", {"purpose": "checkout", "image": b64(still)}, token
    )
    assert status == 403 and refused["code"] == "liveness_required" and refused["methods"], refused
    one_photo = {"subject_id": subject, "purpose": "checkout", "image": b64(still)}
    status, refused = call(cloud, "POST", "/v1/verifications", one_photo, token)
    assert status == 403 and refused["code"] == "liveness_required", refused

    # Enrol from a live challenge, then a live challenge matches
    s = session(cloud, token, subject, TURNS)
    body = {"purpose": "checkout", "liveness": burst(s["session_id"], frames_for(tuple(s["challenge"]["actions"]), 0))}
    status, enrolled = call(cloud, "POST", f"/v1/subjects/{subject}/enrolments", body, token)
    assert status == 201 and enrolled["status"] == "completed", enrolled
    s = session(cloud, token, subject, TURNS)
    body = {
        "subject_id": subject,
        "purpose": "checkout",
        "liveness": burst(s["session_id"], frames_for(tuple(s["challenge"]["actions"]), 4)),
    }
    status, result = call(cloud, "POST", "/v1/verifications", body, token)
    assert status == 200 and result["liveness"]["decision"] == "live" and result["decision"] == "match", result

    # A printed photo and the screen replay never match
    seq = sorted((shared_dir / "pad" / "attack" / "0001").iterdir())[0]
    printed = [f.read_bytes() for f in sorted(seq.glob("*.jpg"))]
    replay_files = sorted((shared_dir / "clips" / "replay_a").glob("*.jpg"))
    replay = [replay_files[i].read_bytes() for i in range(40, 140, 4)]
    for frames in (printed, replay, [still] * 20):
        s = session(cloud, token, subject)
        body = {"subject_id": subject, "purpose": "checkout", "liveness": burst(s["session_id"], frames)}
        status, result = call(cloud, "POST", "/v1/verifications", body, token)
        assert status == 200 and result["decision"] == "no_match" and result["liveness"]["decision"] == "spoof", result

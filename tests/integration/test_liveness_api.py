"""Liveness through the real handlers: sessions, the per-purpose policy, a burst judged and verified in one call.

Real models on real frames: genuine challenge bursts are composed from ../shared/clips with the annotations of
tests/fixtures/clips.json, exactly as tools/evaluate_liveness.py composes them (its helpers are reused); attacks are
NUAA print sequences (../shared/pad/attack), the screen replay replay_a, and still photos sent as a burst.
"""

from __future__ import annotations

import base64
import io
import json
import random
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import jwt
import numpy as np
import pytest
from evaluate_liveness import genuine_bursts, jitter
from PIL import Image

from facegate import wiring
from facegate.consent.entities import Notice, Purpose, notice_sha256
from facegate.core.clock import iso, utcnow
from facegate.liveness.entities import ACTIONS, MAX_BURST_BASE64, MAX_FRAMES, SESSION_SECONDS
from localcloud.cloud import LocalCloud
from localcloud.seed import notice_content
from tests.integration.conftest import Api
from tests.integration.test_enrolment_api import grant

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
LIVE = "checkout_live"  # a purpose of this module only: its liveness policy is never set, so it is `required`
TURNS = {("turn_left", "turn_right"), ("turn_right", "turn_left")}
STEP_MS = 100.0


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def times(n: int) -> list[float]:
    return [k * STEP_MS for k in range(n)]


@pytest.fixture(scope="module")
def live_purpose(cloud: LocalCloud) -> str:
    """A new purpose (as onboarding creates one), with the checkout notice texts; no liveness policy written."""
    tenants = wiring.container().tenants
    tenants.put_purpose("demo", Purpose(name=LIVE, display_name="Checkout with liveness", retention_days=365))
    for locale in ("en", "zh-CN"):
        if tenants.latest_notice("demo", LIVE, locale) is None:
            content = notice_content("demo", "checkout", locale).model_dump(mode="json")
            tenants.add_notice(
                "demo",
                Notice(LIVE, locale, 1, notice_sha256(LIVE, locale, 1, content), content, iso(utcnow())),
                created_by="test",
            )
    return LIVE


@pytest.fixture(scope="module")
def bursts(shared_dir: Path) -> dict[str, tuple[list[bytes], list[str]]]:
    """The genuine turn challenges of turns_a, composed as the evaluation composes them."""
    notes = json.loads((REPO / "tests" / "fixtures" / "clips.json").read_text())["clips"]
    return {name: (frames, actions) for name, frames, actions in genuine_bursts(shared_dir, notes) if "turns_a" in name}


def clip(shared_dir: Path, name: str) -> list[Path]:
    return sorted((shared_dir / "clips" / name).glob("*.jpg"))


def session(api: Api, subject_id: str, purpose: str, wanted: set[tuple[str, ...]] | None = None) -> dict[str, Any]:
    """A liveness session; with `wanted`, new sessions until the random challenge is one of them (the clips show
    one person doing both turns, not a turn and a blink: 2 of the 12 challenges, so about 6 tries)."""
    for _ in range(200):
        reply = api.call("POST", "/v1/liveness/sessions", {"subject_id": subject_id, "purpose": purpose})
        assert reply.status == 201, reply.body
        if wanted is None or tuple(reply.json["challenge"]["actions"]) in wanted:
            return reply.json
    raise AssertionError("no session with the wanted challenge in 200 tries")


def burst_body(session_id: str, frames: list[bytes], timestamps: list[float] | None = None) -> dict[str, Any]:
    return {
        "session_id": session_id,
        "frames": [b64(f) for f in frames],
        "timestamps_ms": timestamps if timestamps is not None else times(len(frames)),
    }


def verify(api: Api, subject_id: str, purpose: str, liveness: Any = None, image: bytes | None = None) -> Any:
    body: dict[str, Any] = {"subject_id": subject_id, "purpose": purpose, "security_level": "high"}
    if liveness is not None:
        body["liveness"] = liveness
    if image is not None:
        body["image"] = b64(image)
    return api.call("POST", "/v1/verifications", body)


def turns_burst(bursts: dict[str, tuple[list[bytes], list[str]]], actions: tuple[str, ...], shift: int) -> list[bytes]:
    order = "L>R" if actions == ("turn_left", "turn_right") else "R>L"
    frames, performed = bursts[f"turns_a {order} +{shift}"]
    assert tuple(performed) == actions
    return frames


def enrol_live(api: Api, subject_id: str, purpose: str, bursts: dict[str, tuple[list[bytes], list[str]]]) -> None:
    s = session(api, subject_id, purpose, TURNS)
    frames = turns_burst(bursts, tuple(s["challenge"]["actions"]), 0)
    body = {"purpose": purpose, "liveness": burst_body(s["session_id"], frames)}
    reply = api.call("POST", f"/v1/subjects/{subject_id}/enrolments", body)
    assert reply.status == 201 and reply.json["status"] == "completed", reply.body


@contextmanager
def policy(api: Api, purpose: str, mode: str) -> Iterator[None]:
    """The purpose's liveness policy for a block; `required` again afterwards."""
    body = {"liveness": mode, "liveness_reason": "test: enrol a single reference photo"} if mode == "optional" else {}
    assert api.call("PUT", f"/v1/purposes/{purpose}", body or {"liveness": mode}).status == 200
    try:
        yield
    finally:
        assert api.call("PUT", f"/v1/purposes/{purpose}", {"liveness": "required"}).status == 200


def claims(api: Api, token: str) -> dict[str, Any]:
    key = jwt.PyJWK.from_dict(api.call("GET", "/v1/keys", tenant=None).json["keys"][0])
    return jwt.decode(token, key.key, algorithms=["ES256"], audience="demo")


def attempts(aws: boto3.session.Session, api: Api, subject_id: str, purpose: str) -> int:
    """The subject's counted face attempts in the current lockout window (0 when there is no window)."""
    ref = wiring.container().hasher.ref("demo", subject_id)
    item = aws.client("dynamodb").get_item(
        TableName=api.cloud.stack.ref("SessionsTable"),
        Key={"pk": {"S": f"T#demo#S#{ref}"}, "sk": {"S": f"FACE_ATTEMPTS#{purpose}"}},
        ConsistentRead=True,
    )
    return int(item.get("Item", {}).get("attempts", {}).get("N", 0))


def jpeg(image: np.ndarray[Any, Any]) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


# ---------------------------------------------------------------- sessions and policy


def test_a_session_is_a_random_challenge_of_two_distinct_actions_for_two_minutes(
    api: Api, subject_id: str, live_purpose: str
) -> None:
    seen = set()
    for _ in range(24):
        before = datetime.now(UTC)
        s = session(api, subject_id, live_purpose)
        actions = s["challenge"]["actions"]
        assert len(actions) == 2 and len(set(actions)) == 2 and set(actions) <= set(ACTIONS)
        expires = datetime.fromisoformat(s["expires_at"])
        assert timedelta(seconds=SESSION_SECONDS - 2) <= expires - before <= timedelta(seconds=SESSION_SECONDS + 2)
        assert s["capture"]["max_frames"] == MAX_FRAMES and s["capture"]["max_burst_base64_chars"] == MAX_BURST_BASE64
        assert s["capture"]["fps"] > 0 and s["capture"]["frames"] <= MAX_FRAMES
        seen.add(tuple(actions))
    # 12 possible challenges; 24 draws from a uniform source land on at most 2 of them with probability < 1e-16
    assert len(seen) >= 3, seen
    assert api.call("POST", "/v1/liveness/sessions", {"subject_id": subject_id, "purpose": "nope"}).json["code"] == (
        "purpose_not_found"
    )


def test_required_is_the_default_and_refuses_a_single_photo_offering_the_non_face_methods(
    api: Api, subject_id: str, live_purpose: str, shared_dir: Path
) -> None:
    grant(api, subject_id, live_purpose)
    photo = clip(shared_dir, "turns_a")[180].read_bytes()
    # Given a purpose whose liveness policy was never set
    assert api.call("PUT", f"/v1/purposes/{live_purpose}", {}).json["liveness"] == "required"
    # Then neither an enrolment nor a verification is made from a single photo (nor from an upload)
    for reply in (
        api.call("POST", f"/v1/subjects/{subject_id}/enrolments", {"purpose": live_purpose, "image": b64(photo)}),
        api.call("POST", f"/v1/subjects/{subject_id}/enrolments", {"purpose": live_purpose}),
        verify(api, subject_id, live_purpose, image=photo),
        verify(api, subject_id, live_purpose, liveness="advisory", image=photo),
    ):
        assert reply.status == 403 and reply.json["code"] == "liveness_required", reply.body
        assert "manual_review" in reply.json["methods"] and "email_otp" in reply.json["methods"]


def test_optional_needs_a_reason_and_is_audited(
    api: Api, aws: boto3.session.Session, live_purpose: str, cloud: LocalCloud
) -> None:
    reply = api.call("PUT", f"/v1/purposes/{live_purpose}", {"liveness": "optional"})
    assert reply.status == 422 and reply.json["code"] == "invalid_request"
    assert api.call("PUT", f"/v1/purposes/{live_purpose}", {"liveness_reason": "why not"}).status == 422
    assert api.call("PUT", f"/v1/purposes/{live_purpose}", {}).json["liveness"] == "required"  # nothing changed
    reason = f"kiosk with a supervised camera {random.randrange(10**9)}"
    reply = api.call("PUT", f"/v1/purposes/{live_purpose}", {"liveness": "optional", "liveness_reason": reason})
    assert reply.status == 200 and reply.json["liveness"] == "optional" and reply.json["liveness_reason"] == reason
    assert api.call("PUT", f"/v1/purposes/{live_purpose}", {"liveness": "required"}).json["liveness"] == "required"
    audit = aws.client("dynamodb").scan(TableName=cloud.stack.ref("AuditTable"))["Items"]
    configured = [i for i in audit if i["action"]["S"] == "purpose.liveness_configured"]
    assert any(i["outcome"]["S"] == "optional" and reason in i["details"]["S"] for i in configured)
    # The verify scope cannot change it (admin only)
    verifier = cloud.token("demo", scopes=("verify",))
    assert api.call("PUT", f"/v1/purposes/{live_purpose}", {"liveness": "required"}, token=verifier).status == 403


# ---------------------------------------------------------------- a live challenge


@pytest.mark.slow
def test_a_live_challenge_enrols_and_then_matches_once_with_a_signed_liveness_result(
    api: Api, subject_id: str, live_purpose: str, bursts: dict[str, tuple[list[bytes], list[str]]]
) -> None:
    # Given the turns_a person enrolled from a live burst (the template comes from its best frontal frame)
    grant(api, subject_id, live_purpose)
    enrol_live(api, subject_id, live_purpose, bursts)
    s = session(api, subject_id, live_purpose, TURNS)
    frames = turns_burst(bursts, tuple(s["challenge"]["actions"]), 4)
    # Bad bursts are refused before anything is used up: too many frames, too many bytes, timestamps that do not fit
    too_many = verify(api, subject_id, live_purpose, burst_body(s["session_id"], frames + frames[:11]))
    assert too_many.status == 413 and too_many.json["code"] == "liveness_burst_too_large", too_many.body
    huge = {"session_id": s["session_id"], "frames": ["A" * 200_000] * 26, "timestamps_ms": times(26)}
    assert verify(api, subject_id, live_purpose, huge).json["code"] == "liveness_burst_too_large"
    short = verify(api, subject_id, live_purpose, burst_body(s["session_id"], frames, times(len(frames) - 1)))
    assert short.status == 422 and short.json["code"] == "invalid_request", short.body
    both = verify(api, subject_id, live_purpose, burst_body(s["session_id"], frames), image=frames[0])
    assert both.status == 422 and both.json["code"] == "invalid_request"
    # When the person performs the challenge
    reply = verify(api, subject_id, live_purpose, burst_body(s["session_id"], frames))
    # Then the burst is live and the identity matches, and the signed result says how liveness was judged
    assert reply.status == 200, reply.body
    assert reply.json["liveness"]["decision"] == "live" and reply.json["liveness"]["reasons"] == []
    assert reply.json["decision"] == "match", reply.json
    signed = claims(api, reply.json["result_token"])
    assert signed["decision"] == "match" and signed["method"] == "face"
    assert signed["liveness"] == {
        "decision": "live",
        "method": "active_challenge+passive_pad",
        "actions": s["challenge"]["actions"],
    }
    # And the session cannot be used again
    again = verify(api, subject_id, live_purpose, burst_body(s["session_id"], frames))
    assert again.status == 409 and again.json["code"] == "liveness_session_used"


# ---------------------------------------------------------------- attacks


@pytest.fixture(scope="module")
def enrolled_turns(api_module: Api, live_purpose: str, bursts: dict[str, tuple[list[bytes], list[str]]]) -> str:
    """The turns_a person, enrolled from a live burst."""
    subject = f"turns-{uuid.uuid4().hex[:12]}"
    grant(api_module, subject, live_purpose)
    enrol_live(api_module, subject, live_purpose, bursts)
    return subject


@pytest.fixture(scope="module")
def api_module(cloud: LocalCloud) -> Api:
    return Api(cloud)


def attack(api: Api, subject_id: str, purpose: str, frames: list[bytes]) -> Any:
    s = session(api, subject_id, purpose)
    return verify(api, subject_id, purpose, burst_body(s["session_id"], frames))


@pytest.mark.slow
def test_a_still_photo_the_enrolment_photo_and_the_screen_replay_never_match(
    api: Api, enrolled_turns: str, live_purpose: str, shared_dir: Path
) -> None:
    files = clip(shared_dir, "turns_a")
    still = files[180].read_bytes()  # a frontal photo of the enrolled person (it matches as a single photo)
    rng = random.Random(5)
    image = np.asarray(Image.open(io.BytesIO(still)).convert("RGB"))
    held = [still] + [jpeg(jitter(image, rng)) for _ in range(29)]  # the photo moved in the hand
    replay = clip(shared_dir, "replay_a")
    screen = [replay[i].read_bytes() for i in np.linspace(40, 139, 30).round().astype(int)]
    for name, frames in (("still", [still] * 30), ("held photo", held), ("replay", screen)):
        reply = attack(api, enrolled_turns, live_purpose, frames)
        assert reply.status == 200, (name, reply.body)
        assert reply.json["decision"] == "no_match", (name, reply.json)
        assert reply.json["liveness"]["decision"] != "live", (name, reply.json)
        assert "manual_review" in reply.json["liveness"]["alternatives"]
        assert claims(api, reply.json["result_token"])["decision"] == "no_match"
    assert "frames_duplicated" in attack(api, enrolled_turns, live_purpose, [still] * 30).json["liveness"]["reasons"]


@pytest.mark.slow
def test_a_printed_photo_of_the_enrolled_person_never_matches(
    api: Api, subject_id: str, live_purpose: str, shared_dir: Path
) -> None:
    # Given a NUAA person enrolled from one of their real webcam photos (a single photo, where policy allows it)
    grant(api, subject_id, live_purpose)
    real = sorted((shared_dir / "pad" / "bona_fide" / "0001").glob("*/*.jpg"))[0].read_bytes()
    with policy(api, live_purpose, "optional"):
        enrolled = api.call(
            "POST", f"/v1/subjects/{subject_id}/enrolments", {"purpose": live_purpose, "image": b64(real)}
        )
        assert enrolled.status == 201, enrolled.body
    # When printed photos of that person are held in front of the camera
    for seq in sorted((shared_dir / "pad" / "attack" / "0001").iterdir())[:2]:
        frames = [f.read_bytes() for f in sorted(seq.glob("*.jpg"))]
        reply = attack(api, subject_id, live_purpose, frames)
        # Then they are a spoof, never a match
        assert reply.status == 200 and reply.json["decision"] == "no_match", reply.body
        assert reply.json["liveness"]["decision"] == "spoof" and "pad_score_low" in reply.json["liveness"]["reasons"]


# ---------------------------------------------------------------- session binding


@pytest.mark.slow
def test_a_session_is_bound_to_its_subject_and_purpose_and_expires(
    api: Api, enrolled_turns: str, live_purpose: str, bursts: dict[str, tuple[list[bytes], list[str]]], subject_id: str
) -> None:
    # A session of another subject, or of another purpose, is not this one's
    other = session(api, subject_id, live_purpose, TURNS)
    frames = turns_burst(bursts, tuple(other["challenge"]["actions"]), 2)
    reply = verify(api, enrolled_turns, live_purpose, burst_body(other["session_id"], frames))
    assert reply.status == 403 and reply.json["code"] == "liveness_session_mismatch", reply.body
    checkout = session(api, enrolled_turns, "checkout", TURNS)
    reply = verify(api, enrolled_turns, live_purpose, burst_body(checkout["session_id"], frames))
    assert reply.status == 403 and reply.json["code"] == "liveness_session_mismatch", reply.body
    # A session answered after its two minutes has expired (the service's clock is moved, no sleep)
    s = session(api, enrolled_turns, live_purpose, TURNS)
    frames = turns_burst(bursts, tuple(s["challenge"]["actions"]), 2)
    container = wiring.container()
    saved = container.clock
    late = utcnow() + timedelta(seconds=SESSION_SECONDS + 1)
    container.clock = lambda: late
    try:
        reply = verify(api, enrolled_turns, live_purpose, burst_body(s["session_id"], frames))
    finally:
        container.clock = saved
    assert reply.status == 410 and reply.json["code"] == "liveness_session_expired", reply.body


# ---------------------------------------------------------------- lockout


@pytest.mark.slow
def test_a_retry_is_not_a_failed_attempt_and_a_spoof_is(
    api: Api,
    aws: boto3.session.Session,
    subject_id: str,
    live_purpose: str,
    bursts: dict[str, tuple[list[bytes], list[str]]],
    shared_dir: Path,
) -> None:
    grant(api, subject_id, live_purpose)
    enrol_live(api, subject_id, live_purpose, bursts)
    # Five real people's turns performed in the wrong order: retry, the non-face methods offered, nothing counted
    for shift in (0, 2, 4, 6, 0):
        s = session(api, subject_id, live_purpose, TURNS)
        wrong = tuple(reversed(s["challenge"]["actions"]))
        reply = verify(api, subject_id, live_purpose, burst_body(s["session_id"], turns_burst(bursts, wrong, shift)))
        assert reply.status == 200 and reply.json["decision"] == "no_match", reply.body
        assert reply.json["liveness"]["decision"] == "retry", reply.json
        assert reply.json["liveness"]["reasons"] == ["challenge_not_met"]
        assert "manual_review" in reply.json["liveness"]["alternatives"]
        assert attempts(aws, api, subject_id, live_purpose) == 0
    # Still the face may be tried: five spoofs are five failed attempts, then face verification is locked
    still = clip(shared_dir, "turns_a")[180].read_bytes()
    for n in range(1, 6):
        reply = attack(api, subject_id, live_purpose, [still] * 12)
        assert reply.json["liveness"]["decision"] == "spoof", reply.json
        assert attempts(aws, api, subject_id, live_purpose) == n
    s = session(api, subject_id, live_purpose, TURNS)
    frames = turns_burst(bursts, tuple(s["challenge"]["actions"]), 2)
    locked = verify(api, subject_id, live_purpose, burst_body(s["session_id"], frames))
    assert locked.status == 423 and locked.json["code"] == "fallback_required", locked.body


# ---------------------------------------------------------------- enrolment


@pytest.mark.slow
def test_an_enrolment_burst_that_is_not_live_enrols_nothing(
    api: Api, subject_id: str, live_purpose: str, shared_dir: Path, cloud: LocalCloud, aws: boto3.session.Session
) -> None:
    grant(api, subject_id, live_purpose)
    still = clip(shared_dir, "turns_a")[180].read_bytes()
    s = session(api, subject_id, live_purpose)
    body = {"purpose": live_purpose, "liveness": burst_body(s["session_id"], [still] * 20)}
    reply = api.call("POST", f"/v1/subjects/{subject_id}/enrolments", body)
    assert reply.status == 422 and reply.json["code"] == "liveness_failed", reply.body
    assert reply.json["liveness"]["decision"] == "spoof" and "manual_review" in reply.json["methods"]
    ref = wiring.container().hasher.ref("demo", subject_id)
    templates = aws.client("dynamodb").scan(TableName=cloud.stack.ref("TemplatesTable"))["Items"]
    assert not [t for t in templates if ref in t["pk"]["S"]]
    # The session is used up
    again = api.call("POST", f"/v1/subjects/{subject_id}/enrolments", body)
    assert again.status == 409 and again.json["code"] == "liveness_session_used"


# ---------------------------------------------------------------- erasure


def test_erasure_takes_the_subjects_liveness_sessions(
    api: Api, aws: boto3.session.Session, subject_id: str, live_purpose: str
) -> None:
    from tests.integration.test_deletion_api import allowed, erase, ref, traces

    grant(api, subject_id, live_purpose)
    ids = [session(api, subject_id, live_purpose)["session_id"] for _ in range(2)]
    sessions = aws.client("dynamodb").scan(TableName=api.cloud.stack.ref("SessionsTable"))["Items"]
    assert sum(ref(subject_id) in i["pk"]["S"] and i["sk"]["S"].startswith("LIVENESS#") for i in sessions) == 2
    job = erase(api, subject_id)
    assert job["removed"]["sessions"] >= 2
    left = traces(aws, api, [subject_id.encode(), ref(subject_id).encode(), *(i.encode() for i in ids)])
    assert all(allowed(t) for t in left), left

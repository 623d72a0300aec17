"""Proctoring through the real handlers with the real engine on real frames (../shared/clips, composed as
tests/integration/proctoring_frames.py says): the start (consent, a live challenge, the enrolment), batches in
order and exactly once, every incident type planted and found, the signed report, the review, bad input, and
erasure leaving nothing behind. No frame is stored anywhere."""

from __future__ import annotations

import base64
import threading
from pathlib import Path
from typing import Any

import boto3
import jwt
import pytest

from facegate.proctoring.entities import MAX_BATCH_FRAMES, MAX_FRAME_BYTES
from localcloud.cloud import LocalCloud
from tests.integration.conftest import Api
from tests.integration.proctoring_frames import (
    STEP_MS,
    clean_session,
    clip,
    composed_session,
    timestamps,
)
from tests.integration.test_deletion_api import allowed, erase, ref, traces
from tests.integration.test_enrolment_api import grant
from tests.integration.test_liveness_api import TURNS, burst_body, bursts, session, turns_burst

pytestmark = pytest.mark.integration
PURPOSE = "exam_proctoring"
__all__ = ["bursts"]  # the module-scoped fixture of the liveness tests: the candidate's challenge bursts


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def enrol(api: Api, subject_id: str, shared_dir: Path) -> None:
    """Consent, then the candidate's enrolment from one photo (the integration cloud's purposes allow it)."""
    grant(api, subject_id, PURPOSE)
    body = {"purpose": PURPOSE, "image": b64(clip(shared_dir, "turns_a", [0])[0])}
    reply = api.call("POST", f"/v1/subjects/{subject_id}/enrolments", body)
    assert reply.status == 201 and reply.json["status"] == "completed", reply.body


def start(api: Api, subject_id: str, bursts: dict[str, Any], **more: Any) -> Any:
    s = session(api, subject_id, PURPOSE, TURNS)
    frames = turns_burst(bursts, tuple(s["challenge"]["actions"]), 4)
    body = {
        "subject_id": subject_id,
        "purpose": PURPOSE,
        "exam_id": "exam-2026-01",
        "liveness": burst_body(s["session_id"], frames),
        **more,
    }
    return api.call("POST", "/v1/proctoring/sessions", body)


def frames_body(sequence: int, frames: list[bytes], times: list[float]) -> dict[str, Any]:
    return {"sequence": sequence, "frames": [{"ts": t, "image": b64(f)} for f, t in zip(frames, times, strict=True)]}


def send_all(api: Api, session_id: str, frames: list[bytes], batch: int = 8) -> list[Any]:
    answers = []
    times = timestamps(len(frames))
    for seq, first in enumerate(range(0, len(frames), batch)):
        body = frames_body(seq, frames[first : first + batch], times[first : first + batch])
        reply = api.call("POST", f"/v1/proctoring/sessions/{session_id}/frames", body)
        assert reply.status == 200, reply.body
        answers.append(reply.json)
    return answers


def verified(api: Api, token: str) -> dict[str, Any]:
    key = jwt.PyJWK.from_dict(api.call("GET", "/v1/keys", tenant=None).json["keys"][0])
    return jwt.decode(token, key.key, algorithms=["ES256"], audience="demo")


@pytest.fixture
def candidate(api: Api, subject_id: str, shared_dir: Path) -> str:
    enrol(api, subject_id, shared_dir)
    return subject_id


# ---------------------------------------------------------------- start


def test_without_consent_the_candidate_is_offered_a_sitting_without_face_processing(
    api: Api, subject_id: str, bursts: dict[str, Any]
) -> None:
    # Given a candidate who never consented to exam proctoring
    reply = start(api, subject_id, bursts)
    # Then no session: the sittings without face processing and the non-face methods are offered
    assert reply.status == 403 and reply.json["code"] == "consent_required", reply.body
    assert reply.json["alternatives"] == ["human_proctor", "in_person"]
    assert reply.json["methods"]
    # And choosing one is recorded as such, with no face processed
    body = {"subject_id": subject_id, "purpose": PURPOSE, "exam_id": "exam-2026-01", "mode": "human_proctor"}
    chosen = api.call("POST", "/v1/proctoring/sessions", body)
    assert chosen.status == 201 and (chosen.json["mode"], chosen.json["status"]) == ("human_proctor", "alternative")
    assert "capture" not in chosen.json


def test_a_face_sitting_needs_a_live_burst_even_where_the_purpose_allows_single_photos(
    api: Api, candidate: str
) -> None:
    body = {"subject_id": candidate, "purpose": PURPOSE, "exam_id": "exam-2026-01"}
    reply = api.call("POST", "/v1/proctoring/sessions", body)
    assert reply.status == 403 and reply.json["code"] == "liveness_required", reply.body


def test_another_person_at_the_start_does_not_start_a_session(
    api: Api, subject_id: str, shared_dir: Path, bursts: dict[str, Any]
) -> None:
    # Given a candidate enrolled with another man's photo (talk_a)
    grant(api, subject_id, PURPOSE)
    body = {"purpose": PURPOSE, "image": b64(clip(shared_dir, "talk_a", [0])[0])}
    assert api.call("POST", f"/v1/subjects/{subject_id}/enrolments", body).status == 201
    # When the turns_a man answers the challenge
    reply = start(api, subject_id, bursts)
    # Then the identity was not verified: no session, the alternatives offered
    assert reply.status == 403 and reply.json["code"] == "identity_not_verified", reply.body
    assert reply.json["alternatives"] == ["human_proctor", "in_person"]


# ---------------------------------------------------------------- sessions


def test_a_clean_session_blames_no_one_and_its_signed_report_verifies(
    api: Api, candidate: str, shared_dir: Path, bursts: dict[str, Any]
) -> None:
    started = start(api, candidate, bursts)
    assert started.status == 201, started.body
    s = started.json
    assert s["liveness"]["decision"] == "live" and s["status"] == "active"
    assert s["capture"]["frame_interval_s"] == 2 and s["capture"]["stored"] is False
    assert s["notice"]["locale"] == "en" and "human proctor" in s["notice"]["content"]["alternatives_text"]
    sid = s["session_id"]

    answers = send_all(api, sid, clean_session(shared_dir, 20), batch=5)
    assert [a["next_sequence"] for a in answers] == [1, 2, 3, 4]
    blamed = [i for a in answers for i in a["incidents"] if not i["technical"]]
    assert blamed == []

    ended = api.call("POST", f"/v1/proctoring/sessions/{sid}/end")
    assert ended.status == 200, ended.body
    claims = verified(api, ended.json["report_token"])
    assert claims["typ"] == "proctoring-report" and claims["session_id"] == sid
    assert claims["summary"]["incidents_for_review"] == 0
    assert claims["summary"]["counted_against_candidate"] == 0
    assert claims["capture"]["frames"] == 20 and claims["capture"]["batches"] == 4
    assert claims["model"]["version"]
    assert claims == ended.json["report"]
    # Ending again answers the same report; GET answers it too; the ended session takes no frames
    again = api.call("POST", f"/v1/proctoring/sessions/{sid}/end")
    assert again.json["report_token"] == ended.json["report_token"]
    assert api.call("GET", f"/v1/proctoring/sessions/{sid}").json["report_token"] == ended.json["report_token"]
    late = api.call(
        "POST", f"/v1/proctoring/sessions/{sid}/frames", frames_body(4, clean_session(shared_dir, 1), [1e6])
    )
    assert late.status == 409 and late.json["code"] == "session_ended"


def test_a_composed_session_yields_exactly_the_planted_incidents_for_review(
    api: Api, candidate: str, shared_dir: Path, bursts: dict[str, Any]
) -> None:
    frames, planted = composed_session(shared_dir)
    sid = start(api, candidate, bursts).json["session_id"]
    answers = send_all(api, sid, frames, batch=8)
    assert any(g["code"] for a in answers for g in a["guidance"])
    assert all(set(g["text"]) == {"en", "zh-CN"} for a in answers for g in a["guidance"])
    report = api.call("POST", f"/v1/proctoring/sessions/{sid}/end").json["report"]
    found = sorted((i["type"], i["start_ts"], i["end_ts"]) for i in report["timeline"])
    # Every planted incident is found within its frames (a detection may begin a frame or two into a plant:
    # a PAD check runs every other frame), and nothing else is found
    assert sorted(p.type for p in planted) == sorted(kind for kind, _, _ in found), found
    for p in planted:
        (_, first, last) = next(f for f in found if f[0] == p.type)
        assert p.start_ts <= first <= p.start_ts + 3 * STEP_MS and p.end_ts - 2 * STEP_MS <= last <= p.end_ts, (
            p,
            found,
        )
    assert report["summary"]["incidents_for_review"] == 4 and report["summary"]["technical_conditions"] == 2

    # An admin reviews one; the review is kept beside the signed report
    incident = next(i for i in report["timeline"] if i["type"] == "different_person")
    path = f"/v1/proctoring/sessions/{sid}/incidents/{incident['incident_id']}/review"
    no_admin = api.cloud.token("demo", ("verify",))
    assert api.call("PUT", path, {"status": "confirmed"}, token=no_admin).status == 403
    reviewed = api.call("PUT", path, {"status": "confirmed", "note": "not the candidate"})
    assert reviewed.status == 200 and reviewed.json["review_status"] == "confirmed", reviewed.body
    view = api.call("GET", f"/v1/proctoring/sessions/{sid}").json
    assert view["review"] == {"pending": 5, "confirmed": 1, "dismissed": 0}
    unknown = api.call("POST", f"/v1/proctoring/sessions/{sid}/incidents/nope-1/review", {"status": "dismissed"})
    assert unknown.status == 404 and unknown.json["code"] == "incident_not_found"


def test_batches_apply_in_order_and_exactly_once(
    api: Api, candidate: str, shared_dir: Path, bursts: dict[str, Any]
) -> None:
    sid = start(api, candidate, bursts).json["session_id"]
    frames = clean_session(shared_dir, 6)
    path = f"/v1/proctoring/sessions/{sid}/frames"
    first = api.call("POST", path, frames_body(0, frames[:3], timestamps(3)))
    assert first.status == 200 and first.json["replayed"] is False
    # A retry gets the stored answer
    retry = api.call("POST", path, frames_body(0, frames[:3], timestamps(3)))
    assert retry.status == 200 and retry.json["replayed"] is True
    assert {**retry.json, "replayed": False} == first.json
    # Out of order: told the sequence expected
    skip = api.call("POST", path, frames_body(2, frames[3:], timestamps(3, 3)))
    assert skip.status == 409 and skip.json["code"] == "sequence_conflict" and skip.json["expected_sequence"] == 1
    # Two different batches raced under one sequence: exactly one is applied
    answers: list[Any] = []
    ready = threading.Barrier(2)

    def send(batch: list[bytes], first_index: int) -> None:
        body = frames_body(1, batch, timestamps(len(batch), first_index))
        ready.wait()
        answers.append(api.call("POST", path, body))

    threads = [
        threading.Thread(target=send, args=(frames[3:5], 3)),
        threading.Thread(target=send, args=(frames[3:6], 3)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(a.status for a in answers) == [200, 409], [a.body for a in answers]
    loser = next(a for a in answers if a.status == 409)
    assert loser.json["code"] == "sequence_conflict" and loser.json["expected_sequence"] == 2
    view = api.call("GET", f"/v1/proctoring/sessions/{sid}").json
    assert view["next_sequence"] == 2
    # A retry of an older batch still gets its own stored answer
    older = api.call("POST", path, frames_body(0, frames[:3], timestamps(3)))
    assert older.status == 200 and {**older.json, "replayed": False} == first.json


@pytest.mark.parametrize(
    ("case", "status", "code"),
    [
        ("unknown_session", 404, "proctoring_session_not_found"),
        ("other_tenant", 404, "proctoring_session_not_found"),
        ("too_many_frames", 413, "proctoring_batch_too_large"),
        ("timestamps_not_increasing", 422, "timestamps_not_increasing"),
        ("png", 415, "unsupported_media_type"),
        ("not_base64", 400, "invalid_image"),
        ("broken_jpeg", 400, "invalid_image"),
        ("frame_too_large", 413, "image_too_large"),
        ("no_frames", 422, "invalid_request"),
    ],
)
def test_bad_batches_get_a_clear_problem_and_change_nothing(
    api: Api, candidate: str, shared_dir: Path, bursts: dict[str, Any], case: str, status: int, code: str
) -> None:
    sid = start(api, candidate, bursts).json["session_id"]
    good = clean_session(shared_dir, 2)
    body: dict[str, Any] = frames_body(0, good, timestamps(2))
    path, tenant = f"/v1/proctoring/sessions/{sid}/frames", "demo"
    if case == "unknown_session":
        path = f"/v1/proctoring/sessions/{'0' * 32}/frames"
    elif case == "other_tenant":
        tenant = "other"
    elif case == "too_many_frames":
        n = MAX_BATCH_FRAMES + 1
        body = frames_body(0, clean_session(shared_dir, n), timestamps(n))
    elif case == "timestamps_not_increasing":
        body = frames_body(0, good, [STEP_MS, STEP_MS])
    elif case == "png":
        body = frames_body(0, [(shared_dir / "faces_misc" / "malformed_corrupted.png").read_bytes()], [0.0])
    elif case == "not_base64":
        body = {"sequence": 0, "frames": [{"ts": 0.0, "image": "not base64!"}]}
    elif case == "broken_jpeg":
        body = frames_body(0, [(shared_dir / "faces_misc" / "malformed_truncated.jpg").read_bytes()], [0.0])
    elif case == "frame_too_large":
        body = frames_body(0, [good[0] + b"\0" * MAX_FRAME_BYTES], [0.0])
    elif case == "no_frames":
        body = {"sequence": 0, "frames": []}
    reply = api.call("POST", path, body, tenant=tenant)
    assert reply.status == status and reply.json["code"] == code, reply.body
    assert reply.headers["content-type"] == "application/problem+json"
    assert api.call("GET", f"/v1/proctoring/sessions/{sid}").json["next_sequence"] == 0


def test_no_frame_is_stored_and_erasure_leaves_no_trace_of_the_sessions(
    api: Api, aws: boto3.session.Session, candidate: str, shared_dir: Path, bursts: dict[str, Any]
) -> None:
    frames, _ = composed_session(shared_dir)
    sid = start(api, candidate, bursts).json["session_id"]
    send_all(api, sid, frames[:16], batch=8)
    # No frame anywhere: a piece of every frame sent, raw and base64 (3-byte aligned), in no table and no bucket
    pieces = [f[900:990] for f in frames[:16]]
    assert traces(aws, api, pieces) == []
    items = aws.client("dynamodb").scan(TableName=api.cloud.stack.ref("ProctoringTable"))["Items"]
    assert any(i["pk"]["S"].endswith(sid) and i["sk"]["S"].startswith("INCIDENT#") for i in items)
    # Erasure takes the session and its incidents with the rest of the candidate's data
    job = erase(api, candidate)
    assert job["removed"]["proctoring"] >= 2
    left = traces(aws, api, [candidate.encode(), ref(candidate).encode(), sid.encode()])
    assert all(allowed(t) for t in left), left
    assert api.call("GET", f"/v1/proctoring/sessions/{sid}").status == 404


def test_the_session_is_not_found_for_another_tenant(
    api: Api, cloud: LocalCloud, candidate: str, bursts: dict[str, Any]
) -> None:
    sid = start(api, candidate, bursts).json["session_id"]
    assert api.call("GET", f"/v1/proctoring/sessions/{sid}", tenant="other").status == 404
    assert api.call("POST", f"/v1/proctoring/sessions/{sid}/end", tenant="other").status == 404


def test_events_announce_incidents_and_the_report_and_every_batch_opens_the_template_audited(
    api: Api, aws: boto3.session.Session, candidate: str, shared_dir: Path, bursts: dict[str, Any]
) -> None:
    import json
    import uuid

    from facegate import wiring
    from facegate.core.dynamo import AuditRepository

    # Given a listener on the bus for facegate.proctoring (as the webhooks would subscribe)
    events, sqs = aws.client("events"), aws.client("sqs")
    bus, name = api.cloud.stack.ref("EventBus"), f"proctoring-test-{uuid.uuid4().hex[:8]}"
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name=name, EventBusName=bus, EventPattern=json.dumps({"source": ["facegate.proctoring"]}))
    events.put_targets(Rule=name, EventBusName=bus, Targets=[{"Id": "test", "Arn": arn}])
    try:
        # When a session with two incidents (looking away, then no face) runs and ends
        frames, planted = composed_session(shared_dir)
        sid = start(api, candidate, bursts).json["session_id"]
        send_all(api, sid, frames[: planted[1].last + 3], batch=4)
        assert api.call("POST", f"/v1/proctoring/sessions/{sid}/end").status == 200
        bodies: list[str] = []
        while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            bodies += [m["Body"] for m in batch]
            for m in batch:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    finally:
        events.remove_targets(Rule=name, EventBusName=bus, Ids=["test"])
        events.delete_rule(Name=name, EventBusName=bus)
        sqs.delete_queue(QueueUrl=url)
    mine = [json.loads(b) for b in bodies if sid in b]
    opened = sorted(e["detail"]["type"] for e in mine if e["detail-type"] == "ProctoringIncidentOpened")
    assert opened == ["face_absent", "looking_away"]
    ready = [e["detail"] for e in mine if e["detail-type"] == "ProctoringReportReady"]
    assert len(ready) == 1 and ready[0]["incidents_for_review"] == 1 and ready[0]["technical_conditions"] == 1
    text = json.dumps(mine)
    assert candidate not in text and ref(candidate) not in text and "image" not in text
    # Then every batch opened the enrolled template through the audited opener
    s = wiring.container().settings
    audit = AuditRepository(s.audit_table, s.region, s.audit_retention_days).for_subject("demo", ref(candidate))
    opened_for_session = [e for e in audit if e.action == "template.decrypted" and e.details.get("session_id") == sid]
    batches = -(-(planted[1].last + 3) // 4)
    assert len(opened_for_session) == batches and all(e.details["reason"] == "proctoring" for e in opened_for_session)

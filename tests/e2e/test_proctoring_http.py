"""Exam proctoring over HTTP on the local cloud as `make run` starts it (two instances per function, the seeded
purposes keep liveness `required`): a composed session with every incident type planted yields exactly the planted
incidents, a clean session none that blame the candidate, the signed report verifies with /v1/keys, raced and
retried batches apply exactly once, and no frame is left in any table or bucket. Real models on real frames
(composed by tests/integration/proctoring_frames.py); timestamps synthetic, 2 s apart; few frames."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from evaluate_liveness import genuine_bursts

from localcloud.process import running
from tests.e2e.test_races_over_http import Answer, Client, together
from tests.integration.proctoring_frames import STEP_MS, clean_session, composed_session, timestamps

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
PURPOSE = "exam_proctoring"
TURNS = {("turn_left", "turn_right"), ("turn_right", "turn_left")}
SUBJECT = "e2e-candidate"
STARTED: list[str] = []  # every session this module started (the erasure test at the end looks for them)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    with running(instances=2) as cloud:
        yield Client(cloud)


@pytest.fixture(scope="module")
def turns(shared_dir: Path) -> dict[str, list[bytes]]:
    notes = json.loads((REPO / "tests" / "fixtures" / "clips.json").read_text())["clips"]
    return {name: frames for name, frames, _ in genuine_bursts(shared_dir, notes) if "turns_a" in name}


def live_burst(client: Client, turns: dict[str, list[bytes]], shift: int) -> dict[str, Any]:
    """A liveness session whose challenge the clip answers (both turns), and the clip's burst for it."""
    for _ in range(200):
        s = client.call("POST", "/v1/liveness/sessions", {"subject_id": SUBJECT, "purpose": PURPOSE}).body
        actions = tuple(s["challenge"]["actions"])
        if actions in TURNS:
            frames = turns[f"turns_a {'L>R' if actions == ('turn_left', 'turn_right') else 'R>L'} +{shift}"]
            return {
                "session_id": s["session_id"],
                "frames": [b64(f) for f in frames],
                "timestamps_ms": [k * 100.0 for k in range(len(frames))],
            }
    raise AssertionError("no session with a turns challenge in 200 tries")


@pytest.fixture(scope="module")
def candidate(client: Client, turns: dict[str, list[bytes]]) -> str:
    """Consent to exam proctoring, and an enrolment from a live challenge (the purpose requires liveness)."""
    notice = client.call("GET", f"/v1/notices/{PURPOSE}?locale=zh-CN").body
    assert "人工" in notice["content"]["alternatives_text"]
    consent = {
        "purpose": PURPOSE,
        "notice_version": notice["version"],
        "notice_sha256": notice["sha256"],
        "decision": "granted",
        "channel": "web",
        "locale": "zh-CN",
        "age_band": "adult",
    }
    assert client.call("POST", f"/v1/subjects/{SUBJECT}/consents", consent).status == 201
    body = {"purpose": PURPOSE, "liveness": live_burst(client, turns, 0)}
    enrolled = client.call("POST", f"/v1/subjects/{SUBJECT}/enrolments", body)
    assert enrolled.status == 201 and enrolled.body["status"] == "completed", enrolled.body
    return SUBJECT


def start(client: Client, turns: dict[str, list[bytes]]) -> str:
    body = {"subject_id": SUBJECT, "purpose": PURPOSE, "exam_id": "e2e-exam", "liveness": live_burst(client, turns, 4)}
    started = client.call("POST", "/v1/proctoring/sessions", body)
    assert started.status == 201 and started.body["liveness"]["decision"] == "live", started.body
    STARTED.append(str(started.body["session_id"]))
    return STARTED[-1]


def frames_body(sequence: int, frames: list[bytes], times: list[float]) -> dict[str, Any]:
    return {"sequence": sequence, "frames": [{"ts": t, "image": b64(f)} for f, t in zip(frames, times, strict=True)]}


def send_all(client: Client, sid: str, frames: list[bytes], batch: int) -> list[dict[str, Any]]:
    answers = []
    times = timestamps(len(frames))
    for seq, first in enumerate(range(0, len(frames), batch)):
        body = frames_body(seq, frames[first : first + batch], times[first : first + batch])
        reply = client.call("POST", f"/v1/proctoring/sessions/{sid}/frames", body)
        assert reply.status == 200, reply.body
        answers.append(reply.body)
    return answers


def verified_report(client: Client, token: str) -> dict[str, Any]:
    keys = client.call("GET", "/v1/keys").body["keys"]
    header = jwt.get_unverified_header(token)
    key = next(k for k in keys if k["kid"] == header["kid"])
    return jwt.decode(token, jwt.PyJWK.from_dict(key).key, algorithms=["ES256"], audience="demo")


def every_stored_byte(client: Client) -> list[bytes]:
    """Every item of every table and every object of every bucket in the emulator, as bytes."""
    stored = []
    ddb, s3 = client.aws("dynamodb"), client.aws("s3")
    for table in ddb.list_tables()["TableNames"]:
        for page in ddb.get_paginator("scan").paginate(TableName=table):
            for item in page["Items"]:
                stored.append(json.dumps(item, default=lambda b: base64.b64encode(b).decode()).encode())
                stored.extend(v["B"] for v in item.values() if "B" in v)
    for bucket in s3.list_buckets()["Buckets"]:
        for obj in s3.list_objects_v2(Bucket=bucket["Name"]).get("Contents", []):
            stored.append(obj["Key"].encode() + s3.get_object(Bucket=bucket["Name"], Key=obj["Key"])["Body"].read())
    return stored


def test_a_composed_session_yields_exactly_the_planted_incidents(
    client: Client, candidate: str, turns: dict[str, list[bytes]], shared_dir: Path
) -> None:
    frames, planted = composed_session(shared_dir)
    sid = start(client, turns)
    send_all(client, sid, frames, batch=10)
    ended = client.call("POST", f"/v1/proctoring/sessions/{sid}/end")
    assert ended.status == 200, ended.body
    report = verified_report(client, ended.body["report_token"])
    assert report == ended.body["report"]
    found = sorted((i["type"], i["start_ts"], i["end_ts"]) for i in report["timeline"])
    assert sorted(p.type for p in planted) == [kind for kind, _, _ in found], found
    for p in planted:
        (_, first, last) = next(f for f in found if f[0] == p.type)
        assert p.start_ts <= first <= p.start_ts + 3 * STEP_MS, (p, found)
        assert p.end_ts - 2 * STEP_MS <= last <= p.end_ts, (p, found)
    assert report["summary"]["incidents_for_review"] == 4 and report["summary"]["counted_against_candidate"] == 0

    # No frame is left anywhere: a piece of every frame, raw and in base64 (3-byte aligned)
    stored = every_stored_byte(client)
    pieces = [f[900:990] for f in frames]
    assert not [n for n, piece in enumerate(pieces) for s in stored if piece in s or b64(piece).encode() in s]


def test_a_clean_session_blames_no_one(
    client: Client, candidate: str, turns: dict[str, list[bytes]], shared_dir: Path
) -> None:
    sid = start(client, turns)
    send_all(client, sid, clean_session(shared_dir, 20), batch=10)
    report = verified_report(client, client.call("POST", f"/v1/proctoring/sessions/{sid}/end").body["report_token"])
    assert [i for i in report["timeline"] if not i["technical"]] == []
    assert report["summary"]["incidents_for_review"] == 0 and report["capture"]["frames"] == 20


def test_raced_and_retried_batches_apply_exactly_once(
    client: Client, candidate: str, turns: dict[str, list[bytes]], shared_dir: Path
) -> None:
    sid = start(client, turns)
    frames = clean_session(shared_dir, 9)
    path = f"/v1/proctoring/sessions/{sid}/frames"
    # The same batch sent twice at once (a client's retry racing its first try): both answer the one result
    same = frames_body(0, frames[:3], timestamps(3))
    twice: list[Answer] = together(client, [lambda: client.call("POST", path, same)] * 2)
    assert [a.status for a in twice] == [200, 200], [a.body for a in twice]
    assert sorted(a.body["replayed"] for a in twice) == [False, True]
    assert {**twice[0].body, "replayed": None} == {**twice[1].body, "replayed": None}
    # Two different batches under one sequence: one is applied, the other is told the sequence expected
    one = frames_body(1, frames[3:5], timestamps(2, 3))
    other = frames_body(1, frames[3:6], timestamps(3, 3))
    raced = together(client, [lambda: client.call("POST", path, one), lambda: client.call("POST", path, other)])
    assert sorted(a.status for a in raced) == [200, 409], [a.body for a in raced]
    loser = next(a for a in raced if a.status == 409)
    assert loser.code == "sequence_conflict" and loser.body["expected_sequence"] == 2
    view = client.call("GET", f"/v1/proctoring/sessions/{sid}").body
    assert view["next_sequence"] == 2
    winner = next(a for a in raced if a.status == 200)
    frames_applied = 3 + (2 if winner.body["state"]["last_ts"] == 4 * STEP_MS else 3)
    assert winner.body["state"]["frames"] == frames_applied
    report = client.call("POST", f"/v1/proctoring/sessions/{sid}/end").body["report"]
    assert (report["capture"]["frames"], report["capture"]["batches"]) == (frames_applied, 2)


def test_erasure_leaves_nothing_of_the_candidates_sessions(client: Client, candidate: str) -> None:
    """Runs last: DELETE the candidate; every table and bucket holds nothing of them or of their sessions but the
    audit entries and the consent tombstone."""
    assert STARTED, "run with the module's other tests"
    job = client.call("DELETE", f"/v1/subjects/{SUBJECT}").body
    for _ in range(240):  # a bounded poll for the queued job, never a timing assumption
        done = client.call("GET", f"/v1/deletions/{job['deletion_id']}").body
        if done["status"] == "completed":
            break
        time.sleep(0.5)
    assert done["status"] == "completed" and done["removed"]["proctoring"] >= 2 * len(STARTED), done
    needles = [SUBJECT, client.hasher.ref("demo", SUBJECT), *STARTED]
    ddb, s3 = client.aws("dynamodb"), client.aws("s3")
    left = []
    for table in ddb.list_tables()["TableNames"]:
        for page in ddb.get_paginator("scan").paginate(TableName=table):
            for item in page["Items"]:
                text = json.dumps(item, default=str)
                allowed = table.endswith("AuditTable") or item.get("sk", {}).get("S") == "TOMBSTONE"
                if any(n in text for n in needles) and not allowed:
                    left.append((table, text[:160]))
    for bucket in s3.list_buckets()["Buckets"]:
        for obj in s3.list_objects_v2(Bucket=bucket["Name"]).get("Contents", []):
            body = s3.get_object(Bucket=bucket["Name"], Key=obj["Key"])["Body"].read()
            if any(n.encode() in body or n in obj["Key"] for n in needles):
                left.append((bucket["Name"], obj["Key"]))
    assert left == [], left
    assert client.call("GET", f"/v1/proctoring/sessions/{STARTED[0]}").status == 404

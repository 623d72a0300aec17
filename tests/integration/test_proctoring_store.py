"""Proctoring's repository on the template's ProctoringTable in moto: the conditional write that applies a batch
exactly once under a real race, the review that the engine's updates never reset, and erasure and retention
reaching sessions and incidents (only what existed before the request)."""

from __future__ import annotations

import threading
import uuid
from dataclasses import replace
from datetime import timedelta
from typing import Any

import boto3
import pytest

from facegate import wiring
from facegate.core.clock import iso, utcnow
from facegate.proctoring.dynamo import DynamoProctoringSessions
from facegate.proctoring.entities import IncidentRecord, ProctoringSession
from localcloud.cloud import LocalCloud
from tests.integration.conftest import Api
from tests.integration.test_deletion_api import allowed, erase, ref, traces
from tests.integration.test_enrolment_api import grant

pytestmark = pytest.mark.integration
PURPOSE = "exam_proctoring"


@pytest.fixture
def store(cloud: LocalCloud) -> DynamoProctoringSessions:
    return wiring.container().proctoring_sessions


def new_session(subject_id: str, purpose: str = PURPOSE, created: Any = None, **more: Any) -> ProctoringSession:
    created = created or utcnow()
    return ProctoringSession(
        session_id=uuid.uuid4().hex,
        tenant_id="demo",
        subject_ref=ref(subject_id),
        purpose=purpose,
        exam_id="exam-1",
        created_at=iso(created),
        expires_at=int((created + timedelta(days=180)).timestamp()),
        consent_epoch=more.pop("consent_epoch", "epoch-1"),
        model_id="m",
        model_version="1",
        **more,
    )


def incident(kind: str, start: int, frames: int = 3, open_: bool = True) -> IncidentRecord:
    return IncidentRecord(
        f"{kind}-{start}", kind, start * 2000.0, (start + frames - 1) * 2000.0, frames, 0.8, "m@1", open_
    )


def test_of_two_concurrent_batches_exactly_one_is_applied(
    store: DynamoProctoringSessions, subject_id: str, atomic_dynamodb: None
) -> None:
    # Given a session at sequence 0 that two requests have both read
    session = new_session(subject_id)
    store.create(session)
    read = [store.get("demo", session.session_id) for _ in range(2)]
    outcomes: list[bool] = []
    both_read = threading.Barrier(2)

    def apply(n: int, kind: str) -> None:
        before = read[n]
        assert before is not None
        after = replace(before, next_sequence=1, last_digest=f"batch-{n}", state={"by": n})
        both_read.wait()  # both write only after both have read: the race is certain, not hoped for
        outcomes.append(store.apply_batch(before, after, [incident(kind, 0)]))

    # When both write their batch as sequence 0
    threads = [threading.Thread(target=apply, args=(n, kind)) for n, kind in enumerate(("looking_away", "face_absent"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Then one write won, and the session and incidents are the winner's alone
    assert sorted(outcomes) == [False, True]
    stored = store.get("demo", session.session_id)
    assert stored is not None and stored.next_sequence == 1
    winner = stored.state["by"]  # type: ignore[index]
    assert stored.last_digest == f"batch-{winner}"
    kinds = [i.type for i in store.incidents("demo", session.session_id)]
    assert kinds == [("looking_away", "face_absent")[winner]]


def test_a_review_survives_the_engines_later_updates_of_the_incident(
    store: DynamoProctoringSessions, subject_id: str
) -> None:
    session = new_session(subject_id)
    store.create(session)
    one = replace(session, next_sequence=1)
    assert store.apply_batch(session, one, [incident("looking_away", 0)])
    reviewed = replace(incident("looking_away", 0), review_status="confirmed", review_note="n", reviewed_by="a")
    assert store.review("demo", session.session_id, reviewed)
    assert store.apply_batch(one, replace(one, next_sequence=2), [incident("looking_away", 0, frames=5, open_=False)])
    (kept,) = store.incidents("demo", session.session_id)
    assert (kept.frames, kept.open, kept.review_status, kept.review_note) == (5, False, "confirmed", "n")
    assert not store.review("demo", session.session_id, replace(reviewed, incident_id="face_absent-9"))


def test_a_write_on_an_ended_session_is_refused(store: DynamoProctoringSessions, subject_id: str) -> None:
    session = new_session(subject_id)
    store.create(session)
    ended = replace(session, status="ended", report={"x": 1}, report_token="t")
    assert store.end(session, ended, [])
    assert not store.apply_batch(session, replace(session, next_sequence=1), [])
    assert not store.end(session, ended, [])


def test_subject_erasure_takes_every_proctoring_session_and_incident(
    api: Api, aws: boto3.session.Session, store: DynamoProctoringSessions, subject_id: str
) -> None:
    grant(api, subject_id, PURPOSE)
    ids = []
    for purpose in (PURPOSE, "checkout"):
        session = new_session(subject_id, purpose, created=utcnow() - timedelta(seconds=5))
        store.create(session)
        store.apply_batch(session, replace(session, next_sequence=1), [incident("multiple_faces", 0)])
        ids.append(session.session_id)
    job = erase(api, subject_id)
    assert job["removed"]["proctoring"] == 6  # two sessions, two incidents, two batch answers
    left = traces(aws, api, [subject_id.encode(), ref(subject_id).encode(), *(i.encode() for i in ids)])
    assert all(allowed(t) for t in left), left


def test_a_withdrawal_erases_that_purposes_sessions_from_before_it_and_keeps_the_rest(
    cloud: LocalCloud, store: DynamoProctoringSessions, subject_id: str
) -> None:
    now = utcnow()
    old = new_session(subject_id, created=now - timedelta(minutes=10))
    other_purpose = new_session(subject_id, "checkout", created=now - timedelta(minutes=10))
    newer = new_session(subject_id, created=now + timedelta(seconds=1), consent_epoch="epoch-2")
    for s in (old, other_purpose, newer):
        store.create(s)
    store.apply_batch(old, replace(old, next_sequence=1), [incident("looking_away", 0)])
    wiring.container().deletions.on_consent_withdrawn(
        {
            "record_id": uuid.uuid4().hex,
            "tenant_id": "demo",
            "purpose": PURPOSE,
            "withdrawn_at": iso(now),
            "subject_ref": ref(subject_id),
            "epoch": "epoch-1",
        }
    )
    assert store.get("demo", old.session_id) is None
    assert store.incidents("demo", old.session_id) == []
    assert store.get("demo", other_purpose.session_id) is not None
    assert store.get("demo", newer.session_id) is not None


def test_the_retention_sweep_removes_sessions_past_their_retention(
    cloud: LocalCloud, store: DynamoProctoringSessions, subject_id: str
) -> None:
    past = new_session(subject_id, created=utcnow() - timedelta(days=200))
    past = replace(past, expires_at=int((utcnow() - timedelta(days=20)).timestamp()))
    kept = new_session(subject_id)
    for s in (past, kept):
        store.create(s)
    store.apply_batch(past, replace(past, next_sequence=1), [incident("face_absent", 0)])
    counts = wiring.container().deletions.sweep()
    assert counts["proctoring"] >= 2
    assert store.get("demo", past.session_id) is None and store.incidents("demo", past.session_id) == []
    assert store.get("demo", kept.session_id) is not None

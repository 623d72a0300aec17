"""Proctoring's use cases on in-memory fakes of its OWN ports (sessions, the ProctorEngine port): batches applied in
order and exactly once, retries, bad input, the end's report, the review. No face model runs here and no match is
faked: the start's verification is covered with the real engine in tests/integration/test_proctoring_api.py; these
tests begin from a stored session, as a verified start leaves it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import pytest

from facegate.consent.entities import ConsentState, Notice, Purpose
from facegate.core.audit import Auditor
from facegate.core.errors import (
    ConsentRequiredError,
    EventPublishError,
    ImageTooLargeError,
    IncidentNotFoundError,
    LivenessRequiredError,
    ProctoringBatchTooLargeError,
    ProctoringSessionEndedError,
    ProctoringSessionExpiredError,
    ProctoringSessionNotFoundError,
    SequenceConflictError,
    TimestampsNotIncreasingError,
    UnsupportedMediaTypeError,
)
from facegate.core.hashing import SubjectHasher
from facegate.core.tenancy import CallerContext
from facegate.matching.entities import EngineTemplate, StoredTemplate, template_context
from facegate.matching.templates import TemplateOpener
from facegate.proctoring.entities import (
    ALTERNATIVES,
    MAX_BATCH_FRAMES,
    MAX_FRAME_BYTES,
    PURPOSE,
    Batch,
    IncidentRecord,
    ProctorBatchResult,
    ProctoringSession,
)
from facegate.proctoring.service import ProctoringService
from tests.unit.domain.fakes import (
    Clock,
    ContextCipher,
    InMemoryAuditLog,
    InMemoryConsents,
    InMemoryTemplates,
    RecordingPublisher,
    RecordingSigner,
)

pytestmark = pytest.mark.unit
CALLER = CallerContext("demo", "client-1", frozenset({"verify", "admin"}), "req-1")
OTHER = CallerContext("other", "client-2", frozenset({"verify", "admin"}), "req-2")
HASHER = SubjectHasher(b"p" * 32)
ALICE = HASHER.subject("demo", "alice")
MODEL = ("facegate-mfn192-mesh", "2.0.0")
GRANTED = ConsentState(
    PURPOSE, "granted", "r1", 1, "s", "adult", "2026-03-01T00:00:00.000000Z", "r1", "2026-03-01T00:00:00.000000Z"
)
SESSION_ID = "a" * 32


def jpeg(tag: str) -> bytes:
    """A frame for the scripted engine: JPEG's magic bytes and what the frame shows."""
    return b"\xff\xd8\xff" + tag.encode()


# ---------------------------------------------------------------- fakes of proctoring's own ports


@dataclass
class InMemoryProctoringSessions:
    sessions: dict[tuple[str, str], ProctoringSession] = field(default_factory=dict)
    incident_items: dict[tuple[str, str, str], IncidentRecord] = field(default_factory=dict)
    before_write: list[Any] = field(default_factory=list)  # callables run once before the next write (a rival)
    batches: dict[tuple[str, str, int], tuple[str, dict[str, Any]]] = field(default_factory=dict)

    def create(self, session: ProctoringSession) -> None:
        assert (session.tenant_id, session.session_id) not in self.sessions
        self.sessions[(session.tenant_id, session.session_id)] = session

    def get(self, tenant_id: str, session_id: str) -> ProctoringSession | None:
        return self.sessions.get((tenant_id, session_id))

    def incidents(self, tenant_id: str, session_id: str) -> list[IncidentRecord]:
        return [i for (t, s, _), i in self.incident_items.items() if (t, s) == (tenant_id, session_id)]

    def _write(self, before: ProctoringSession, after: ProctoringSession, incidents: Sequence[IncidentRecord]) -> bool:
        while self.before_write:
            self.before_write.pop(0)()
        stored = self.sessions[(before.tenant_id, before.session_id)]
        if stored.status != "active" or stored.next_sequence != before.next_sequence:
            return False
        self.sessions[(before.tenant_id, before.session_id)] = after
        for incident in incidents:
            key = (before.tenant_id, before.session_id, incident.incident_id)
            old = self.incident_items.get(key)
            self.incident_items[key] = (
                replace(incident, review_status=old.review_status, review_note=old.review_note) if old else incident
            )
        return True

    def apply_batch(
        self, before: ProctoringSession, after: ProctoringSession, incidents: Sequence[IncidentRecord]
    ) -> bool:
        if not self._write(before, after, incidents):
            return False
        assert after.last_digest is not None and after.last_answer is not None
        self.batches[(before.tenant_id, before.session_id, before.next_sequence)] = (
            after.last_digest,
            after.last_answer,
        )
        return True

    def batch_answer(self, tenant_id: str, session_id: str, sequence: int) -> tuple[str, dict[str, Any]] | None:
        return self.batches.get((tenant_id, session_id, sequence))

    end = _write

    def review(self, tenant_id: str, session_id: str, incident: IncidentRecord) -> bool:
        key = (tenant_id, session_id, incident.incident_id)
        if key not in self.incident_items:
            return False
        self.incident_items[key] = replace(
            self.incident_items[key],
            review_status=incident.review_status,
            review_note=incident.review_note,
            reviewed_by=incident.reviewed_by,
            reviewed_at=incident.reviewed_at,
        )
        return True


class ScriptedEngine:
    """Our ProctorEngine port, scripted by what each frame says it shows: `ok`, or an incident type. A condition
    lasting 2 frames or more is an incident (id `<type>-<first frame index>`), as the engine's duration rule."""

    model_id, model_version = MODEL

    def __init__(self) -> None:
        self.calls = 0
        self.templates: list[Any] = []

    def process(
        self, state: dict[str, Any] | None, frames: Sequence[bytes], timestamps_ms: Sequence[float], template: Any
    ) -> ProctorBatchResult:
        self.calls += 1
        self.templates.append(template)
        state = dict(state or {"index": 0, "run": None, "since": None, "start_ts": None, "count": 0})
        updated: dict[str, IncidentRecord] = {}
        guidance: list[str] = []
        for frame, ts in zip(frames, timestamps_ms, strict=True):
            shows = frame[3:].decode()
            if shows != state["run"]:
                if state["run"] not in (None, "ok") and state["count"] >= 2:
                    updated[state["run"]] = self._incident(state, False)
                state.update(run=shows, since=state["index"], start_ts=ts, count=0)
            state["count"] += 1
            state["end_ts"] = ts
            state["index"] += 1
            if shows != "ok" and state["count"] >= 2:
                updated[shows] = self._incident(state, True)
            if shows == "face_absent":
                guidance.append("more_light")
        stats = {"frames": len(frames), "frames_with_face": sum(1 for f in frames if f.endswith(b"ok"))}
        return ProctorBatchResult(state, list(updated.values()), guidance, stats)

    def _incident(self, state: dict[str, Any], open_: bool) -> IncidentRecord:
        return IncidentRecord(
            incident_id=f"{state['run']}-{state['since']}",
            type=state["run"],
            start_ts=state["start_ts"],
            end_ts=state["end_ts"],
            frames=state["count"],
            confidence=0.9,
            model_version="@".join(MODEL),
            open=open_,
        )

    def finish(self, state: dict[str, Any]) -> list[IncidentRecord]:
        if state["run"] not in (None, "ok") and state["count"] >= 2:
            return [self._incident(state, False)]
        return []


class Biometrics:
    """Only `from_bytes` (the opener turns decrypted bytes into the engine's object): no biometric computation."""

    model_id, model_version = MODEL

    def from_bytes(self, model_id: str, model_version: str, data: bytes) -> EngineTemplate:
        return EngineTemplate(model_id, model_version, data)


class Purposes:
    def purpose(self, tenant_id: str, purpose: str) -> Purpose:
        return Purpose(purpose, purpose, 180)

    def current(self, tenant_id: str, purpose: str, locale: str) -> Notice:
        return Notice(purpose, locale, 1, "s", {"alternatives": ["manual_review"]})


class FailingBus:
    def publish(self, detail_type: str, detail: dict[str, Any]) -> None:
        raise EventPublishError()


def never_verify(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("the start must not reach the verification here")


@dataclass
class World:
    service: ProctoringService
    sessions: InMemoryProctoringSessions
    engine: ScriptedEngine
    consents: InMemoryConsents
    audit: InMemoryAuditLog
    events: RecordingPublisher
    clock: Clock


def world(events: Any = None) -> World:
    clock = Clock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    audit = InMemoryAuditLog()
    auditor = Auditor(audit)
    consents = InMemoryConsents()
    consents.state_by_key[("demo", ALICE.ref, PURPOSE)] = GRANTED
    cipher = ContextCipher()
    sealed = cipher.seal(b"template-bytes", template_context("demo", ALICE.ref, PURPOSE))
    template = StoredTemplate(
        "demo", ALICE.ref, PURPOSE, "t1", "e1", *MODEL, sealed.ciphertext, sealed.encrypted_key, sealed.nonce,
        "2026-03-01T00:00:01.000000Z", 0, consent_epoch="r1", seq=1,
    )  # fmt: skip
    sessions = InMemoryProctoringSessions()
    sessions.create(
        ProctoringSession(
            session_id=SESSION_ID,
            tenant_id="demo",
            subject_ref=ALICE.ref,
            purpose=PURPOSE,
            exam_id="exam-1",
            created_at="2026-03-02T09:00:00.000000Z",
            expires_at=2_000_000_000,
            consent_epoch="r1",
            verification_id="v1",
            liveness={"decision": "live", "method": "active_challenge+passive_pad"},
            model_id=MODEL[0],
            model_version=MODEL[1],
        )
    )
    engine = ScriptedEngine()
    publisher = events if events is not None else RecordingPublisher()
    service = ProctoringService(
        sessions=sessions,
        notices=Purposes(),
        consents=consents,
        templates=InMemoryTemplates([template]),
        opener=TemplateOpener(cipher, auditor, Biometrics),  # type: ignore[arg-type]
        verify=never_verify,
        engine=lambda: engine,
        signer=RecordingSigner(),
        events=publisher,
        auditor=auditor,
        issuer="facegate",
        clock=clock,
    )
    return World(service, sessions, engine, consents, audit, publisher, clock)


TOO_LARGE = ProctoringBatchTooLargeError


def batch(sequence: int, shows: list[str], first_ts: float) -> Batch:
    return Batch(sequence, [jpeg(s) for s in shows], [first_ts + 2000.0 * k for k in range(len(shows))])


# ---------------------------------------------------------------- start


def test_without_consent_the_start_offers_the_sittings_without_face_processing() -> None:
    # Given a candidate who refused consent for exam proctoring
    w = world()
    w.consents.state_by_key[("demo", ALICE.ref, PURPOSE)] = replace(GRANTED, status="refused", epoch=None)
    # When a face session is asked for
    with pytest.raises(ConsentRequiredError) as refused:
        w.service.start(CALLER, ALICE, PURPOSE, "exam-1", None, 2)
    # Then the answer lists the non-face sittings and methods, and no session was made
    assert refused.value.extra["alternatives"] == list(ALTERNATIVES)
    assert refused.value.extra["methods"] == ["manual_review"]
    assert refused.value.extra["consent"] == "refused"
    assert len(w.sessions.sessions) == 1
    assert "proctoring.refused" in w.audit.actions()


def test_a_face_session_needs_a_live_burst_whatever_the_purposes_policy() -> None:
    w = world()
    with pytest.raises(LivenessRequiredError) as refused:
        w.service.start(CALLER, ALICE, PURPOSE, "exam-1", None, 2)
    assert refused.value.extra["alternatives"] == list(ALTERNATIVES)


def test_a_sitting_without_face_processing_is_recorded_as_such_and_takes_no_frames() -> None:
    w = world()
    w.consents.state_by_key.clear()  # no consent is needed for it
    session = w.service.choose_alternative(CALLER, ALICE, PURPOSE, "exam-1", "human_proctor")
    assert (session.mode, session.status) == ("human_proctor", "alternative")
    assert "proctoring.alternative_chosen" in w.audit.actions()
    with pytest.raises(ProctoringSessionEndedError):
        w.service.submit(CALLER, session.session_id, batch(0, ["ok"], 0.0))


# ---------------------------------------------------------------- batches


def test_a_batch_is_tracked_its_incidents_kept_and_the_template_opened_with_an_audit() -> None:
    w = world()
    outcome = w.service.submit(CALLER, SESSION_ID, batch(0, ["ok", "looking_away", "looking_away", "ok"], 1000.0))
    answer = outcome.answer
    assert not outcome.replayed
    assert (answer["sequence"], answer["next_sequence"]) == (0, 1)
    assert [(i["type"], i["new"], i["open"]) for i in answer["incidents"]] == [("looking_away", True, False)]
    assert answer["incidents"][0]["start_ts"] == 3000.0
    assert answer["state"]["frames"] == 4
    assert w.sessions.sessions[("demo", SESSION_ID)].next_sequence == 1
    assert [i.incident_id for i in w.sessions.incidents("demo", SESSION_ID)] == ["looking_away-1"]
    assert w.audit.actions().count("template.decrypted") == 1
    assert w.engine.templates[0].engine == b"template-bytes"  # the stored enrolment, opened
    assert [t for t, _ in w.events.published] == ["ProctoringIncidentOpened"]
    detail = w.events.published[0][1]
    assert detail["type"] == "looking_away" and "subject_ref" not in detail and "alice" not in json.dumps(detail)


def test_guidance_is_given_in_both_languages() -> None:
    w = world()
    answer = w.service.submit(CALLER, SESSION_ID, batch(0, ["face_absent", "face_absent"], 0.0)).answer
    assert answer["guidance"][0]["code"] == "more_light"
    assert set(answer["guidance"][0]["text"]) == {"en", "zh-CN"}
    assert answer["incidents"][0]["technical"] is True


def test_a_retried_batch_gets_the_stored_answer_and_changes_nothing() -> None:
    w = world()
    first = w.service.submit(CALLER, SESSION_ID, batch(0, ["ok", "looking_away", "looking_away"], 0.0))
    stored = w.sessions.sessions[("demo", SESSION_ID)]
    again = w.service.submit(CALLER, SESSION_ID, batch(0, ["ok", "looking_away", "looking_away"], 0.0))
    assert again.replayed and again.answer == first.answer
    assert w.engine.calls == 1
    assert w.sessions.sessions[("demo", SESSION_ID)] == stored
    assert len(w.events.published) == 1


def test_a_retry_of_an_older_batch_gets_its_own_stored_answer() -> None:
    # Given batches 0 and 1 applied, the answer of batch 0 lost on the way
    w = world()
    first = w.service.submit(CALLER, SESSION_ID, batch(0, ["ok", "looking_away", "looking_away"], 0.0))
    w.service.submit(CALLER, SESSION_ID, batch(1, ["ok"], 10_000.0))
    stored = w.sessions.sessions[("demo", SESSION_ID)]
    # When batch 0 is sent again
    again = w.service.submit(CALLER, SESSION_ID, batch(0, ["ok", "looking_away", "looking_away"], 0.0))
    # Then its own answer, and nothing changed
    assert again.replayed and again.answer == first.answer
    assert w.sessions.sessions[("demo", SESSION_ID)] == stored and w.engine.calls == 2
    # And another batch under that number is a conflict
    with pytest.raises(SequenceConflictError) as conflict:
        w.service.submit(CALLER, SESSION_ID, batch(0, ["ok"], 0.0))
    assert conflict.value.extra["expected_sequence"] == 2


def test_a_batch_out_of_order_is_refused_with_the_sequence_expected() -> None:
    w = world()
    w.service.submit(CALLER, SESSION_ID, batch(0, ["ok"], 0.0))
    with pytest.raises(SequenceConflictError) as conflict:
        w.service.submit(CALLER, SESSION_ID, batch(2, ["ok"], 10_000.0))
    assert conflict.value.extra["expected_sequence"] == 1
    assert w.engine.calls == 1


def test_another_batch_under_an_applied_sequence_is_a_conflict_not_a_replay() -> None:
    w = world()
    w.service.submit(CALLER, SESSION_ID, batch(0, ["ok"], 0.0))
    with pytest.raises(SequenceConflictError) as conflict:
        w.service.submit(CALLER, SESSION_ID, batch(0, ["looking_away"], 0.0))
    assert conflict.value.extra["expected_sequence"] == 1


def test_a_batch_that_loses_the_race_to_its_own_retry_answers_the_winners_answer() -> None:
    # Given the same batch sent twice: the rival is applied between this request's read and its write
    w = world()
    rival = batch(0, ["ok", "ok"], 0.0)
    w.sessions.before_write.append(lambda: w.service.submit(CALLER, SESSION_ID, rival))
    # When this request writes, its condition fails
    outcome = w.service.submit(CALLER, SESSION_ID, batch(0, ["ok", "ok"], 0.0))
    # Then it answers the stored answer: applied once
    assert outcome.replayed and w.sessions.sessions[("demo", SESSION_ID)].next_sequence == 1


def test_a_batch_that_loses_the_race_to_another_batch_is_told_the_sequence_expected() -> None:
    w = world()
    w.sessions.before_write.append(lambda: w.service.submit(CALLER, SESSION_ID, batch(0, ["ok"], 0.0)))
    with pytest.raises(SequenceConflictError) as conflict:
        w.service.submit(CALLER, SESSION_ID, batch(0, ["looking_away"], 0.0))
    assert conflict.value.extra["expected_sequence"] == 1
    assert w.sessions.incidents("demo", SESSION_ID) == []


@pytest.mark.parametrize(
    ("frames", "times", "error"),
    [
        ([jpeg("ok")] * (MAX_BATCH_FRAMES + 1), [float(k) for k in range(MAX_BATCH_FRAMES + 1)], TOO_LARGE),
        ([jpeg("ok"), jpeg("ok")], [2000.0, 2000.0], TimestampsNotIncreasingError),
        ([jpeg("ok"), jpeg("ok")], [4000.0, 2000.0], TimestampsNotIncreasingError),
        ([b"\x89PNG\r\n\x1a\n"], [0.0], UnsupportedMediaTypeError),
        ([b"\xff\xd8\xff" + b"x" * MAX_FRAME_BYTES], [0.0], ImageTooLargeError),
    ],
    ids=["too_many_frames", "same_timestamp", "decreasing", "png", "frame_too_large"],
)  # fmt: skip
def test_bad_batches_are_refused_before_anything_runs(frames: list[bytes], times: list[float], error: type) -> None:
    w = world()
    with pytest.raises(error):
        w.service.submit(CALLER, SESSION_ID, Batch(0, frames, times))
    assert w.engine.calls == 0
    assert w.sessions.sessions[("demo", SESSION_ID)].next_sequence == 0


def test_timestamps_must_continue_after_the_previous_batch() -> None:
    w = world()
    w.service.submit(CALLER, SESSION_ID, batch(0, ["ok", "ok"], 0.0))  # last frame at 2000 ms
    with pytest.raises(TimestampsNotIncreasingError):
        w.service.submit(CALLER, SESSION_ID, batch(1, ["ok"], 2000.0))


def test_unknown_sessions_and_other_tenants_sessions_are_not_found() -> None:
    w = world()
    with pytest.raises(ProctoringSessionNotFoundError):
        w.service.submit(CALLER, "b" * 32, batch(0, ["ok"], 0.0))
    with pytest.raises(ProctoringSessionNotFoundError):
        w.service.submit(OTHER, SESSION_ID, batch(0, ["ok"], 0.0))
    with pytest.raises(ProctoringSessionNotFoundError):
        w.service.view(OTHER, SESSION_ID)


def test_after_withdrawal_the_session_takes_no_more_frames() -> None:
    w = world()
    w.consents.state_by_key[("demo", ALICE.ref, PURPOSE)] = replace(GRANTED, status="withdrawn", epoch=None)
    with pytest.raises(ConsentRequiredError):
        w.service.submit(CALLER, SESSION_ID, batch(0, ["ok"], 0.0))
    assert w.engine.calls == 0


def test_a_bus_that_does_not_answer_never_costs_the_batch() -> None:
    w = world(events=FailingBus())
    answer = w.service.submit(CALLER, SESSION_ID, batch(0, ["looking_away", "looking_away"], 0.0)).answer
    assert answer["next_sequence"] == 1 and w.sessions.sessions[("demo", SESSION_ID)].next_sequence == 1


# ---------------------------------------------------------------- end, report, review


def test_the_report_lists_the_timeline_and_never_counts_technical_conditions_against_the_candidate() -> None:
    w = world()
    w.service.submit(CALLER, SESSION_ID, batch(0, ["ok", "face_absent", "face_absent", "ok"], 0.0))
    w.service.submit(CALLER, SESSION_ID, batch(1, ["multiple_faces", "multiple_faces"], 10_000.0))
    view = w.service.end(CALLER, SESSION_ID)
    report = view.session.report
    assert report is not None and view.session.report_token is not None
    assert view.session.report_token.startswith("unsigned.")  # what RecordingSigner was asked to sign
    assert json.loads(view.session.report_token.removeprefix("unsigned.")) == report
    assert [(i["type"], i["open"]) for i in report["timeline"]] == [("face_absent", False), ("multiple_faces", False)]
    assert report["totals"]["face_absent"] == 1 and report["totals"]["multiple_faces"] == 1
    assert report["totals"]["different_person"] == 0
    assert report["summary"]["incidents_for_review"] == 1  # multiple_faces only
    assert report["summary"]["technical_conditions"] == 1
    assert report["summary"]["counted_against_candidate"] == 0
    assert "human review" in report["summary"]["statement"]
    assert report["model"] == {"id": MODEL[0], "version": MODEL[1]}
    assert report["capture"]["frames"] == 6 and report["capture"]["batches"] == 2
    assert report["typ"] == "proctoring-report" and report["aud"] == "demo"
    assert all(i.open is False for i in w.sessions.incidents("demo", SESSION_ID))  # the open one was closed
    assert w.events.published[-1][0] == "ProctoringReportReady"
    assert "proctoring.session_ended" in w.audit.actions()


def test_ending_twice_answers_the_same_report_and_an_ended_session_takes_no_frames() -> None:
    w = world()
    w.service.submit(CALLER, SESSION_ID, batch(0, ["ok"], 0.0))
    first = w.service.end(CALLER, SESSION_ID)
    w.clock.advance(seconds=30)
    again = w.service.end(CALLER, SESSION_ID)
    assert again.session.report_token == first.session.report_token
    assert [t for t, _ in w.events.published].count("ProctoringReportReady") == 1
    with pytest.raises(ProctoringSessionEndedError):
        w.service.submit(CALLER, SESSION_ID, batch(1, ["ok"], 10_000.0))


def test_an_admin_review_is_kept_audited_and_survives_the_engines_later_updates() -> None:
    w = world()
    w.service.submit(CALLER, SESSION_ID, batch(0, ["looking_away", "looking_away"], 0.0))
    reviewed = w.service.review(CALLER, SESSION_ID, "looking_away-0", "dismissed", "reading the question aloud")
    assert (reviewed.review_status, reviewed.reviewed_by) == ("dismissed", "client-1")
    w.service.submit(CALLER, SESSION_ID, batch(1, ["looking_away"], 4000.0))  # the same incident goes on
    (kept,) = w.sessions.incidents("demo", SESSION_ID)
    assert (kept.frames, kept.review_status, kept.review_note) == (3, "dismissed", "reading the question aloud")
    event = next(e for e in w.audit.events if e.action == "proctoring.incident_reviewed")
    assert event.outcome == "dismissed" and "reading" not in json.dumps(event.details)


def test_reviewing_an_unknown_incident_is_not_found() -> None:
    w = world()
    with pytest.raises(IncidentNotFoundError):
        w.service.review(CALLER, SESSION_ID, "looking_away-0", "confirmed", None)


def test_a_batch_applied_while_the_report_is_made_is_in_the_report() -> None:
    # Given a batch with an incident that is applied between the end's read and its write
    w = world()
    w.service.submit(CALLER, SESSION_ID, batch(0, ["ok"], 0.0))
    late = batch(1, ["multiple_faces", "multiple_faces"], 10_000.0)
    w.sessions.before_write.append(lambda: w.service.submit(CALLER, SESSION_ID, late))
    # When the session ends
    view = w.service.end(CALLER, SESSION_ID)
    # Then the end was made again over it: the report has the late batch and its incident
    assert view.session.report is not None
    assert [i["type"] for i in view.session.report["timeline"]] == ["multiple_faces"]
    assert view.session.report["capture"]["batches"] == 2
    assert w.sessions.sessions[("demo", SESSION_ID)].ended


def test_a_sitting_longer_than_allowed_takes_no_more_frames_but_still_ends_with_a_report() -> None:
    w = world()
    w.service.submit(CALLER, SESSION_ID, batch(0, ["ok"], 0.0))
    w.clock.advance(hours=9)
    with pytest.raises(ProctoringSessionExpiredError):
        w.service.submit(CALLER, SESSION_ID, batch(1, ["ok"], 10_000.0))
    assert w.service.end(CALLER, SESSION_ID).session.report_token is not None

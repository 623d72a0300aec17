"""EnrolmentService on in-memory fakes of its storage ports, on the paths that never reach the face engine:
consent and size checks before anything is stored, the presigned-upload job, reading it, and ending it when
its upload never comes. (Enrolling a face, where a match matters, runs the real engine on real photos in
tests/integration/test_enrolment_api.py.)"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from facegate.consent.entities import ConsentState, Purpose
from facegate.core.audit import Auditor
from facegate.core.envelope import unpack_sealed
from facegate.core.errors import ConsentRequiredError, EnrolmentNotFoundError, ImageTooLargeError
from facegate.core.hashing import SubjectHasher
from facegate.core.tenancy import CallerContext
from facegate.enrolment.entities import UPLOAD_SECONDS, upload_key
from facegate.enrolment.service import EnrolmentService
from facegate.matching.entities import subject_id_context
from facegate.matching.templates import TemplateOpener
from tests.unit.domain.fakes import (
    Clock,
    ContextCipher,
    InMemoryAuditLog,
    InMemoryConsents,
    InMemoryEnrolmentJobs,
    InMemoryTemplates,
    InMemoryUploads,
)

pytestmark = pytest.mark.unit

CALLER = CallerContext("demo", "client-1", frozenset({"enrol"}), "req-1")
ALICE = SubjectHasher(b"p" * 32).subject("demo", "alice")
GRANTED = ConsentState(
    "checkout", "granted", "r2", 1, "s", "adult", "2026-03-01T00:00:00.000000Z", "r1", "2026-02-01T00:00:00.000000Z"
)


class Purposes:
    def purpose(self, tenant_id: str, purpose: str) -> Purpose:
        return Purpose(purpose, purpose, 365)


def no_engine() -> object:
    raise AssertionError("these paths must not reach the face engine")


@pytest.fixture
def world() -> dict:
    # Given alice's consent to `checkout`, no enrolments yet, and an uploads bucket of 1 kB
    consents = InMemoryConsents()
    consents.state_by_key[("demo", ALICE.ref, "checkout")] = GRANTED
    jobs, uploads, audit = InMemoryEnrolmentJobs(), InMemoryUploads(max_bytes=1024), InMemoryAuditLog()
    clock = Clock(datetime(2026, 3, 1, 12, 0, tzinfo=UTC))
    auditor = Auditor(audit)
    cipher = ContextCipher()
    service = EnrolmentService(
        Purposes(),
        consents,
        jobs,
        InMemoryTemplates(),
        cipher,
        TemplateOpener(cipher=cipher, auditor=auditor, engine=no_engine),  # type: ignore[arg-type]
        uploads,
        no_engine,  # type: ignore[arg-type]
        auditor,
        clock=clock,
    )
    return {"service": service, "consents": consents, "jobs": jobs, "uploads": uploads, "audit": audit, "clock": clock}


def test_without_active_consent_nothing_is_stored(world: dict) -> None:
    # Given alice withdrew her consent
    world["consents"].state_by_key[("demo", ALICE.ref, "checkout")] = ConsentState(
        "checkout", "withdrawn", "r3", 1, "s", "adult", "2026-03-01T00:00:00.000000Z"
    )
    # When an enrolment starts, Then it is refused and no job or upload exists
    with pytest.raises(ConsentRequiredError):
        world["service"].start(CALLER, ALICE, "checkout", b"jpeg", "image/jpeg")
    assert world["jobs"].jobs == {} and world["audit"].events == []


def test_an_image_over_the_limit_is_refused_before_a_job_exists(world: dict) -> None:
    with pytest.raises(ImageTooLargeError):
        world["service"].start(CALLER, ALICE, "checkout", b"x" * 1025, "image/jpeg")
    assert world["jobs"].jobs == {}


def test_without_an_image_the_job_awaits_its_upload_under_the_keyed_hash(world: dict) -> None:
    # When an enrolment starts without an image
    started = world["service"].start(CALLER, ALICE, "checkout", None, "image/jpeg")
    job = started.job
    # Then a pending job awaits the upload, at a key with the subject's ref and never the raw id
    assert (job.status, job.phase, job.subject_ref) == ("pending", "upload", ALICE.ref)
    assert started.upload is not None
    assert started.upload.fields["key"] == upload_key("demo", ALICE.ref, job.enrolment_id)
    assert "alice" not in started.upload.url
    # and the subject id is kept only sealed, under its own encryption context (for a 1:N answer)
    sealed = unpack_sealed(job.subject_sealed)
    assert ContextCipher().open(sealed, subject_id_context("demo", ALICE.ref)) == b"alice"
    # and the job is readable by the subject's ref, in the consent period it started in
    assert world["service"].status(CALLER, ALICE, job.enrolment_id).consent_epoch == GRANTED.epoch


def test_an_upload_that_never_comes_ends_the_job_when_it_is_read_after_its_deadline(world: dict) -> None:
    job = world["service"].start(CALLER, ALICE, "checkout", None, "image/jpeg").job
    # When the upload deadline passes without an upload
    world["clock"].advance(seconds=UPLOAD_SECONDS + 1)
    ended = world["service"].status(CALLER, ALICE, job.enrolment_id)
    # Then the job has failed with upload_not_received, audited, and the (absent) upload was deleted
    assert (ended.status, ended.reason) == ("failed", "upload_not_received")
    assert world["audit"].actions() == ["enrolment.failed"]
    assert upload_key("demo", ALICE.ref, job.enrolment_id) in world["uploads"].deleted


def test_another_subjects_enrolment_is_not_found(world: dict) -> None:
    job = world["service"].start(CALLER, ALICE, "checkout", None, "image/jpeg").job
    bob = SubjectHasher(b"p" * 32).subject("demo", "bob")
    with pytest.raises(EnrolmentNotFoundError):
        world["service"].status(CALLER, bob, job.enrolment_id)

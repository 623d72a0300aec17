"""DeletionService on in-memory fakes of its storage ports: the erasure cut-off rule (a job erases only what
existed at its request), deletes conditional on the item being the one read, the per-store counts and the
receipt, and the request itself (consents ended, one job queued, no raw subject id), without moto."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from facegate.core.audit import Auditor
from facegate.core.clock import iso
from facegate.core.hashing import Subject, SubjectHasher
from facegate.core.tenancy import CallerContext, subject_pk
from facegate.deletion.entities import Stores, TableStore
from facegate.deletion.service import DeletionService
from facegate.enrolment.entities import upload_key
from tests.unit.domain.fakes import (
    Clock,
    InMemoryAuditLog,
    InMemoryBucket,
    InMemoryDeletions,
    InMemoryTables,
    RecordingQueue,
    RecordingSigner,
)

pytestmark = pytest.mark.unit

CALLER = CallerContext("demo", "client-1", frozenset({"admin"}), "req-1")
ALICE = SubjectHasher(b"p" * 32).subject("demo", "alice")
PK = subject_pk("demo", ALICE.ref)
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
BEFORE, AFTER = "2026-03-01T11:00:00.000000Z", "2026-03-01T12:30:00.000000Z"


def table(name: str, partition: str = "pk", sort: str = "sk") -> TableStore:
    return TableStore(name, f"{name}-table", partition, sort)


STORES = Stores(
    templates=table("templates"),
    jobs=table("enrolment_jobs"),
    sessions=table("sessions"),
    challenges=table("challenges"),
    idempotency=table("idempotency", "id", "sk"),
    consents=table("consents"),
    uploads_bucket="uploads",
)


@pytest.fixture
def world() -> dict:
    tables, bucket, deletions, queue = InMemoryTables(), InMemoryBucket(), InMemoryDeletions(), RecordingQueue()
    audit, clock = InMemoryAuditLog(), Clock(T0)
    ended: list[tuple[CallerContext, Subject]] = []
    service = DeletionService(
        STORES,
        tables,
        bucket,
        deletions,
        RecordingSigner(),
        queue,
        Auditor(audit),
        "facegate",
        end_consents=lambda caller, subject: ended.append((caller, subject)),
        clock=clock,
    )
    return {
        "service": service,
        "tables": tables,
        "bucket": bucket,
        "deletions": deletions,
        "queue": queue,
        "audit": audit,
        "clock": clock,
        "ended": ended,
    }


def test_a_request_ends_the_consents_and_queues_one_job_that_names_only_the_keyed_hash(world: dict) -> None:
    job = world["service"].request_subject_erasure(CALLER, ALICE)
    # Then every consent of alice ended at once (with the request's one subject), and one job is queued
    assert world["ended"] == [(CALLER, ALICE)]
    assert world["queue"].sent == [{"deletion_id": job.deletion_id, "tenant_id": "demo"}]
    stored = world["deletions"].get("demo", job.deletion_id)
    assert (stored.status, stored.scope, stored.subject_ref) == ("queued", "subject", ALICE.ref)
    assert "alice" not in json.dumps(
        [stored.__dict__, world["queue"].sent, [e.__dict__ for e in world["audit"].events]]
    )


def test_a_job_erases_what_existed_at_its_request_and_keeps_what_came_after(world: dict) -> None:
    tables, bucket = world["tables"], world["bucket"]
    # Given alice's data from before the request and an enrolment and a session from after it
    tables.add("templates-table", pk=PK, sk="TEMPLATE#checkout#1", template_id="t1", created_at=BEFORE)
    tables.add("templates-table", pk=PK, sk="TEMPLATE#checkout#2", template_id="t2", created_at=AFTER)
    tables.add("enrolment_jobs-table", pk=PK, sk="ENROLMENT#e1", created_at=BEFORE)
    tables.add("sessions-table", pk=PK, sk="SESSION#s1", created_at=BEFORE)
    tables.add("sessions-table", pk=PK, sk="SESSION#s2", created_at=AFTER)
    tables.add("challenges-table", pk=PK, sk="CHALLENGE#c1")  # no creation time: counts as older
    bucket.objects[upload_key("demo", ALICE.ref, "e1")] = T0.timestamp() + 3600  # the erased job's upload
    bucket.objects[upload_key("demo", ALICE.ref, "e9")] = T0.timestamp() + 3600  # a newer enrolment's
    # and another subject's template, which no job of alice's touches
    tables.add("templates-table", pk=subject_pk("demo", "other"), sk="TEMPLATE#checkout#1", created_at=BEFORE)
    job = world["service"].request_subject_erasure(CALLER, ALICE)

    # When the job runs (late: an hour after its request)
    world["clock"].advance(hours=1)
    done = world["service"].run("demo", job.deletion_id)

    # Then what existed at the request is gone, what came after stays, and each store says how many
    left = {t: [i["sk"] for i in items] for t, items in tables.tables.items()}
    assert left["templates-table"] == ["TEMPLATE#checkout#2", "TEMPLATE#checkout#1"]
    assert left["sessions-table"] == ["SESSION#s2"]
    assert left["enrolment_jobs-table"] == [] and left["challenges-table"] == []
    assert list(bucket.objects) == [upload_key("demo", ALICE.ref, "e9")]
    assert done.counts == {
        "templates": 1,
        "enrolment_jobs": 1,
        "sessions": 1,
        "challenges": 1,
        "uploads": 1,
        "idempotency": 0,
        "consents": 0,
    }
    # and the receipt states the same counts; the finished job no longer names the subject
    receipt = json.loads(done.receipt.removeprefix("unsigned."))
    assert receipt["stores"] == done.counts and receipt["typ"] == "deletion-receipt"
    assert world["deletions"].get("demo", job.deletion_id).subject_ref is None
    assert world["audit"].actions() == ["erasure.requested", "erasure.completed"]


def test_an_item_rewritten_between_the_read_and_the_delete_stays(world: dict) -> None:
    tables = world["tables"]
    tables.add("sessions-table", pk=PK, sk="SESSION#s1", created_at=BEFORE)
    job = world["service"].request_subject_erasure(CALLER, ALICE)

    # Given a new session written under the same key just after the job read the old one
    def rewrite(store: TableStore, item: dict) -> None:
        if store.name == "sessions":
            row = next(r for r in tables.tables["sessions-table"] if r["sk"] == item["sk"])
            row["created_at"] = AFTER

    tables.before_delete = rewrite
    done = world["service"].run("demo", job.deletion_id)
    # Then the conditional delete left the new session alone and did not count it
    assert [i["created_at"] for i in tables.tables["sessions-table"]] == [AFTER]
    assert done.counts["sessions"] == 0


def test_a_rerun_after_a_failure_erases_the_rest_and_a_finished_job_is_left_alone(world: dict) -> None:
    tables = world["tables"]
    tables.add("templates-table", pk=PK, sk="TEMPLATE#checkout#1", template_id="t1", created_at=BEFORE)
    tables.add("sessions-table", pk=PK, sk="SESSION#s1", created_at=BEFORE)
    job = world["service"].request_subject_erasure(CALLER, ALICE)

    # Given a first run that fails after the templates (the sessions' delete raises)
    def fail_on_sessions(store: TableStore, item: dict) -> None:
        if store.name == "sessions":
            raise RuntimeError("throttled")

    tables.before_delete = fail_on_sessions
    with pytest.raises(RuntimeError):
        world["service"].run("demo", job.deletion_id)
    # When SQS redelivers and the job runs again
    tables.before_delete = None
    done = world["service"].run("demo", job.deletion_id)
    # Then it erased the rest (the template was gone already: erasing an erased store removes nothing)
    assert tables.tables["sessions-table"] == [] and tables.tables["templates-table"] == []
    assert done.status == "completed" and done.counts["sessions"] == 1
    # and the receipt counts what both runs erased (the first run's template included)
    assert done.counts["templates"] == 1
    assert json.loads(done.receipt.removeprefix("unsigned."))["stores"]["templates"] == 1
    # and running a completed job again changes nothing
    again = world["service"].run("demo", job.deletion_id)
    assert again.status == "completed" and world["audit"].actions().count("erasure.completed") == 1


def test_a_withdrawal_erases_that_purposes_data_including_templates_of_the_ended_period(world: dict) -> None:
    tables = world["tables"]
    # Given templates of two purposes, one of them written after the withdrawal in the ended period
    tables.add("templates-table", pk=PK, sk="TEMPLATE#checkout#1", purpose="checkout", created_at=BEFORE)
    late = tables.add(
        "templates-table", pk=PK, sk="TEMPLATE#checkout#2", purpose="checkout", created_at=AFTER, consent_epoch="r1"
    )
    tables.add("templates-table", pk=PK, sk="TEMPLATE#exam#1", purpose="exam", created_at=BEFORE)
    detail = {
        "tenant_id": "demo",
        "subject_ref": ALICE.ref,
        "purpose": "checkout",
        "record_id": "r5",
        "withdrawn_at": iso(T0),
        "epoch": "r1",
    }
    # When the ConsentWithdrawn event is handled
    done = world["service"].on_consent_withdrawn(detail)
    # Then both checkout templates are gone (the late one belongs to the ended period), exam's stays
    assert [i["sk"] for i in tables.tables["templates-table"]] == ["TEMPLATE#exam#1"]
    assert late not in tables.tables["templates-table"]
    assert done.counts["templates"] == 2 and done.scope == "purpose"

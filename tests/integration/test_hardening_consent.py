"""Hardening (issue 10, items 2-4): withdrawn face data is never used again, a late erasure job never
erases what came after its request, and a subject's enrolment is one person, capped.

Every interleaving is driven explicitly: the erasure queue is held (its event source does not deliver)
until the test releases it after the re-grant; the parallel enrolments meet at a barrier. Real models
on real photos throughout; no embedding, score or match is made up.
"""

from __future__ import annotations

import base64
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests

from facegate import wiring
from facegate.core.errors import FacegateError
from facegate.core.tenancy import CallerContext
from facegate.matching.entities import EngineTemplate, gallery_id
from localcloud.cloud import LocalCloud
from tests.integration.conftest import Api
from tests.integration.test_consent_api import consent_body, current_notice
from tests.integration.test_enrolment_api import grant, uploads_bucket_keys

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# 1:N runs in the tenant `other` so that the gallery rows these tests leave never meet the demo
# tenant's identification tests (which expect demo's 1:N to start disabled).
ONE_TO_N_TENANT = "other"
ONE_TO_N_PURPOSE = "exam_proctoring"


def b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def ref(subject_id: str, tenant: str = "demo") -> str:
    return wiring.container().hasher.ref(tenant, subject_id)


class HeldErasures:
    """The deletion function's queue with its event source paused: jobs wait until `release()`."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.cloud: LocalCloud = api.cloud
        self.trigger = next(t for t in self.cloud.triggers if t.function == "DeletionFunction")
        self.cloud.deliver_events()  # nothing of an earlier test stays queued
        self.cloud.triggers.remove(self.trigger)

    def waiting(self) -> int:
        sqs = self.cloud.session.client("sqs")
        attributes = sqs.get_queue_attributes(
            QueueUrl=self.trigger.queue_url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"])

    def release(self) -> None:
        if self.trigger not in self.cloud.triggers:
            self.cloud.triggers.append(self.trigger)
        self.cloud.deliver_events()


@pytest.fixture
def held(api: Api) -> Iterator[HeldErasures]:
    hold = HeldErasures(api)
    try:
        yield hold
    finally:
        hold.release()


@pytest.fixture
def one_to_n(api: Api) -> Iterator[None]:
    body = {"identification_enabled": True, "assessment_id": "PIA-2026-HARDEN"}
    assert api.call("PUT", f"/v1/purposes/{ONE_TO_N_PURPOSE}", body, tenant=ONE_TO_N_TENANT).status == 200
    yield
    off = {"identification_enabled": False}
    assert api.call("PUT", f"/v1/purposes/{ONE_TO_N_PURPOSE}", off, tenant=ONE_TO_N_TENANT).status == 200


def enrol(api: Api, subject_id: str, photo: Path, purpose: str = "checkout", tenant: str = "demo", **extra: Any) -> Any:
    body = {"purpose": purpose, "image": b64(photo), **extra}
    return api.call("POST", f"/v1/subjects/{subject_id}/enrolments", body, tenant=tenant)


def verify(
    api: Api, subject_id: str, photo: Path, purpose: str = "checkout", tenant: str = "demo", **extra: Any
) -> Any:
    body = {"subject_id": subject_id, "purpose": purpose, "image": b64(photo), "security_level": "high", **extra}
    return api.call("POST", "/v1/verifications", body, tenant=tenant)


def identify(api: Api, photo: Path) -> list[str]:
    body = {"purpose": ONE_TO_N_PURPOSE, "image": b64(photo), "top_k": 10}
    reply = api.call("POST", "/v1/identifications", body, tenant=ONE_TO_N_TENANT)
    assert reply.status == 200, reply.body
    return [candidate["subject_id"] for candidate in reply.json["candidates"]]


def withdraw(api: Api, subject_id: str, purpose: str = "checkout", tenant: str = "demo") -> dict:
    reply = api.call("DELETE", f"/v1/subjects/{subject_id}/consents/{purpose}", tenant=tenant)
    assert reply.status == 200, reply.body
    return reply.json


def deletion(api: Api, deletion_id: str, tenant: str = "demo") -> Any:
    return api.call("GET", f"/v1/deletions/{deletion_id}", tenant=tenant)


def templates_of(aws: boto3.session.Session, api: Api, subject_ref: str) -> list[dict[str, Any]]:
    table = api.cloud.stack.ref("TemplatesTable")
    items = aws.client("dynamodb").scan(TableName=table)["Items"]
    return [i for i in items if i["pk"]["S"].endswith(f"#S#{subject_ref}")]


def gallery_subjects(tenant: str, purpose: str, template: dict) -> list[str]:
    """The subject refs of the rows the gallery itself holds (what a search scans), before any consent
    check (a row's id is `<subject_ref>/<template_id>`)."""
    gallery = gallery_id(tenant, purpose, template["model_id"], template["model_version"])
    return [row.partition("/")[0] for shard in wiring.container().gallery.shards(gallery) for row in shard.ids]


def test_withdrawn_face_data_is_never_used_after_a_quick_regrant(
    api: Api, aws: boto3.session.Session, held: HeldErasures, one_to_n: None, enrollable_people: list[list[Path]]
) -> None:
    person = enrollable_people[7]
    subject = f"regrant-{uuid.uuid4().hex[:12]}"
    subject_ref = ref(subject, ONE_TO_N_TENANT)
    grant(api, subject, ONE_TO_N_PURPOSE, tenant=ONE_TO_N_TENANT)
    enrolled = enrol(api, subject, person[0], ONE_TO_N_PURPOSE, ONE_TO_N_TENANT)
    assert enrolled.status == 201, enrolled.body
    template = enrolled.json["template"]
    assert verify(api, subject, person[1], ONE_TO_N_PURPOSE, ONE_TO_N_TENANT).json["decision"] == "match"
    assert subject in identify(api, person[1])

    # Given: consent withdrawn and granted again before the erasure job has run
    withdrawal = withdraw(api, subject, ONE_TO_N_PURPOSE, ONE_TO_N_TENANT)
    grant(api, subject, ONE_TO_N_PURPOSE, tenant=ONE_TO_N_TENANT)
    assert held.waiting() >= 1
    job_id = f"withdrawal-{withdrawal['record_id']}"
    assert deletion(api, job_id, ONE_TO_N_TENANT).status == 404  # the job has not run
    # the old template and its gallery row are still stored: only the read-time rule protects them
    assert [i["template_id"]["S"] for i in templates_of(aws, api, subject_ref)] == [template["template_id"]]
    assert subject_ref in gallery_subjects(ONE_TO_N_TENANT, ONE_TO_N_PURPOSE, template)

    # Then: verification, identification and the non-face session never use it
    reply = verify(api, subject, person[1], ONE_TO_N_PURPOSE, ONE_TO_N_TENANT)
    assert reply.status == 409 and reply.json["code"] == "not_enrolled", reply.body
    assert reply.headers["content-type"] == "application/problem+json"
    assert subject not in identify(api, person[1])
    session = {"subject_id": subject, "purpose": ONE_TO_N_PURPOSE, "email": "regrant@example.com"}
    methods = api.call("POST", "/v1/verification-sessions", session, tenant=ONE_TO_N_TENANT).json["methods"]
    assert "face" not in methods and "email_otp" in methods

    # When the queued job runs, it erases the old period's template and row; still nothing is used
    held.release()
    job = deletion(api, job_id, ONE_TO_N_TENANT).json
    assert job["status"] == "completed" and job["removed"]["templates"] == 1 and job["removed"]["galleries"] == 1
    assert templates_of(aws, api, subject_ref) == []
    assert subject_ref not in gallery_subjects(ONE_TO_N_TENANT, ONE_TO_N_PURPOSE, template)
    assert verify(api, subject, person[1], ONE_TO_N_PURPOSE, ONE_TO_N_TENANT).json["code"] == "not_enrolled"
    assert subject not in identify(api, person[1])

    # A new enrolment under the new consent is used again, in 1:1 and 1:N
    assert enrol(api, subject, person[0], ONE_TO_N_PURPOSE, ONE_TO_N_TENANT).status == 201
    assert verify(api, subject, person[1], ONE_TO_N_PURPOSE, ONE_TO_N_TENANT).json["decision"] == "match"
    assert subject in identify(api, person[1])


def test_templates_from_before_epochs_follow_the_same_rule(
    api: Api, aws: boto3.session.Session, subject_id: str, held: HeldErasures, enrollable_people: list[list[Path]]
) -> None:
    """Data written before consent epochs existed (no epoch on the state or the template) stays usable in
    its consent period and is never used after a withdrawal, re-grant or not."""
    person = enrollable_people[5]
    grant(api, subject_id)
    assert enrol(api, subject_id, person[0]).status == 201
    # Given: the template and the consent state as the code before epochs wrote them
    ddb = aws.client("dynamodb")
    table = api.cloud.stack.ref("TemplatesTable")
    (item,) = templates_of(aws, api, ref(subject_id))
    ddb.delete_item(TableName=table, Key={"pk": item["pk"], "sk": item["sk"]})
    legacy = {k: v for k, v in item.items() if k not in ("consent_epoch", "seq", "replacement")}
    legacy["sk"] = {"S": f"TEMPLATE#checkout#{item['template_id']['S']}"}
    ddb.put_item(TableName=table, Item=legacy)
    consents = api.cloud.stack.ref("ConsentsTable")
    key = {"pk": {"S": f"T#demo#S#{ref(subject_id)}"}, "sk": {"S": "STATE#checkout"}}
    ddb.update_item(TableName=consents, Key=key, UpdateExpression="REMOVE epoch, epoch_started_at")
    # Then: usable in the period it was enrolled in (the epoch is read from the consent history)
    assert verify(api, subject_id, person[1]).json["decision"] == "match"
    # and a consent to a new notice version (a grant after a grant) keeps the period
    grant(api, subject_id)
    assert verify(api, subject_id, person[1]).json["decision"] == "match"
    # but never after a withdrawal, even once granted again
    withdraw(api, subject_id)
    grant(api, subject_id)
    reply = verify(api, subject_id, person[1])
    assert reply.status == 409 and reply.json["code"] == "not_enrolled", reply.body
    held.release()
    assert templates_of(aws, api, ref(subject_id)) == []


def test_a_late_withdrawal_job_keeps_the_enrolment_made_after_the_regrant(
    api: Api, aws: boto3.session.Session, held: HeldErasures, one_to_n: None, enrollable_people: list[list[Path]]
) -> None:
    person = enrollable_people[6]
    subject = f"late-job-{uuid.uuid4().hex[:12]}"
    subject_ref = ref(subject, ONE_TO_N_TENANT)
    tenant, purpose = ONE_TO_N_TENANT, ONE_TO_N_PURPOSE
    grant(api, subject, purpose, tenant=tenant)
    first = enrol(api, subject, person[0], purpose, tenant)
    assert first.status == 201, first.body
    withdrawal = withdraw(api, subject, purpose, tenant)
    grant(api, subject, purpose, tenant=tenant)
    # Given: enrolled again under the new consent, before the withdrawal's job has run
    second = enrol(api, subject, person[1], purpose, tenant)
    assert second.status == 201, second.body
    assert held.waiting() >= 1

    # When: the stale job runs
    held.release()
    job = deletion(api, f"withdrawal-{withdrawal['record_id']}", tenant).json
    assert job["status"] == "completed", job
    assert job["removed"]["templates"] == 1 and job["removed"]["enrolment_jobs"] == 1, job

    # Then: only what predates the withdrawal is gone; the new enrolment is there and works
    path = f"/v1/subjects/{subject}/enrolments"
    assert api.call("GET", f"{path}/{first.json['enrolment_id']}", tenant=tenant).status == 404
    kept = api.call("GET", f"{path}/{second.json['enrolment_id']}", tenant=tenant)
    assert kept.status == 200 and kept.json["status"] == "completed", kept.body
    stored = [i["template_id"]["S"] for i in templates_of(aws, api, subject_ref)]
    assert stored == [second.json["template"]["template_id"]]
    assert verify(api, subject, person[2], purpose, tenant).json["decision"] == "match"
    assert subject in identify(api, person[2])  # its gallery row survived the stale job too


def test_subject_erasure_erases_what_existed_at_the_request_and_keeps_what_came_after(
    api: Api, aws: boto3.session.Session, subject_id: str, held: HeldErasures, enrollable_people: list[list[Path]]
) -> None:
    person = enrollable_people[4]
    grant(api, subject_id)
    before = api.call(
        "POST",
        f"/v1/subjects/{subject_id}/enrolments",
        {"purpose": "checkout", "image": b64(person[0])},
        headers={"idempotency-key": "erasure-cutoff-0001"},
    )
    assert before.status == 201, before.body
    old_ciphertext = templates_of(aws, api, ref(subject_id))[0]["ciphertext"]["B"]
    history_before = api.call("GET", f"/v1/subjects/{subject_id}/consents/history").json["records"]

    # Given: erasure requested; the job waits
    requested = api.call("DELETE", f"/v1/subjects/{subject_id}")
    assert requested.status == 202
    # The request ends consent at once: no face use, even before the job
    state = api.call("GET", f"/v1/subjects/{subject_id}/consents").json["consents"][0]
    assert state["status"] == "withdrawn" and state["active"] is False
    assert verify(api, subject_id, person[1]).json["code"] == "consent_required"
    # The person consents and enrols again before the job runs: a new period
    grant(api, subject_id)
    assert verify(api, subject_id, person[1]).json["code"] == "not_enrolled"  # the old template is void
    after = enrol(api, subject_id, person[1])
    assert after.status == 201, after.body

    # When: the job runs
    held.release()
    job = deletion(api, requested.json["deletion_id"]).json
    assert job["status"] == "completed", job
    assert job["removed"]["templates"] == 1 and job["removed"]["enrolment_jobs"] == 1, job
    assert job["removed"]["idempotency"] >= 1 and job["removed"]["consents"] >= len(history_before) + 1, job

    # Then: everything that existed at the request is gone, what came after it stays and works
    assert api.call("GET", f"/v1/subjects/{subject_id}/enrolments/{before.json['enrolment_id']}").status == 404
    assert api.call("GET", f"/v1/subjects/{subject_id}/enrolments/{after.json['enrolment_id']}").status == 200
    stored = templates_of(aws, api, ref(subject_id))
    assert [i["template_id"]["S"] for i in stored] == [after.json["template"]["template_id"]]
    assert all(i["ciphertext"]["B"] != old_ciphertext for i in stored)
    assert verify(api, subject_id, person[2]).json["decision"] == "match"
    records = api.call("GET", f"/v1/subjects/{subject_id}/consents/history").json["records"]
    assert [r["action"] for r in records] == ["granted"]
    assert not {r["record_id"] for r in records} & {r["record_id"] for r in history_before}
    # the chain goes on from the tombstone, which keeps the hash of the last erased record
    consents = api.cloud.stack.ref("ConsentsTable")
    key = {"pk": {"S": f"T#demo#S#{ref(subject_id)}"}, "sk": {"S": "TOMBSTONE"}}
    tombstone = aws.client("dynamodb").get_item(TableName=consents, Key=key)["Item"]
    assert tombstone["last_record_hash"]["S"] == records[0]["prev_hash"]


def test_a_refusal_that_ends_a_granted_period_erases_its_face_data(
    api: Api, aws: boto3.session.Session, subject_id: str, held: HeldErasures, enrollable_people: list[list[Path]]
) -> None:
    person = enrollable_people[3]
    grant(api, subject_id)
    assert enrol(api, subject_id, person[0]).status == 201
    notice = current_notice(api)
    refused = api.call("POST", f"/v1/subjects/{subject_id}/consents", consent_body(notice, decision="refused"))
    assert refused.status == 201
    assert held.waiting() >= 1
    held.release()
    job = deletion(api, f"withdrawal-{refused.json['record_id']}").json
    assert job["status"] == "completed" and job["removed"]["templates"] == 1, job
    assert templates_of(aws, api, ref(subject_id)) == []


def test_consent_withdrawn_and_granted_again_while_the_photo_is_embedded(
    api: Api,
    aws: boto3.session.Session,
    subject_id: str,
    held: HeldErasures,
    enrollable_people: list[list[Path]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An enrolment started under one consent period must not store a template after that period ended,
    even if consent was granted again meanwhile."""
    person = enrollable_people[3]
    grant(api, subject_id)
    service = wiring.container().enrolments
    real = service._engine

    class WithdrawnMeanwhile:
        def __init__(self, engine: Any) -> None:
            self._engine = engine

        def enrol(self, image: bytes) -> EngineTemplate:
            template = self._engine.enrol(image)
            withdraw(api, subject_id)  # the consent function runs while the embedding function works
            grant(api, subject_id)
            return template

        def __getattr__(self, name: str) -> Any:
            return getattr(self._engine, name)

    monkeypatch.setattr(service, "_engine", lambda: WithdrawnMeanwhile(real()))
    reply = enrol(api, subject_id, person[0])
    monkeypatch.setattr(service, "_engine", real)
    assert reply.status == 403 and reply.json["code"] == "consent_required", reply.body
    assert templates_of(aws, api, ref(subject_id)) == []
    assert uploads_bucket_keys(aws, api) == []


def test_a_different_persons_face_is_refused_and_replacement_is_explicit(
    api: Api, aws: boto3.session.Session, subject_id: str, enrollable_people: list[list[Path]]
) -> None:
    owner, intruder = enrollable_people[2], enrollable_people[1]
    grant(api, subject_id)
    assert enrol(api, subject_id, owner[0]).status == 201

    # A different person's face is refused, inline and by upload, and changes nothing
    reply = enrol(api, subject_id, intruder[0])
    assert reply.status == 409 and reply.json["code"] == "enrolment_mismatch", reply.body
    assert reply.headers["content-type"] == "application/problem+json"
    started = api.call("POST", f"/v1/subjects/{subject_id}/enrolments", {"purpose": "checkout"}).json
    form = started["upload"]
    requests.post(form["url"], data=form["fields"], files={"file": ("s", intruder[0].read_bytes())}, timeout=30)
    api.cloud.deliver_events()
    job = api.call("GET", f"/v1/subjects/{subject_id}/enrolments/{started['enrolment_id']}").json
    assert job["status"] == "failed" and job["reason"] == "enrolment_mismatch", job
    assert len(templates_of(aws, api, ref(subject_id))) == 1
    assert verify(api, subject_id, intruder[1], security_level="very_high").json["decision"] == "no_match"

    # The same person is accepted
    assert enrol(api, subject_id, owner[1]).status == 201
    assert len(templates_of(aws, api, ref(subject_id))) == 2

    # An explicit replacement erases the old templates first, and is audited
    replaced = enrol(api, subject_id, intruder[0], replace=True)
    assert replaced.status == 201, replaced.body
    stored = templates_of(aws, api, ref(subject_id))
    assert [i["template_id"]["S"] for i in stored] == [replaced.json["template"]["template_id"]]
    assert verify(api, subject_id, owner[2]).json["decision"] == "no_match"
    assert verify(api, subject_id, intruder[1]).json["decision"] == "match"
    audit = aws.client("dynamodb").scan(TableName=api.cloud.stack.ref("AuditTable"))["Items"]
    mine = [i for i in audit if i.get("subject_ref", {}).get("S") == ref(subject_id)]
    assert [i["action"]["S"] for i in mine].count("enrolment.replaced") == 1


def test_ten_parallel_enrolments_never_pass_the_cap(
    api: Api,
    aws: boto3.session.Session,
    subject_id: str,
    enrollable_people: list[list[Path]],
    atomic_dynamodb: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Ten enrolments of the same photo: all ten embed, meet at a barrier, and only then read the
    subject's templates and store theirs. A read-then-write cap would let all ten through; the
    numbered conditional put lets exactly five store a template, and the other five are refused."""
    photo = enrollable_people[1][0].read_bytes()
    grant(api, subject_id)
    service = wiring.container().enrolments
    real = service._engine
    barrier = threading.Barrier(10, timeout=120)

    class MeetAfterEmbedding:
        def __init__(self, engine: Any) -> None:
            self._engine = engine

        def enrol(self, image: bytes) -> EngineTemplate:
            template = self._engine.enrol(image)
            barrier.wait()  # every enrolment has its template; none has read or written yet
            return template

        def __getattr__(self, name: str) -> Any:
            return getattr(self._engine, name)

    monkeypatch.setattr(service, "_engine", lambda: MeetAfterEmbedding(real()))
    caller = CallerContext("demo", "parallel-test", frozenset({"enrol"}))
    subject = wiring.container().subject(caller, subject_id)
    outcomes: list[str] = []
    completed: list[str] = []

    def one() -> None:
        try:
            started = service.start(caller, subject, "checkout", photo, "image/jpeg")
        except FacegateError as error:
            outcomes.append(error.code)
        else:
            outcomes.append(started.job.status)
            completed.append(str(started.job.template_id))

    threads = [threading.Thread(target=one) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    monkeypatch.setattr(service, "_engine", real)

    assert sorted(outcomes) == ["completed"] * 5 + ["too_many_templates"] * 5, outcomes
    stored = templates_of(aws, api, ref(subject_id))
    assert sorted(i["template_id"]["S"] for i in stored) == sorted(completed)  # every 201 kept its template
    assert sorted(int(i["seq"]["N"]) for i in stored) == [1, 2, 3, 4, 5]
    # and over HTTP, a sixth answers 409 too_many_templates
    reply = enrol(api, subject_id, enrollable_people[1][0])
    assert reply.status == 409 and reply.json["code"] == "too_many_templates", reply.body

"""The races of hardening items 2-7 (issue 10), reproduced over HTTP against the running local cloud.

One local cloud for the module, booted as `make run` boots it (`python -m localcloud run`): every function
runs in a pool of worker processes, its instances, which reach the AWS emulator over HTTP, so concurrent
requests run in parallel in separate processes as they do on Lambda. Requests are fired by threads that a
barrier releases together; every answer names the instance that served it (`x-localcloud-instance`) and
its invocation's interval, so the tests assert that the race really ran on several instances at once.
Real models on real photos; nothing is faked.

What this proves and on what: the emulator handles one DynamoDB request at a time (localcloud.emulator),
so each conditional write is atomic as on DynamoDB, and nothing more: everything our functions do between
their requests (a read, the engine, a write) interleaves freely across processes. The assertions hold
for every interleaving (no timing thresholds); where the outcome depends on which request came first,
each allowed outcome is stated exactly. Nothing sleeps to make a race happen: the erasure job of items
2-3 is held back deterministically, by freezing (SIGSTOP) the deletion function's instance it is
delivered to until the test has re-granted consent and enrolled again; the only waits are bounded polls
for that job once released. What HTTP cannot do is stop a function between two of its own requests, so
the worst interleavings inside one function (every request reads before any writes) are forced by the
in-process tests (tests/integration/test_hardening_*.py), not here.
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import boto3
import pytest

from facegate.core.hashing import SubjectHasher
from localcloud.outbox import collect, fetch
from localcloud.process import RunningCloud, running
from localcloud.provision import STACK_NAME

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

INSTANCES = 3  # per function, as `make run` by default
WAIT_S = 120  # a bound for a hung request or job, never a timing assumption
LOCKOUT_FAILURES = 5  # face attempts per subject and purpose in 15 minutes (item 5)
TEMPLATE_CAP = 5  # templates per subject and purpose (item 4)
OTP_GUESSES_PER_DAY = 10  # wrong codes per subject in 24 hours (item 6)
CHALLENGE_ATTEMPTS = 5  # wrong codes per challenge
# The fallback function also limits each subject to 10 requests of a kind per minute. Within one minute that
# limit alone would stop an 11th guess, so the subject's daily budget could never be what is tested; as the
# integration test of item 6 does, the module's local cloud raises it (and only it) so that the budget is
# the only thing that can stop a burst of guesses.
ENV_VARS = {"FallbackFunction": {"FALLBACK_SUBJECT_LIMIT_PER_MINUTE": "1000"}}


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: Any

    @property
    def code(self) -> str | None:
        return self.body.get("code") if isinstance(self.body, dict) else None

    @property
    def instance(self) -> str:
        return self.headers["x-localcloud-instance"]

    @property
    def interval(self) -> tuple[int, int]:
        started, finished = (int(t) for t in self.headers["x-localcloud-invocation"].split())
        return started, finished

    def overlaps(self, other: Answer) -> bool:
        (a0, a1), (b0, b1) = self.interval, other.interval
        return a0 < b1 and b0 < a1


class Client:
    """HTTP to the local cloud (a demo token with every scope), and read-only looks into its emulator."""

    def __init__(self, cloud: RunningCloud) -> None:
        self.cloud = cloud
        self.token = cloud.token("demo")
        self.endpoint = f"http://127.0.0.1:{cloud.env['MOTO_PORT']}"

    def call(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Answer:
        request = urllib.request.Request(
            self.cloud.base + path, data=json.dumps(body).encode() if body is not None else None, method=method
        )
        request.add_header("content-type", "application/json")
        request.add_header("authorization", f"Bearer {self.token}")
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            response = urllib.request.urlopen(request, timeout=WAIT_S)
        except urllib.error.HTTPError as error:
            response = error
        with response:
            raw = response.read()
            return Answer(
                response.status, {k.lower(): v for k, v in response.headers.items()}, json.loads(raw or b"null")
            )

    # -- the API

    def grant(self, subject: str) -> None:
        notice = self.call("GET", "/v1/notices/checkout?locale=en").body
        body = {
            "purpose": "checkout",
            "notice_version": notice["version"],
            "notice_sha256": notice["sha256"],
            "decision": "granted",
            "channel": "web",
            "locale": "en",
            "age_band": "adult",
        }
        answer = self.call("POST", f"/v1/subjects/{subject}/consents", body)
        assert answer.status == 201, answer.body

    def enrol(self, subject: str, photo: Path, headers: dict[str, str] | None = None) -> Answer:
        body = {"purpose": "checkout", "image": b64(photo)}
        return self.call("POST", f"/v1/subjects/{subject}/enrolments", body, headers)

    def verify(self, subject: str, photo: Path, level: str = "high") -> Answer:
        body = {"subject_id": subject, "purpose": "checkout", "image": b64(photo), "security_level": level}
        return self.call("POST", "/v1/verifications", body)

    # -- the emulator (what the functions stored; the tests never write there)

    def aws(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    @cached_property
    def hasher(self) -> SubjectHasher:
        secrets = self.aws("secretsmanager")
        arn = next(s["ARN"] for s in secrets.list_secrets()["SecretList"] if "Pepper" in s["Name"])
        return SubjectHasher(secrets.get_secret_value(SecretId=arn)["SecretString"].encode())

    def items(self, table: str, subject: str) -> list[dict[str, Any]]:
        """The items of `table` (a logical id of template.yaml) under the subject's partition."""
        answer = self.aws("dynamodb").query(
            TableName=f"{STACK_NAME}-{table}",
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": f"T#demo#S#{self.hasher.ref('demo', subject)}"}},
            ConsistentRead=True,
        )
        return list(answer["Items"])

    def templates(self, subject: str) -> list[dict[str, Any]]:
        return self.items("TemplatesTable", subject)

    def code_sent_to(self, address: str) -> str:
        """The code of the one e-mail sent to `address` (each test session has an address of its own)."""
        mails = [m for m in collect(fetch(self.endpoint)) if m.kind == "email" and m.to == address]
        assert len(mails) == 1, [m.to for m in mails]
        found = re.search(r"\b(\d{6})\b", mails[0].text)
        assert found, mails[0].text
        return found.group(1)


def b64(photo: Path) -> str:
    return base64.b64encode(photo.read_bytes()).decode()


def fresh(kind: str) -> str:
    return f"race-{kind}-{uuid.uuid4().hex[:12]}"


def together(client: Client, calls: list[Callable[[], Answer]]) -> list[Answer]:
    """Each call in its own thread, all released at once by a barrier; their answers, in call order."""
    answers: list[Answer | BaseException | None] = [None] * len(calls)
    start = threading.Barrier(len(calls))

    def run(index: int) -> None:
        try:
            start.wait(timeout=WAIT_S)
            answers[index] = calls[index]()
        except BaseException as error:  # reported below, with the local cloud's log
            answers[index] = error

    threads = [threading.Thread(target=run, args=(n,), daemon=True) for n in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT_S)
    failed = [a for a in answers if not isinstance(a, Answer)]
    assert not failed, f"{failed}\n{client.cloud.output()[-5000:]}"
    return [a for a in answers if isinstance(a, Answer)]


def ran_in_parallel(answers: list[Answer], function: str) -> None:
    """The burst was served by several instances of `function`, and two of them were busy at once."""
    instances = {a.instance for a in answers}
    assert all(i.startswith(f"{function}-") for i in instances), instances
    assert 1 < len(instances) <= INSTANCES, instances
    assert any(a.overlaps(b) for a in answers for b in answers if a.instance != b.instance)


def outcome(answer: Answer) -> tuple[int, str | None]:
    if answer.status == 200 and isinstance(answer.body, dict) and "decision" in answer.body:
        return answer.status, answer.body["decision"]
    return answer.status, answer.code


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    with running(instances=INSTANCES, env_vars=ENV_VARS) as cloud:
        client = Client(cloud)
        # These races are about single-photo flows; liveness (required by default) is tested in
        # test_liveness_http.py and tests/integration/test_liveness_api.py.
        for purpose in ("checkout", "exam_proctoring"):
            body = {"liveness": "optional", "liveness_reason": "e2e race tests of single-photo flows"}
            answer = client.call("PUT", f"/v1/purposes/{purpose}", body)
            assert answer.status == 200 and answer.body["liveness"] == "optional", answer.body
        yield client


@pytest.fixture(scope="module")
def people(enrollable_people: list[list[Path]]) -> list[list[Path]]:
    return enrollable_people[:3]


# -- item 5: the face lockout holds under parallel attempts


def test_parallel_impostor_attempts_are_evaluated_at_most_five_times(client: Client, people: list[list[Path]]) -> None:
    """15 impostor verifications of one subject at once, over three instances of the matching function:
    each attempt is reserved by a conditional write before the engine runs, so exactly five are evaluated
    (no_match) and the other ten are refused (423 fallback_required). (With the failure count read before the
    engine and written after it, as filed, 6 or 7 of the 15 were evaluated here.)"""
    owner, impostor = people[0], people[1]
    subject = fresh("lockout")
    client.grant(subject)
    assert client.enrol(subject, owner[0]).status == 201

    answers = together(client, [lambda: client.verify(subject, impostor[1], "very_high") for _ in range(15)])

    assert Counter(outcome(a) for a in answers) == {
        (200, "no_match"): LOCKOUT_FAILURES,
        (423, "fallback_required"): 15 - LOCKOUT_FAILURES,
    }, [a.body for a in answers]
    ran_in_parallel(answers, "MatchingFunction")
    assert all(a.body["methods"] for a in answers if a.status == 423)
    # And the subject's own face is refused too until the window ends, with the non-face methods
    own = client.verify(subject, owner[1])
    assert own.status == 423 and own.code == "fallback_required" and own.body["methods"], own.body


# -- item 4: a subject's enrolment is one person, capped


def test_parallel_enrolments_of_one_person_never_pass_the_cap(client: Client, people: list[list[Path]]) -> None:
    """Nine enrolments of the same photo at once, for a subject with none yet: each template is stored under
    the next free number by a conditional put, and a loser reads again, so exactly five complete (201) and four
    are refused (409 too_many_templates); every 201 kept its template. (Unchecked, all nine were stored.)"""
    person = people[0]
    subject = fresh("cap")
    client.grant(subject)

    answers = together(client, [lambda: client.enrol(subject, person[0]) for _ in range(9)])

    assert Counter(outcome(a) for a in answers) == {
        (201, None): TEMPLATE_CAP,
        (409, "too_many_templates"): 9 - TEMPLATE_CAP,
    }, [a.body for a in answers]
    ran_in_parallel(answers, "EmbeddingFunction")
    completed = sorted(a.body["template"]["template_id"] for a in answers if a.status == 201)
    stored = client.templates(subject)
    assert sorted(i["template_id"]["S"] for i in stored) == completed
    assert sorted(int(i["seq"]["N"]) for i in stored) == list(range(1, TEMPLATE_CAP + 1))


def test_parallel_enrolments_of_two_people_leave_one_person(client: Client, people: list[list[Path]]) -> None:
    """Three enrolments of one person and three of another at once, for a subject with none yet. Whoever's
    template is stored first is the subject: every enrolment of the other person reads it (at the latest after
    losing a number) and is refused, 409 enrolment_mismatch. Which person wins is the race; that exactly one
    does, and that the subject then verifies only as that person, holds for every interleaving. (Unchecked,
    all six were stored, three of each person.)"""
    a, b = people[0], people[1]
    subject = fresh("poison")
    client.grant(subject)

    answers = together(client, [lambda p=p: client.enrol(subject, p[0]) for p in (a, a, a, b, b, b)])
    by_person = {"a": [outcome(x) for x in answers[:3]], "b": [outcome(x) for x in answers[3:]]}

    winner = "a" if by_person["a"][0][0] == 201 else "b"
    loser = "b" if winner == "a" else "a"
    assert by_person[winner] == [(201, None)] * 3, by_person
    assert by_person[loser] == [(409, "enrolment_mismatch")] * 3, by_person
    ran_in_parallel(answers, "EmbeddingFunction")
    assert len(client.templates(subject)) == 3

    # And afterwards the other person is still refused, and the subject verifies only as the winner
    photos = {"a": a, "b": b}
    again = client.enrol(subject, photos[loser][1])
    assert again.status == 409 and again.code == "enrolment_mismatch", again.body
    assert client.verify(subject, photos[winner][2]).body["decision"] == "match"
    assert client.verify(subject, photos[loser][2]).body["decision"] == "no_match"


# -- item 7: parallel retries with one Idempotency-Key


def test_parallel_requests_with_one_idempotency_key_enrol_once_and_never_fail(
    client: Client, people: list[list[Path]]
) -> None:
    """A mobile client's request and its retry at once, same Idempotency-Key: the first to write the key's
    record runs; the other either finds it in progress (409 request_in_progress with Retry-After) or, had the
    first already finished, gets its stored answer. Never a 500 (as filed, the retry got 500 internal_error),
    never a second enrolment."""
    person = people[2]
    subject = fresh("retry")
    client.grant(subject)
    key = {"Idempotency-Key": f"mobile-retry-{uuid.uuid4().hex}"}

    first, second = together(client, [lambda: client.enrol(subject, person[0], key) for _ in range(2)])

    statuses = sorted((first.status, second.status))
    assert statuses in ([201, 201], [201, 409]), (first.body, second.body)
    done = first if first.status == 201 else second
    if statuses == [201, 409]:
        waiting = second if done is first else first
        assert waiting.code == "request_in_progress", waiting.body
        assert waiting.headers["content-type"] == "application/problem+json"
        retry_after = int(waiting.headers["retry-after"])
        assert retry_after >= 1 and waiting.body["retry_after"] == retry_after
        # it was answered while the first ran, by another instance
        assert waiting.overlaps(done) and waiting.instance != done.instance
    else:
        assert first.body == second.body  # the stored answer, not a second enrolment
    # And a later retry gets the first answer; the subject has exactly the one template
    later = client.enrol(subject, person[0], key)
    assert (later.status, later.body) == (201, done.body)
    assert [i["template_id"]["S"] for i in client.templates(subject)] == [done.body["template"]["template_id"]]


# -- item 6: OTP guessing has one budget per subject, across challenges and sessions


def test_parallel_wrong_codes_across_challenges_never_pass_the_subject_budget(client: Client) -> None:
    """Four sessions with an e-mail challenge each allow 4 x 5 = 20 guesses; 20 wrong codes at once, over
    several instances of the fallback function. Each guess reserves a place in the subject's budget by a
    conditional write before the code is compared, so exactly ten are checked: the budget holds ten guesses,
    the lock is audited once, and the code methods of the subject are locked, right code included. (Without
    the budget, the defect as filed, 13 or more were checked here. The budget's own read-then-write window
    is one request wide, which HTTP cannot hold open: that interleaving is forced by
    tests/integration/test_hardening_fallback.py.)"""
    subject = fresh("otp")
    challenges = []
    for n in range(4):
        address = f"{subject}-{n}@example.com"
        session = client.call(
            "POST", "/v1/verification-sessions", {"subject_id": subject, "purpose": "checkout", "email": address}
        )
        assert session.status == 201 and "email_otp" in session.body["methods"], session.body
        started = client.call(
            "POST", "/v1/fallback/challenges", {"session_id": session.body["session_id"], "method": "email_otp"}
        )
        assert started.status == 201, started.body
        code = client.code_sent_to(address)
        challenges.append((started.body["challenge_id"], code, "000000" if code != "000000" else "111111"))

    guesses = [(challenge_id, wrong) for challenge_id, _, wrong in challenges] * CHALLENGE_ATTEMPTS
    answers = together(
        client,
        [lambda c=c, w=w: client.call("POST", f"/v1/fallback/challenges/{c}/verify", {"code": w}) for c, w in guesses],
    )

    # Every guess was answered as a wrong or refused code; none failed, none was rate-limited
    allowed = {(422, "code_invalid"), (423, "challenge_locked"), (423, "otp_locked")}
    assert {outcome(a) for a in answers} <= allowed, [a.body for a in answers]
    ran_in_parallel(answers, "FallbackFunction")
    # The budget holds exactly ten guesses (each compared code has one place; a refused one none)
    (budget,) = [i for i in client.items("SessionsTable", subject) if i["sk"]["S"] == "OTP_GUESSES"]
    assert len(budget["guesses"]["M"]) == OTP_GUESSES_PER_DAY
    # at most nine wrong codes were answered as such; the tenth locked the code methods
    assert sum(outcome(a) == (422, "code_invalid") for a in answers) <= OTP_GUESSES_PER_DAY - 1
    assert any(outcome(a) == (423, "otp_locked") for a in answers)
    ref = client.hasher.ref("demo", subject)
    audit = client.aws("dynamodb").scan(TableName=f"{STACK_NAME}-AuditTable")["Items"]
    locks = [i for i in audit if i.get("subject_ref", {}).get("S") == ref and i["action"]["S"] == "fallback.otp_locked"]
    assert len(locks) == 1

    # And the right code of a challenge is no longer checked; a new session offers manual review only
    open_ones = [(c, code) for c, code, _ in challenges]
    for challenge_id, code in open_ones:
        right = client.call("POST", f"/v1/fallback/challenges/{challenge_id}/verify", {"code": code})
        assert right.status == 423 and right.code in ("otp_locked", "challenge_locked"), right.body
    later = client.call(
        "POST",
        "/v1/verification-sessions",
        {"subject_id": subject, "purpose": "checkout", "email": f"{subject}-late@example.com"},
    )
    assert later.status == 201 and later.body["methods"] == ["manual_review"], later.body


# -- items 2 and 3: a quick re-grant, and the erasure job that runs after it


@dataclass
class HeldDeletions:
    """The deletion function's instance that the erasure job will be delivered to, frozen (SIGSTOP).

    The local cloud delivers queued jobs to a function's most recently used idle instance: this one, warmed
    just before it is frozen (nothing else in this module calls the deletion function). The job then waits
    in it, or in the queue, until `release()`: in neither place can it run. Nothing may call the deletion
    function over HTTP meanwhile (a request could land in the frozen instance and wait with the job)."""

    instance: str
    pid: int

    @classmethod
    def freeze(cls, client: Client) -> HeldDeletions:
        warm = client.call("GET", "/v1/deletions/" + "0" * 32)
        assert warm.status == 404, warm.body
        held = cls(warm.instance, int(warm.headers["x-localcloud-pid"]))
        os.kill(held.pid, signal.SIGSTOP)
        return held

    def release(self) -> None:
        os.kill(self.pid, signal.SIGCONT)


def job_done(client: Client, job_id: str) -> dict[str, Any]:
    """Poll the erasure job until it completed (bounded; the local cloud delivers jobs asynchronously)."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        answer = client.call("GET", f"/v1/deletions/{job_id}")
        if answer.status == 200 and answer.body["status"] == "completed":
            return dict(answer.body)
        assert answer.status in (200, 404), answer.body
        time.sleep(0.5)
    raise AssertionError(f"the erasure job {job_id} did not complete within {WAIT_S} s")


def test_a_quick_regrant_never_revives_withdrawn_face_data_and_the_late_job_keeps_the_new_enrolment(
    client: Client, people: list[list[Path]]
) -> None:
    """Item 2: consent withdrawn and granted again before the erasure job ran; the template enrolled under
    the withdrawn consent is still stored, and verification must not use it. Item 3: an enrolment made after
    the re-grant, before the job ran; the job must erase only what predates the withdrawal."""
    person = people[1]
    subject = fresh("regrant")
    client.grant(subject)
    first = client.enrol(subject, person[0])
    assert first.status == 201, first.body
    old = first.body["template"]["template_id"]
    assert client.verify(subject, person[1]).body["decision"] == "match"

    held = HeldDeletions.freeze(client)
    try:
        # Given: withdrawn and granted again, the job held back
        withdrawn = client.call("DELETE", f"/v1/subjects/{subject}/consents/checkout")
        assert withdrawn.status == 200, withdrawn.body
        client.grant(subject)

        # Then: the old period's template is stored, yet verification does not use it
        assert [i["template_id"]["S"] for i in client.templates(subject)] == [old]
        stale = client.verify(subject, person[1])
        assert stale.status == 409 and stale.code == "not_enrolled", stale.body

        # When: enrolled again under the new consent, still before the job ran
        second = client.enrol(subject, person[2])
        assert second.status == 201, second.body
        new = second.body["template"]["template_id"]
        assert sorted(i["template_id"]["S"] for i in client.templates(subject)) == sorted([old, new])
    finally:
        held.release()

    # Then: the late job erases the old template only, and the new enrolment works
    job = job_done(client, f"withdrawal-{withdrawn.body['record_id']}")
    assert job["removed"]["templates"] == 1, job
    assert [i["template_id"]["S"] for i in client.templates(subject)] == [new]
    path = f"/v1/subjects/{subject}/enrolments"
    assert client.call("GET", f"{path}/{first.body['enrolment_id']}").status == 404
    kept = client.call("GET", f"{path}/{second.body['enrolment_id']}")
    assert kept.status == 200 and kept.body["status"] == "completed", kept.body
    assert client.verify(subject, person[1]).body["decision"] == "match"

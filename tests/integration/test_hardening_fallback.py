"""Issue 10, item 6: OTP guessing has an overall limit per subject; `resend_too_soon` says when to come
back; answers that carry a secret are not cached; replacing a TOTP secret needs proof.

Through the local gateway (real handlers, moto in-process, real JWT checks), except the races: the gateway
runs one invocation of a function at a time, so parallel Lambdas are played by independent service stacks
(one `Fallback` each, as one per container) in threads, against the same moto tables.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import pyotp
import pytest

# Modules, not names: each test fails on its own assertions against the code before the fix.
from facegate.core import errors
from facegate.core.tenancy import CallerContext
from facegate.fallback import dynamo as repositories
from facegate.fallback.dynamo import TotpItem
from facegate.wiring import Fallback, container, fallback
from localcloud.cloud import REGION, LocalCloud
from localcloud.emulator import dynamodb_requests_one_at_a_time
from localcloud.outbox import verify_senders
from tests.integration.conftest import Api, all_items
from tests.integration.test_fallback_api import (
    Clock,
    code_in,
    emails_to,
    start_challenge,
    start_session,
    verify,
)

pytestmark = pytest.mark.integration

LIMIT = 10  # the default budget: wrong codes per subject in 24 hours


@pytest.fixture(scope="module", autouse=True)
def sender_verified(cloud: LocalCloud) -> None:
    """What the local cloud does at start-up: SES sends only from a verified identity."""
    verify_senders(boto3.session.Session(region_name=REGION), cloud.stack)
    cloud.gateway.handler_module("FallbackFunction")


@pytest.fixture
def clock() -> Iterator[Clock]:
    services = fallback()
    saved = services.clock
    services.clock = fake = Clock()
    yield fake
    services.clock = saved


@pytest.fixture
def email(subject_id: str) -> str:
    return f"{subject_id}@example.com"


def wrong_code(right: str) -> str:
    return "000000" if right != "000000" else "111111"


def email_challenge(api: Api, subject_id: str, email: str, **known: Any) -> tuple[dict, dict, str]:
    """A new session and an e-mail challenge in it, with the code read from the outbox."""
    session = start_session(api, subject_id, email=email, **known)
    before = len(emails_to(email))
    challenge = start_challenge(api, session["session_id"], "email_otp")
    return session, challenge, code_in(emails_to(email)[before][1])


def run_in_threads(calls: list[Callable[[], Any]]) -> list[Any]:
    """Each call in its own thread (one per Lambda instance); the answer or the exception of each."""
    outcomes: list[Any] = [None] * len(calls)

    def run(index: int) -> None:
        try:
            outcomes[index] = calls[index]()
        except Exception as error:  # the outcome under test
            outcomes[index] = error

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    return outcomes


@contextmanager
def everyone_reads_before_anyone_writes(item: type, sort_key: str, parties: int) -> Iterator[threading.Barrier]:
    """The worst interleaving, made explicit: the first write of each party to the item `sort_key` waits
    until every party is about to write, i.e. has read what it reads first. DynamoDB then applies the
    conditional writes to the item one at a time; moto's in-process backend checks a condition and writes
    without a lock, so for the block moto handles one DynamoDB request at a time (localcloud.emulator, the
    mechanism the `atomic_dynamodb` fixture and the emulator of `make run` use). The barrier is passed
    before a request reaches moto, so no party waits for it while holding moto's lock."""
    events = item._get_connection().connection.client.meta.events
    barrier = threading.Barrier(parties, timeout=30)
    waited = threading.local()

    def first_write_waits(params: dict[str, Any], **_: Any) -> None:
        key = params.get("Key") or params.get("Item") or {}
        if key.get("sk", {}).get("S") == sort_key and not getattr(waited, "done", False):
            waited.done = True
            barrier.wait()

    hooks = [
        (f"before-parameter-build.dynamodb.{operation}", first_write_waits) for operation in ("PutItem", "UpdateItem")
    ]
    for event, hook in hooks:
        events.register(event, hook)
    try:
        with dynamodb_requests_one_at_a_time():
            yield barrier
    finally:
        for event, hook in hooks:
            events.unregister(event, hook)


def lambdas(count: int, clock: Clock, **settings: Any) -> list[Fallback]:
    """`count` independent service stacks, as `count` warm Lambda containers, sharing the moto tables."""
    env = container().settings.fallback.model_copy(update=settings)
    stacks = [Fallback(container(), env, clock=clock) for _ in range(count)]
    for stack in stacks:  # build every repository now: building one re-binds its item class
        _ = stack.challenges, stack.totp
    return stacks


CALLER = CallerContext(tenant_id="demo", client_id="parallel-test", scopes=frozenset({"verify", "fallback"}))


def audit_actions(aws: boto3.session.Session, api: Api, subject_id: str) -> list[tuple[str, str]]:
    ref = container().hasher.ref("demo", subject_id)
    items = all_items(aws, api.cloud)["AuditTable"]
    return [(i["action"]["S"], i["outcome"]["S"]) for i in items if ref in json.dumps(i)]


# ---------------------------------------------------------------- the overall limit


def test_wrong_codes_across_challenges_and_sessions_lock_the_code_methods_of_the_subject(
    api: Api, aws: boto3.session.Session, subject_id: str, email: str, clock: Clock, capfd: pytest.CaptureFixture[str]
) -> None:
    # Given a subject with a TOTP secret and an e-mail address
    totp = pyotp.TOTP(api.call("POST", f"/v1/subjects/{subject_id}/totp", {}).json["secret"])

    # When five wrong codes lock one e-mail challenge, a new session gives no fresh budget
    _, first, code = email_challenge(api, subject_id, email)
    answers = [verify(api, first["challenge_id"], wrong_code(code)).json["code"] for _ in range(5)]
    assert answers == ["code_invalid"] * 4 + ["challenge_locked"]
    clock.advance(seconds=61)  # past the per-minute request limits: they are not what is tested here
    session, second, code = email_challenge(api, subject_id, email)
    assert session["methods"] == ["email_otp", "totp", "manual_review"]
    wrong = [verify(api, second["challenge_id"], wrong_code(code)).json for _ in range(3)]
    assert [w["code"] for w in wrong] == ["code_invalid"] * 3
    # attempts_left is the smaller of the challenge's (2) and the subject's (10 - 8 = 2)
    assert [w["attempts_left"] for w in wrong] == [4, 3, 2]

    # And the ninth on TOTP leaves one guess for the day, whatever the challenge says
    on_totp = start_challenge(api, session["session_id"], "totp")
    ninth = verify(api, on_totp["challenge_id"], wrong_code(totp.at(clock())))
    assert ninth.status == 422 and ninth.json["attempts_left"] == 1, ninth.body

    # Then the tenth wrong code of the day locks every code method of the subject
    tenth = verify(api, on_totp["challenge_id"], wrong_code(totp.at(clock())))
    assert tenth.status == 423 and tenth.json["code"] == "otp_locked", tenth.body
    assert tenth.json["methods"] == ["manual_review"]
    assert 86_400 - 120 < int(tenth.headers["retry-after"]) <= 86_400
    assert tenth.json["retry_after"] == int(tenth.headers["retry-after"])

    # And even the right code of a challenge still open is not checked any more
    right = verify(api, second["challenge_id"], code)
    assert right.status == 423 and right.json["code"] == "otp_locked"
    # And no challenge of a code method starts, so no code is sent (nor paid for)
    clock.advance(seconds=31)
    sent = len(emails_to(email))
    for method in ("email_otp", "totp"):
        refused = api.call("POST", "/v1/fallback/challenges", {"session_id": session["session_id"], "method": method})
        assert refused.status == 423 and refused.json["code"] == "otp_locked", refused.body
        assert refused.json["methods"] == ["manual_review"] and int(refused.headers["retry-after"]) > 86_000
    assert len(emails_to(email)) == sent

    # And sessions, old and new, of any purpose, list only what is left: manual review, which works
    assert api.call("GET", f"/v1/verification-sessions/{session['session_id']}").json["methods"] == ["manual_review"]
    fresh = start_session(api, subject_id, email=email, phone="+8613800138000")
    assert fresh["methods"] == ["manual_review"]
    assert start_session(api, subject_id, email=email, purpose="exam_proctoring")["methods"] == ["manual_review"]
    assert start_challenge(api, fresh["session_id"], "manual_review")["status"] == "pending"

    # And the lock is audited once and counted
    assert audit_actions(aws, api, subject_id).count(("fallback.otp_locked", "locked")) == 1
    out = capfd.readouterr().out
    assert "FallbackOtpLocked" in out and "FallbackOtpLockServed" in out

    # When a day has passed since the first wrong code, the code methods come back
    clock.advance(hours=24)
    later, challenge, code = email_challenge(api, subject_id, email)
    assert later["methods"] == ["email_otp", "totp", "manual_review"]
    assert verify(api, challenge["challenge_id"], code).status == 200


def test_a_right_code_gives_its_place_back(api: Api, subject_id: str, email: str, clock: Clock) -> None:
    # Given eight wrong codes today
    for wrong_ones in (5, 3):
        _, challenge, code = email_challenge(api, subject_id, email)
        for _ in range(wrong_ones):
            assert verify(api, challenge["challenge_id"], wrong_code(code)).status in (422, 423)
        clock.advance(seconds=61)

    # When the right code is given, it verifies and does not count as a guess
    _, challenge, code = email_challenge(api, subject_id, email)
    assert verify(api, challenge["challenge_id"], code).status == 200

    # Then the next wrong code is the ninth (one left), and the one after it the tenth
    _, challenge, code = email_challenge(api, subject_id, email)
    ninth = verify(api, challenge["challenge_id"], wrong_code(code))
    assert ninth.status == 422 and ninth.json["attempts_left"] == 1, ninth.body
    tenth = verify(api, challenge["challenge_id"], wrong_code(code))
    assert tenth.status == 423 and tenth.json["code"] == "otp_locked"


def test_parallel_guesses_from_many_instances_never_pass_the_subject_budget(
    api: Api, aws: boto3.session.Session, subject_id: str, email: str, clock: Clock, capfd: pytest.CaptureFixture[str]
) -> None:
    # Given four sessions with an e-mail challenge each: together they allow 20 guesses
    guesses = []
    for _ in range(4):
        _, challenge, code = email_challenge(api, subject_id, email)
        guesses.append((challenge["challenge_id"], wrong_code(code)))
    guesses *= 5
    # And 20 Lambda instances whose per-minute limit lets all of them through, so only the budget can stop them
    stacks = lambdas(20, clock, subject_limit_per_minute=100)
    capfd.readouterr()

    # When all 20 guess at once, each having read the budget before any of them records its guess
    with everyone_reads_before_anyone_writes(repositories.OtpGuessesItem, "OTP_GUESSES", parties=20) as barrier:
        outcomes = run_in_threads(
            [
                lambda stack=stack, guess=guess: stack.challenges.verify(CALLER, guess[0], guess[1])
                for stack, guess in zip(stacks, guesses, strict=True)
            ]
        )
    assert not barrier.broken

    # Then exactly ten codes were checked (counted as rejected codes), and ten were refused unchecked
    checked = capfd.readouterr().out.count('"Name":"FallbackCodeRejected"')
    assert checked == LIMIT, outcomes
    locked = [o for o in outcomes if isinstance(o, errors.OtpLockedError)]
    wrong = [o for o in outcomes if isinstance(o, errors.CodeInvalidError | errors.ChallengeLockedError)]
    assert len(wrong) == LIMIT - 1 and len(locked) == 20 - LIMIT + 1, outcomes
    assert all(o.extra["methods"] == ["manual_review"] for o in locked)
    # And the budget holds exactly ten guesses, and the lock was audited once
    ref = container().hasher.ref("demo", subject_id)
    item = repositories.OtpGuessesItem.get(f"T#demo#S#{ref}", "OTP_GUESSES", consistent_read=True)
    assert len(item.guesses.as_dict()) == LIMIT
    assert audit_actions(aws, api, subject_id).count(("fallback.otp_locked", "locked")) == 1


# ---------------------------------------------------------------- headers


def test_resend_too_soon_says_when_to_come_back(api: Api, subject_id: str, email: str, clock: Clock) -> None:
    clock.frozen = clock()
    session, _, _ = email_challenge(api, subject_id, email)
    clock.advance(seconds=12)
    soon = api.call("POST", "/v1/fallback/challenges", {"session_id": session["session_id"], "method": "email_otp"})
    assert soon.status == 429 and soon.json["code"] == "resend_too_soon"
    assert soon.headers["retry-after"] == "18" and soon.json["retry_after"] == 18


def test_answers_that_carry_a_secret_are_not_cached(api: Api, subject_id: str, email: str) -> None:
    # The TOTP seed
    set_up = api.call("POST", f"/v1/subjects/{subject_id}/totp", {})
    assert set_up.status == 201 and set_up.json["secret"]
    assert set_up.headers["cache-control"] == "no-store" and set_up.headers["pragma"] == "no-cache"
    # The signed result, which proves the person's identity (and can prove a TOTP replacement)
    _, challenge, code = email_challenge(api, subject_id, email)
    result = verify(api, challenge["challenge_id"], code)
    assert result.status == 200 and result.json["result_token"]
    assert result.headers["cache-control"] == "no-store" and result.headers["pragma"] == "no-cache"
    # Answers without a secret keep the default
    session = api.call("GET", f"/v1/verification-sessions/{challenge['session_id']}")
    assert "cache-control" not in session.headers


# ---------------------------------------------------------------- replacing a TOTP secret


def totp_set_up(api: Api, subject_id: str, token: str, **proof: str):
    return api.call("POST", f"/v1/subjects/{subject_id}/totp", proof, token=token)


def verified_by_email(api: Api, subject_id: str, email: str) -> dict:
    """A session of `subject_id` verified by an e-mail code: its id and result token."""
    _, challenge, code = email_challenge(api, subject_id, email)
    reply = verify(api, challenge["challenge_id"], code)
    assert reply.status == 200, reply.body
    return reply.json


def test_replacing_a_totp_secret_needs_proof(
    api: Api, aws: boto3.session.Session, subject_id: str, email: str, clock: Clock
) -> None:
    fallback_only = api.cloud.token("demo", scopes=("verify", "fallback"))
    # Given a subject's first TOTP secret, set up with the fallback scope alone (as before)
    first = totp_set_up(api, subject_id, fallback_only)
    assert first.status == 201, first.body
    mine = pyotp.TOTP(first.json["secret"])

    # When another holder of a fallback token asks for a new secret, without proof, it is refused
    swap = totp_set_up(api, subject_id, fallback_only)
    assert swap.status == 403 and swap.json["code"] == "totp_replacement_requires_proof", swap.body
    # and nothing was replaced: the person's own secret still verifies
    session = start_session(api, subject_id)
    assert session["methods"] == ["totp", "manual_review"]
    by_totp = verify(api, start_challenge(api, session["session_id"], "totp")["challenge_id"], mine.at(clock()))
    assert by_totp.status == 200, by_totp.body

    # And a session verified by TOTP itself, another subject's verification, a forged or a face no-match
    # token are no proof
    other = f"{subject_id}-other"
    theirs = verified_by_email(api, other, f"{other}@example.com")
    forged = theirs["result_token"][:-4] + ("AAAA" if not theirs["result_token"].endswith("AAAA") else "BBBB")
    for proof in (
        {"proof_session_id": session["session_id"]},
        {"proof_session_id": theirs["session_id"]},
        {"proof_result_token": theirs["result_token"]},
        {"proof_result_token": forged},
        {"proof_result_token": "not.a.token"},
    ):
        refused = totp_set_up(api, subject_id, fallback_only, **proof)
        assert refused.status == 403 and refused.json["code"] == "totp_replacement_requires_proof", proof
    both = {"proof_session_id": theirs["session_id"], "proof_result_token": theirs["result_token"]}
    assert totp_set_up(api, subject_id, fallback_only, **both).json["code"] == "invalid_request"
    clock.advance(seconds=61)  # past the per-minute request limits

    # Then a session verified by e-mail proves one replacement, once
    proof = verified_by_email(api, subject_id, email)
    replaced = totp_set_up(api, subject_id, fallback_only, proof_session_id=proof["session_id"])
    assert replaced.status == 201, replaced.body
    assert replaced.headers["cache-control"] == "no-store"
    for again in ({"proof_session_id": proof["session_id"]}, {"proof_result_token": proof["result_token"]}):
        spent = totp_set_up(api, subject_id, fallback_only, **again)
        assert spent.status == 403 and spent.json["code"] == "totp_replacement_requires_proof"
    # and so does a fresh signed match, but not once it has expired
    token = verified_by_email(api, subject_id, email)["result_token"]
    stale = verified_by_email(api, subject_id, f"b.{email}")["result_token"]
    assert totp_set_up(api, subject_id, fallback_only, proof_result_token=token).status == 201
    clock.advance(minutes=5, seconds=1)
    expired = totp_set_up(api, subject_id, fallback_only, proof_result_token=stale)
    assert expired.status == 403 and expired.json["code"] == "totp_replacement_requires_proof"

    # And the admin scope may replace it without proof (a support desk after an identity check)
    admin = totp_set_up(api, subject_id, api.cloud.token("demo"))
    assert admin.status == 201, admin.body
    new = pyotp.TOTP(admin.json["secret"])
    session = start_session(api, subject_id)
    challenge = start_challenge(api, session["session_id"], "totp")
    assert verify(api, challenge["challenge_id"], new.at(clock())).status == 200

    # And every replacement, made or refused, is audited
    actions = audit_actions(aws, api, subject_id)
    assert actions.count(("fallback.totp_set_up", "ok")) == 1
    assert actions.count(("fallback.totp_replaced", "ok")) == 3
    assert actions.count(("fallback.totp_replaced", "refused")) == 1 + 5 + 2 + 1


def test_two_first_totp_set_ups_at_once_cannot_both_win(api: Api, subject_id: str, clock: Clock) -> None:
    # Given two instances setting up the first secret of the same subject at the same moment
    stacks = lambdas(2, clock)
    caller = CallerContext(tenant_id="demo", client_id="parallel-test", scopes=frozenset({"fallback"}))
    subject = container().subject(caller, subject_id)

    # When both have checked for an existing secret before either writes
    with everyone_reads_before_anyone_writes(TotpItem, "TOTP", parties=2) as barrier:
        outcomes = run_in_threads([lambda stack=stack: stack.totp.set_up(caller, subject) for stack in stacks])
    assert not barrier.broken

    # Then one is the first set-up, and the other one would be a replacement without proof: refused
    won = [o for o in outcomes if not isinstance(o, Exception)]
    assert len(won) == 1 and [type(o) for o in outcomes if o not in won] == [errors.TotpReplacementRequiresProofError]
    # and the stored secret is the winner's
    session = start_session(api, subject_id)
    challenge = start_challenge(api, session["session_id"], "totp")
    assert verify(api, challenge["challenge_id"], pyotp.TOTP(won[0].secret).at(clock())).status == 200


@pytest.mark.slow
def test_a_face_match_proves_a_totp_replacement(api: Api, subject_id: str, enrollable_people: list[list[Path]]) -> None:
    from tests.integration.test_verification_api import enrol
    from tests.integration.test_verification_api import verify as face_verify

    person, someone_else = enrollable_people[0], enrollable_people[1]
    fallback_only = api.cloud.token("demo", scopes=("verify", "fallback"))
    assert totp_set_up(api, subject_id, fallback_only).status == 201
    enrol(api, subject_id, person[0])

    # A face no-match is no proof
    status, no_match = face_verify(api, subject_id, someone_else[0])
    assert status == 200 and no_match["decision"] == "no_match", no_match
    refused = totp_set_up(api, subject_id, fallback_only, proof_result_token=no_match["result_token"])
    assert refused.status == 403 and refused.json["code"] == "totp_replacement_requires_proof"

    # A face match is
    status, match = face_verify(api, subject_id, person[1])
    assert status == 200 and match["decision"] == "match", match
    replaced = totp_set_up(api, subject_id, fallback_only, proof_result_token=match["result_token"])
    assert replaced.status == 201, replaced.body
    assert base64.b32decode(replaced.json["secret"])

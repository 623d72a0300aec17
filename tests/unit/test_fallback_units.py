"""Small pieces of the fallback: code hashing, masking, reading the local outbox, the subject's OTP guess
budget (on a moto table), and reading back signed results (with a moto KMS key)."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from moto import mock_aws

from facegate.core.dynamo import bind
from facegate.core.kms import KmsSigner
from facegate.fallback.budget import OtpGuessBudget
from facegate.fallback.dynamo import OtpGuessesItem, OtpGuessRepository
from facegate.fallback.entities import Guess
from facegate.fallback.proofs import ResultTokenReader
from facegate.fallback.rules import OTP_GUESS_LIMIT, CodeHasher, mask_email, mask_phone, new_code, remaining_methods
from localcloud.outbox import collect, render
from localcloud.template import load_template

pytestmark = pytest.mark.unit


def test_codes_are_six_digits_and_hashed_per_challenge() -> None:
    # Given a hasher keyed from the pepper
    hasher = CodeHasher(b"p" * 64)
    codes = {new_code() for _ in range(200)}
    assert all(len(c) == 6 and c.isdigit() for c in codes) and len(codes) > 150
    # When the same code is hashed for two challenges, the hashes differ and only the right one matches
    a, b = hasher.code("a" * 32, "123456"), hasher.code("b" * 32, "123456")
    assert a != b and "123456" not in a
    assert hasher.matches("a" * 32, "123456", a) and not hasher.matches("a" * 32, "123457", a)
    # And another pepper gives other hashes
    assert CodeHasher(b"q" * 64).code("a" * 32, "123456") != a


def test_destinations_hash_case_insensitively_per_tenant() -> None:
    hasher = CodeHasher(b"p" * 64)
    assert hasher.destination("demo", "Ana@Example.com ") == hasher.destination("demo", "ana@example.com")
    assert hasher.destination("demo", "ana@example.com") != hasher.destination("other", "ana@example.com")


def test_masks_keep_only_a_hint() -> None:
    assert mask_email("ana.li@example.com") == "a***@example.com"
    assert mask_phone("+8613800138000") == "+86*******8000"


def test_outbox_lists_newest_first() -> None:
    data = {
        "ses": {
            "Message": [
                {"source": "s@x.example", "subject": "old", "body": "111111", "destinations": {"ToAddresses": ["a@x"]}},
                {"source": "s@x.example", "subject": "new", "body": "222222", "destinations": {"ToAddresses": ["a@x"]}},
            ]
        },
        "sns": {
            "SMS": [{"phone_number": "+1555", "message": "333333"}, {"phone_number": "+1555", "message": "444444"}]
        },
    }
    sent = collect(data)
    assert [m.text for m in sent] == ["222222", "111111", "444444", "333333"]
    text = render(sent, limit=1)
    assert "222222" in text and "444444" in text and "111111" not in text
    assert collect({}) == [] and "none" in render([], 5)


# ---------------------------------------------------------------- the subject's OTP guess budget (moto)


class FrozenClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def budget_parts() -> Iterator[tuple[OtpGuessBudget, OtpGuessRepository, FrozenClock]]:
    """The budget on a moto table with the key schema template.yaml gives SessionsTable. The table has a
    name of its own, and the item class is bound back afterwards: when the whole suite runs, the integration
    tests' moto and services are still alive around this."""
    table = load_template()["Resources"]["SessionsTable"]["Properties"]
    name = f"sessions-{uuid.uuid4().hex}"
    meta = OtpGuessesItem.Meta
    saved = getattr(meta, "table_name", None), getattr(meta, "region", None)
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        dynamodb.create_table(
            TableName=name,
            KeySchema=table["KeySchema"],
            AttributeDefinitions=table["AttributeDefinitions"],
            BillingMode="PAY_PER_REQUEST",
        )
        repository = OtpGuessRepository(name, "us-east-1")
        clock = FrozenClock()
        yield OtpGuessBudget(repository, clock=clock), repository, clock
        dynamodb.delete_table(TableName=name)
    if saved[0]:  # binding is per item class: give it back to whoever had it
        bind(OtpGuessesItem, saved[0], saved[1] or "us-east-1")


@pytest.mark.integration  # a moto table
def test_budget_is_ten_guesses_in_any_24_hours(
    budget_parts: tuple[OtpGuessBudget, OtpGuessRepository, FrozenClock],
) -> None:
    budget, repository, clock = budget_parts
    # Given ten guesses, one an hour
    for n in range(OTP_GUESS_LIMIT):
        assert budget.locked_for("t", "ref") is None
        guess = budget.reserve("t", "ref")
        assert isinstance(guess, Guess) and guess.used == n + 1
        clock.now += timedelta(hours=1)
    # Then the eleventh is refused until the first is 24 hours old (14 hours from now)
    assert budget.reserve("t", "ref") == 14 * 3600 == budget.locked_for("t", "ref")
    # When the first has aged out, exactly one place is free; the next waits for the second to age out
    clock.now += timedelta(hours=14)
    assert budget.locked_for("t", "ref") is None
    assert isinstance(budget.reserve("t", "ref"), Guess)
    assert budget.reserve("t", "ref") == 3600
    # And the aged-out guess was dropped from the item, which keeps only the window's guesses
    assert len(repository.guesses("t", "ref")) == OTP_GUESS_LIMIT
    # And other subjects (and tenants) have budgets of their own
    assert isinstance(budget.reserve("t", "other"), Guess) and isinstance(budget.reserve("u", "ref"), Guess)


@pytest.mark.integration  # a moto table
def test_a_place_given_back_is_free_again(budget_parts: tuple[OtpGuessBudget, OtpGuessRepository, FrozenClock]) -> None:
    budget, repository, _ = budget_parts
    guesses = [budget.reserve("t", "ref") for _ in range(OTP_GUESS_LIMIT)]
    assert all(isinstance(g, Guess) for g in guesses) and isinstance(budget.reserve("t", "ref"), int)
    last = guesses[-1]
    assert isinstance(last, Guess)
    budget.give_back(last)
    assert budget.locked_for("t", "ref") is None
    again = budget.reserve("t", "ref")
    assert isinstance(again, Guess) and again.used == OTP_GUESS_LIMIT
    # Giving back after the subject was erased writes nothing
    repository.release("t", "erased", "0" * 16)
    assert repository.guesses("t", "erased") == []


def test_locked_sessions_keep_every_method_but_the_code_ones() -> None:
    assert remaining_methods(["face", "email_otp", "sms_otp", "totp", "manual_review"]) == ["face", "manual_review"]
    assert remaining_methods(["email_otp"]) == ["manual_review"]


@pytest.mark.integration  # a moto KMS key
def test_result_tokens_are_read_back_only_when_this_service_signed_them() -> None:
    with mock_aws():
        kms = boto3.client("kms", region_name="us-east-1")

        def signer() -> KmsSigner:
            key = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
            return KmsSigner(kms, key)

        ours, theirs = signer(), signer()
        reader = ResultTokenReader(ours.jwks)
        claims = {"sub": "ana", "decision": "match", "jti": "j" * 32}
        token = ours.sign(claims)
        assert reader.claims(token) == claims
        # Another key, a changed claim, a changed signature, or no token at all: None
        head, body, signature = token.split(".")
        other_body = base64.urlsafe_b64encode(json.dumps({**claims, "sub": "eve"}).encode()).rstrip(b"=").decode()
        for bad in (
            theirs.sign(claims),
            f"{head}.{other_body}.{signature}",
            f"{head}.{body}.{signature[:-2]}AA",
            f"{head}.{body}",
            "not-a-token",
            "a.b.c",
        ):
            assert reader.claims(bad) is None, bad

"""Small pure pieces of the fallback: code hashing, masking, and reading the local outbox."""

from __future__ import annotations

import pytest

from facegate.fallback.services import CodeHasher, mask_email, mask_phone, new_code
from localcloud.outbox import collect, render

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

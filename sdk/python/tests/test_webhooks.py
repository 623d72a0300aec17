"""facegate_sdk.webhooks: a tenant verifies deliveries offline (Standard Webhooks signatures; old ones refused)."""

from __future__ import annotations

import base64
import json
import os
import time
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook

from facegate_sdk.webhooks import WebhookVerificationError, verify_webhook

pytestmark = pytest.mark.unit

BODY = json.dumps({"type": "verification.decided", "timestamp": "2026-01-01T00:00:00Z", "data": {"decision": "match"}})


def secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()


def signed(secrets: list[str], body: str = BODY, at: int | None = None, msg_id: str = "msg_1") -> dict[str, str]:
    stamp = int(time.time()) if at is None else at
    when = datetime.fromtimestamp(stamp, tz=UTC)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": " ".join(Webhook(s).sign(msg_id, when, body) for s in secrets),
    }


def test_a_valid_delivery_verifies_and_answers_the_event() -> None:
    key = secret()
    event = verify_webhook(BODY.encode(), signed([key]), key)
    assert event["type"] == "verification.decided" and event["data"] == {"decision": "match"}


def test_header_names_are_case_insensitive() -> None:
    key = secret()
    headers = {k.title(): v for k, v in signed([key]).items()}
    assert verify_webhook(BODY, headers, key)["type"] == "verification.decided"


@pytest.mark.parametrize(
    "change",
    [
        lambda h, b: (h, b.replace("match", "no_match")),  # altered body
        lambda h, b: ({**h, "webhook-id": "msg_2"}, b),  # another message's id
        lambda h, b: ({**h, "webhook-timestamp": str(int(h["webhook-timestamp"]) + 1)}, b),  # another time
    ],
)
def test_anything_altered_is_refused(change) -> None:
    key = secret()
    headers, body = change(signed([key]), BODY)
    with pytest.raises(WebhookVerificationError):
        verify_webhook(body.encode(), headers, key)


def test_another_secret_is_refused() -> None:
    with pytest.raises(WebhookVerificationError):
        verify_webhook(BODY.encode(), signed([secret()]), secret())


def test_an_old_delivery_is_refused_even_when_correctly_signed() -> None:
    key = secret()
    old = signed([key], at=int(time.time()) - 10 * 60)  # a replay ten minutes later
    with pytest.raises(WebhookVerificationError, match="tolerance"):
        verify_webhook(BODY.encode(), old, key)
    future = signed([key], at=int(time.time()) + 10 * 60)
    with pytest.raises(WebhookVerificationError):
        verify_webhook(BODY.encode(), future, key)


def test_a_tighter_tolerance_refuses_sooner() -> None:
    key = secret()
    minute_old = signed([key], at=int(time.time()) - 60)
    assert verify_webhook(BODY.encode(), minute_old, key)["type"] == "verification.decided"
    with pytest.raises(WebhookVerificationError):
        verify_webhook(BODY.encode(), minute_old, key, tolerance_seconds=30)


def test_during_a_rotation_either_secret_verifies_the_two_signatures() -> None:
    old, new = secret(), secret()
    headers = signed([old, new])
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert verify_webhook(BODY.encode(), headers, old)["type"] == "verification.decided"
    assert verify_webhook(BODY.encode(), headers, new)["type"] == "verification.decided"
    with pytest.raises(WebhookVerificationError):
        verify_webhook(BODY.encode(), headers, secret())


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_a_missing_header_is_refused(missing: str) -> None:
    key = secret()
    headers = {k: v for k, v in signed([key]).items() if k != missing}
    with pytest.raises(WebhookVerificationError, match="missing"):
        verify_webhook(BODY.encode(), headers, key)


def test_malformed_signatures_are_refused_not_crashed() -> None:
    key = secret()
    headers = signed([key])
    for bad in ("garbage", "v1,not-base64!!", "v1", "v2,abc,def"):
        with pytest.raises(WebhookVerificationError):
            verify_webhook(BODY.encode(), {**headers, "webhook-signature": bad}, key)
    # A malformed entry next to a valid one does not hide the valid one
    both = {**headers, "webhook-signature": "garbage " + headers["webhook-signature"]}
    assert verify_webhook(BODY.encode(), both, key)["type"] == "verification.decided"

"""Webhooks over HTTP on the local cloud as `make run` starts it: a verification decided reaches the local receiver
signed, verifies with facegate_sdk.webhooks, and `make webhooks` shows it."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from facegate_sdk.webhooks import WebhookVerificationError, verify_webhook
from localcloud.outbox import collect
from localcloud.outbox import fetch as fetch_moto
from localcloud.process import RunningCloud, running
from localcloud.webhooks import fetch as fetch_received
from localcloud.webhooks import render

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def cloud() -> Iterator[RunningCloud]:
    with running() as local:  # as `make run`: each function in worker processes
        yield local


def call(cloud: RunningCloud, method: str, path: str, body: Any, token: str) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(cloud.base + path, data=data, method=method)
    request.add_header("content-type", "application/json")
    request.add_header("authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def wait_for(cloud: RunningCloud, path: str, count: int, timeout_s: float = 30.0) -> list[dict[str, Any]]:
    """What the receiver got on `path`, once it has `count` deliveries (the local cloud polls its queues)."""
    deadline = time.monotonic() + timeout_s
    while True:
        got = [r for r in fetch_received(cloud.receiver) if r["path"] == path]
        if len(got) >= count or time.monotonic() > deadline:
            return got
        time.sleep(0.3)


def test_a_verification_decided_arrives_signed_and_verifies_with_the_sdk(cloud: RunningCloud) -> None:
    token = cloud.token("demo")
    subject = f"e2e-hook-{uuid.uuid4().hex[:8]}"
    address = f"{subject}@example.com"

    # Given the shop registered the local receiver as its endpoint
    status, endpoint = call(
        cloud,
        "POST",
        "/v1/webhooks/endpoints",
        {"url": f"{cloud.receiver}/shop", "events": ["verification.decided"]},
        token,
    )
    assert status == 201, endpoint
    secret = endpoint["secret"]

    # When a person who refused face verifies with an e-mail code
    status, notice = call(cloud, "GET", "/v1/notices/checkout?locale=en", None, token)
    assert status == 200
    refusal = {
        "purpose": "checkout",
        "decision": "refused",
        "notice_version": notice["version"],
        "notice_sha256": notice["sha256"],
        "locale": "en",
        "channel": "web",
        "age_band": "adult",
    }
    status, answer = call(cloud, "POST", f"/v1/subjects/{subject}/consents", refusal, token)
    assert status == 201, answer
    session_body = {"subject_id": subject, "purpose": "checkout", "email": address, "locale": "en"}
    status, session = call(cloud, "POST", "/v1/verification-sessions", session_body, token)
    assert status == 201, session
    status, challenge = call(
        cloud, "POST", "/v1/fallback/challenges", {"session_id": session["session_id"], "method": "email_otp"}, token
    )
    assert status == 201, challenge
    mail = next(m for m in collect(fetch_moto(f"http://127.0.0.1:{cloud.env['MOTO_PORT']}")) if m.to == address)
    code = re.findall(r"\b(\d{6})\b", mail.text)[0]
    status, result = call(
        cloud, "POST", f"/v1/fallback/challenges/{challenge['challenge_id']}/verify", {"code": code}, token
    )
    assert status == 200 and result["decision"] == "match", result

    # Then the receiver gets the signed event, and the SDK verifies it offline with the endpoint's secret
    (got,) = wait_for(cloud, "/shop", 1)
    event = verify_webhook(got["body"].encode(), got["headers"], secret)
    assert event["type"] == "verification.decided"
    assert event["data"]["subject_id"] == subject and event["data"]["verification_id"] == result["verification_id"]
    assert event["data"]["method"] == "email_otp" and event["data"]["decision"] == "match"
    with pytest.raises(WebhookVerificationError):
        verify_webhook(got["body"].replace("match", "no_match").encode(), got["headers"], secret)

    # And `make webhooks` prints it
    printed = render(fetch_received(cloud.receiver), 5)
    assert "verification.decided" in printed and got["headers"]["webhook-id"] in printed

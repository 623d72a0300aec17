"""Standard Webhooks signatures (the `standardwebhooks` package): `webhook-id`, `webhook-timestamp` and
`webhook-signature` = space-separated `v1,<base64 HMAC-SHA256 of id.timestamp.body>`, one per signing secret."""

from __future__ import annotations

import base64
import os
from collections.abc import Sequence
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook

SECRET_PREFIX = "whsec_"  # noqa: S105 (the prefix of every secret, not a secret)
SECRET_BYTES = 32  # Standard Webhooks: between 24 and 64 bytes


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(os.urandom(SECRET_BYTES)).decode("ascii")


def signature(secrets: Sequence[str], message_id: str, timestamp: int, body: str) -> str:
    """One `v1,...` signature per secret (during a rotation both the old and the new secret sign)."""
    if not secrets:
        raise ValueError("an endpoint always has a signing secret")
    at = datetime.fromtimestamp(timestamp, tz=UTC)
    return " ".join(Webhook(secret).sign(message_id, at, body) for secret in secrets)


def headers(secrets: Sequence[str], message_id: str, timestamp: int, body: str) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "user-agent": "facegate-webhooks/1",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(secrets, message_id, timestamp, body),
    }

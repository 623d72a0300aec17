"""Verify a facegate webhook offline (Standard Webhooks): the signature over `webhook-id.webhook-timestamp.body`
with the endpoint's `whsec_...` secret, and a timestamp no older (or newer) than the tolerance, which refuses
replays of old deliveries. Deduplicate on `webhook-id`: a retried delivery carries the same one.

    from facegate_sdk.webhooks import verify_webhook, WebhookVerificationError

    event = verify_webhook(request.body, request.headers, secret)   # raises on anything wrong
    if event["type"] == "verification.decided": ...
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from standardwebhooks.webhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError as _LibraryError

__all__ = ["DEFAULT_TOLERANCE_SECONDS", "WebhookVerificationError", "verify_webhook"]

DEFAULT_TOLERANCE_SECONDS = 300  # Standard Webhooks' default; the library refuses more than this too


class WebhookVerificationError(Exception):
    """The delivery is not from facegate, was altered, or is too old (or from the future)."""


def verify_webhook(
    payload: bytes | str,
    headers: Mapping[str, str],
    secret: str,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
) -> dict[str, Any]:
    """The event (`{"type", "timestamp", "data"}`) if the signature is valid and the timestamp within
    `tolerance_seconds` of now (at most 300 s, the library's own limit); else WebhookVerificationError. During a
    secret rotation the header carries several signatures: one valid signature is enough."""
    lowered = {k.lower(): v for k, v in headers.items()}
    for name in ("webhook-id", "webhook-timestamp", "webhook-signature"):
        if not lowered.get(name):
            raise WebhookVerificationError(f"missing header {name}")
    try:
        stamp = int(lowered["webhook-timestamp"])
    except ValueError as error:
        raise WebhookVerificationError("invalid webhook-timestamp") from error
    if abs(time.time() - stamp) > min(tolerance_seconds, DEFAULT_TOLERANCE_SECONDS):
        raise WebhookVerificationError("timestamp outside the tolerance (an old or replayed delivery)")
    # Malformed entries (no "v1,") are skipped, as Standard Webhooks asks; only well-formed ones are checked.
    signatures = " ".join(s for s in lowered["webhook-signature"].split(" ") if s.count(",") == 1)
    if not signatures:
        raise WebhookVerificationError("no signature")
    try:
        event = Webhook(secret).verify(payload, {**lowered, "webhook-signature": signatures})
    except (_LibraryError, ValueError) as error:  # ValueError: a signature that is not base64
        raise WebhookVerificationError(str(error) or "invalid signature") from error
    if not isinstance(event, dict):
        raise WebhookVerificationError("the payload is not a JSON object")
    return event

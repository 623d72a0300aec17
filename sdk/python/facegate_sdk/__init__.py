"""facegate's Python SDK for tenant backends: a typed client generated from the OpenAPI document, helpers to mint
and revoke device sessions, and offline verification of result tokens, device tokens and webhook signatures."""

from facegate_sdk._generated import API_VERSION, OPERATIONS
from facegate_sdk.client import ApiError, DeviceSession, FacegateClient
from facegate_sdk.tokens import (
    DeviceClaims,
    InvalidTokenError,
    Keys,
    VerificationResult,
    verify_device_token,
    verify_result_token,
)
from facegate_sdk.webhooks import WebhookVerificationError, verify_webhook

__all__ = [
    "API_VERSION",
    "OPERATIONS",
    "ApiError",
    "DeviceClaims",
    "DeviceSession",
    "FacegateClient",
    "InvalidTokenError",
    "Keys",
    "VerificationResult",
    "WebhookVerificationError",
    "verify_device_token",
    "verify_result_token",
    "verify_webhook",
]

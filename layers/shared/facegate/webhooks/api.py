"""Contracts of the webhook endpoints' routes (tenant administration, scope admin)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from facegate.webhooks.entities import (
    DEFAULT_ROTATION_WINDOW_SECONDS,
    MAX_ROTATION_WINDOW_SECONDS,
    WEBHOOK_EVENTS,
)

EventType = Literal[
    "verification.decided",
    "liveness.failed",
    "proctoring.incident_opened",
    "proctoring.report_ready",
    "erasure.completed",
]
assert set(EventType.__args__) == set(WEBHOOK_EVENTS)  # type: ignore[attr-defined]

WebhookUrl = Annotated[str, StringConstraints(min_length=8, max_length=2048)]


class CreateWebhookEndpointRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    url: WebhookUrl = Field(description="https URL of a public host (the local cloud also takes http://127.0.0.1)")
    events: list[EventType] = Field(min_length=1, max_length=len(WEBHOOK_EVENTS))
    description: Annotated[str, StringConstraints(max_length=200)] | None = None


class RotateWebhookSecretRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    window_seconds: int = Field(
        DEFAULT_ROTATION_WINDOW_SECONDS,
        ge=0,
        le=MAX_ROTATION_WINDOW_SECONDS,
        description="How long the current secret keeps signing next to the new one (0: it stops at once)",
    )


class WebhookEndpointResponse(BaseModel):
    endpoint_id: str
    url: str
    events: list[EventType]
    description: str | None = None
    created_at: str
    rotation_ends_at: str | None = Field(
        None, description="While a rotation lasts, deliveries carry a signature by the old and by the new secret"
    )


class WebhookEndpointCreatedResponse(WebhookEndpointResponse):
    secret: str = Field(description="whsec_...: shown once; verify each delivery's webhook-signature with it")


class WebhookEndpointsResponse(BaseModel):
    endpoints: list[WebhookEndpointResponse]


class WebhookAttemptResponse(BaseModel):
    message_id: str = Field(description="The webhook-id header: the same for every attempt of one event")
    event_type: EventType
    attempt: int
    outcome: Literal["delivered", "failed", "refused", "endpoint_gone"]
    at: str
    status_code: int | None = None
    error: str | None = None


class WebhookAttemptsResponse(BaseModel):
    endpoint_id: str
    attempts: list[WebhookAttemptResponse]

"""Webhooks function: tenants' webhook endpoints over HTTP (scope admin), and the delivery of domain events from
the webhook queue (EventBridge rule -> SQS -> here: fan-out to the tenant's endpoints, then one signed POST per
delivery, retried with backoff through SQS, then the dead-letter queue).

Thin adapter: parse and validate, call the webhook service, map the result to a response.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from facegate.api.docs import returns
from facegate.api.handler import NO_STORE, lambda_entry
from facegate.api.resolver import caller, create_resolver
from facegate.core.clock import utcnow
from facegate.core.config import get_settings
from facegate.core.errors import WebhookDeliveryError
from facegate.core.observability import logger
from facegate.webhooks.api import (
    CreateWebhookEndpointRequest,
    RotateWebhookSecretRequest,
    WebhookAttemptResponse,
    WebhookAttemptsResponse,
    WebhookEndpointCreatedResponse,
    WebhookEndpointResponse,
    WebhookEndpointsResponse,
)
from facegate.webhooks.entities import Delivery, Endpoint
from facegate.webhooks.service import rotation_ends
from facegate.wiring import container

EndpointId = Annotated[str, Path(min_length=4, max_length=64, pattern=r"^we_[a-f0-9]{32}$")]

settings = get_settings()
app = create_resolver(settings.max_json_body_bytes)
# Always answer with batchItemFailures (never raise): SQS retries exactly the failed records.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def _endpoint(endpoint: Endpoint) -> dict[str, Any]:
    return WebhookEndpointResponse.model_validate(
        {
            "endpoint_id": endpoint.endpoint_id,
            "url": endpoint.url,
            "events": list(endpoint.events),
            "description": endpoint.description,
            "created_at": endpoint.created_at,
            "rotation_ends_at": rotation_ends(endpoint, utcnow()),
        }
    ).model_dump(mode="json")


def _with_secret(endpoint: Endpoint, secret: str, status: int) -> Response[dict[str, Any]]:
    body = WebhookEndpointCreatedResponse.model_validate({**_endpoint(endpoint), "secret": secret})
    return Response(
        status_code=status, content_type="application/json", body=body.model_dump(mode="json"), headers=NO_STORE
    )


@app.post("/v1/webhooks/endpoints", responses=returns(WebhookEndpointCreatedResponse, 201))
def create_endpoint(body: CreateWebhookEndpointRequest) -> Response[dict[str, Any]]:
    """Register an endpoint; the answer shows its signing secret once (never stored in clear, never replayed)."""
    who = caller(app, container().tenant_for_client)
    endpoint, secret = container().webhooks.register(who, body.url, list(body.events), body.description)
    return _with_secret(endpoint, secret, 201)


@app.get("/v1/webhooks/endpoints", responses=returns(WebhookEndpointsResponse))
def list_endpoints() -> dict[str, Any]:
    who = caller(app, container().tenant_for_client)
    return {"endpoints": [_endpoint(e) for e in container().webhooks.endpoints(who)]}


@app.get("/v1/webhooks/endpoints/<endpoint_id>", responses=returns(WebhookEndpointResponse))
def get_endpoint(endpoint_id: EndpointId) -> dict[str, Any]:
    who = caller(app, container().tenant_for_client)
    return _endpoint(container().webhooks.get(who, endpoint_id))


@app.delete("/v1/webhooks/endpoints/<endpoint_id>", responses={204: {"description": "Deleted"}})
def delete_endpoint(endpoint_id: EndpointId) -> Response[str]:
    who = caller(app, container().tenant_for_client)
    container().webhooks.delete(who, endpoint_id)
    return Response(status_code=204, body="")


@app.post("/v1/webhooks/endpoints/<endpoint_id>/rotate-secret", responses=returns(WebhookEndpointCreatedResponse))
def rotate_secret(endpoint_id: EndpointId, body: RotateWebhookSecretRequest) -> Response[dict[str, Any]]:
    """A new secret, shown once; the old one keeps signing next to it for `window_seconds`."""
    who = caller(app, container().tenant_for_client)
    endpoint, secret = container().webhooks.rotate(who, endpoint_id, body.window_seconds)
    return _with_secret(endpoint, secret, 200)


@app.get("/v1/webhooks/endpoints/<endpoint_id>/attempts", responses=returns(WebhookAttemptsResponse))
def list_attempts(endpoint_id: EndpointId, limit: Annotated[int, Query(ge=1, le=200)] = 50) -> dict[str, Any]:
    """The endpoint's latest delivery attempts (status codes, never bodies), newest first."""
    who = caller(app, container().tenant_for_client)
    attempts = container().webhooks.attempts(who, endpoint_id, limit)
    return WebhookAttemptsResponse(
        endpoint_id=endpoint_id,
        attempts=[
            WebhookAttemptResponse.model_validate(
                {
                    "message_id": a.message_id,
                    "event_type": a.event_type,
                    "attempt": a.attempt,
                    "outcome": a.outcome,
                    "at": a.at,
                    "status_code": a.status_code,
                    "error": a.error,
                }
            )
            for a in attempts
        ],
    ).model_dump(mode="json")


def _deliver(record: SQSRecord) -> None:
    message = json.loads(record.body)
    service = container().webhooks
    if message.get("kind") != "webhook-delivery":  # an EventBridge event: one delivery per endpoint
        service.fan_out(message)
        return
    attempt = int(record.attributes.approximate_receive_count or 1)
    try:
        service.deliver(Delivery.from_message(message), attempt)
    except WebhookDeliveryError:
        # Back off: the message comes back later each time, then goes to the dead-letter queue.
        try:
            container().webhook_retry_later(record.receipt_handle, attempt)
        except Exception:  # without the backoff SQS still redelivers after the visibility timeout
            logger.warning("webhook backoff not applied")
        raise


@lambda_entry()
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if event.get("Records"):
        return process_partial_response(event=event, record_handler=_deliver, processor=processor, context=context)
    return app.resolve(event, context)

"""What every function's handler shares: one decorator stack for the Lambda entry point, and the
Idempotency-Key steps of a write as one call."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from facegate.api.idempotency import Idempotency
from facegate.core.observability import logger, metrics, tracer

LambdaHandler = Callable[[dict[str, Any], LambdaContext], dict[str, Any]]


# Answers that carry a secret or a signed proof of identity (a TOTP seed, a result token) must not be cached
# by browsers or proxies.
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def lambda_entry(idempotency: Idempotency | None = None) -> Callable[[LambdaHandler], LambdaHandler]:
    """The stack of every function's `lambda_handler`, outermost first: the correlation id and the Lambda
    context in the logs (state cleared per invocation), tracing, metrics; then, for a function with
    idempotent writes, its Lambda context registered, so that an in-progress record expires at this
    invocation's deadline (facegate.api.idempotency)."""

    def decorate(handler: LambdaHandler) -> LambdaHandler:
        def registered(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
            if idempotency is not None:
                idempotency.register(context)
            return handler(event, context)

        registered.__name__ = handler.__name__
        registered.__doc__ = handler.__doc__
        with_metrics = metrics.log_metrics(registered)
        traced = tracer.capture_lambda_handler(with_metrics)
        entry: LambdaHandler = logger.inject_lambda_context(
            correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True
        )(traced)
        return entry

    return decorate


def once[Body: BaseModel](
    app: APIGatewayHttpResolver,
    idempotency: Idempotency,
    operation_name: str,
    tenant_id: str,
    subject_ref: str,
    body: Body,
    operation: Callable[[Body], dict[str, Any]],
) -> dict[str, Any]:
    """`operation(body)` once per Idempotency-Key (the request's header) for this operation and subject.

    A repeated key answers the stored answer; one whose first request still runs is refused 409
    `request_in_progress`; the same key with another body is refused too (facegate.api.idempotency). The
    record sits in the subject's partition (`subject_ref`), so that the subject's erasure deletes it.
    """
    return idempotency.run(
        operation_name,
        app.current_event.headers.get("idempotency-key"),
        tenant_id,
        subject_ref,
        lambda _request: operation(body),
        body.model_dump(),
    )

"""The one place where errors become RFC 9457 problem details (application/problem+json)."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)
from botocore.exceptions import ConnectionError as AwsConnectionError
from botocore.exceptions import HTTPClientError
from pydantic import BaseModel, ConfigDict, Field

from facegate.core.errors import (
    DependencyUnavailableError,
    FacegateError,
    IdempotencyKeyReusedError,
    InvalidRequestError,
    MalformedJsonError,
    RequestInProgressError,
    UnsupportedContentTypeError,
)
from facegate.core.observability import logger

PROBLEM_JSON = "application/problem+json"
# A retry that arrives while the first request with its Idempotency-Key still runs (or before the lock of
# a request whose instance crashed has ended, at most the function's timeout) is told to come back soon.
IN_PROGRESS_RETRY_AFTER_SECONDS = 2
# An AWS dependency that did not answer within the client limits (facegate.core.config.ClientLimits).
DEPENDENCY_RETRY_AFTER_SECONDS = 5


def _unreachable_dependency(error: BaseException | None) -> BaseException | None:
    """The botocore connect/read timeout or connection failure behind an error (PynamoDB and Powertools
    wrap them), if there is one."""
    seen = 0
    while error is not None and seen < 10:
        if isinstance(error, AwsConnectionError | HTTPClientError):
            return error
        error, seen = error.__cause__ or error.__context__, seen + 1
    return None


class FieldError(BaseModel):
    loc: list[str] = Field(description="Where in the request: body, path or query, then the field")
    msg: str
    type: str | None = None


class ProblemDetails(BaseModel):
    """The body of every error the service answers (RFC 9457), as `problem()` below writes it; the OpenAPI
    document describes every error response with it (tools/openapi.py)."""

    model_config = ConfigDict(extra="allow", title="Problem")

    type: str = Field(description="https://facegate.dev/problems/<code>")
    title: str
    status: int
    code: str = Field(description="Stable, machine-readable; see the README's error table")
    detail: str
    instance: str | None = Field(None, description="The request path")
    errors: list[FieldError] | None = Field(None, description="invalid_request: what did not match the schema")


def problem(error: FacegateError, instance: str | None = None, **more: Any) -> Response:
    body: dict[str, Any] = {
        "type": f"https://facegate.dev/problems/{error.code}",
        "title": error.title,
        "status": error.status,
        "code": error.code,
        "detail": error.detail,
    }
    if instance:
        body["instance"] = instance
    body.update(error.extra)
    body.update(more)
    headers = {}
    if isinstance(body.get("retry_after"), int):  # 409, 429: tell clients when to come back (RFC 9110)
        headers["Retry-After"] = str(max(0, body["retry_after"]))
    return Response(
        status_code=error.status,
        content_type=PROBLEM_JSON,
        body=json.dumps(body, ensure_ascii=False),
        headers=headers or None,
    )


def lambda_response(error: FacegateError, instance: str | None = None, **more: Any) -> dict[str, Any]:
    """The problem as an API Gateway payload-2.0 response, for answers given before routing."""
    response = problem(error, instance, **more)
    return {
        "statusCode": response.status_code,
        "headers": {"Content-Type": PROBLEM_JSON, **{k: str(v) for k, v in (response.headers or {}).items()}},
        "body": response.body,
        "isBase64Encoded": False,
    }


def _validation_errors(error: RequestValidationError) -> list[dict[str, Any]]:
    return [
        {
            "loc": [str(part) for part in item.get("loc", ())],
            "msg": item.get("msg", ""),
            "type": item.get("type"),
        }
        for item in error.errors()
    ]


def install(app: APIGatewayHttpResolver) -> None:
    """Register the exception handlers: every failure leaves as problem+json with a stable code."""

    def path() -> str:
        return app.current_event.path

    @app.exception_handler(FacegateError)
    def _domain(error: FacegateError) -> Response:
        if error.status >= 500:
            logger.error("request failed", code=error.code)
        return problem(error, path())

    @app.exception_handler(RequestUnsupportedContentType)
    def _content_type(_: RequestUnsupportedContentType) -> Response:
        return problem(UnsupportedContentTypeError("send the body as application/json"), path())

    @app.exception_handler(RequestValidationError)
    def _invalid(error: RequestValidationError) -> Response:
        errors = _validation_errors(error)
        if any(item["type"] == "json_invalid" for item in errors):
            return problem(MalformedJsonError(), path())
        return problem(InvalidRequestError("the request does not match the schema"), path(), errors=errors)

    @app.exception_handler(IdempotencyValidationError)
    def _reused(_: IdempotencyValidationError) -> Response:
        return problem(IdempotencyKeyReusedError(), path())

    @app.exception_handler(IdempotencyAlreadyInProgressError)
    def _in_progress(_: IdempotencyAlreadyInProgressError) -> Response:
        # The mobile-retry case the key exists for: expected, so no stack trace and no error log.
        logger.info("request in progress", path=path())
        return problem(RequestInProgressError(retry_after=IN_PROGRESS_RETRY_AFTER_SECONDS), path())

    @app.not_found
    def _not_found(_: NotFoundError) -> Response:
        from facegate.core.errors import RouteNotFoundError

        return problem(RouteNotFoundError(), path())

    @app.exception_handler(Exception)
    def _unexpected(error: Exception) -> Response:
        cause = _unreachable_dependency(error)
        if cause is not None:
            # Within the client limits, before the function's own timeout: an answer, not a stack trace.
            logger.error("dependency unavailable", exception_type=type(cause).__name__)
            return problem(DependencyUnavailableError(retry_after=DEPENDENCY_RETRY_AFTER_SECONDS), path())
        logger.exception("unhandled error")
        return problem(FacegateError("an unexpected error occurred; it has been logged"), path())

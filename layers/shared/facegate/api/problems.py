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
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyValidationError
from pydantic import BaseModel, ConfigDict, Field

from facegate.errors import (
    FacegateError,
    IdempotencyKeyReusedError,
    InvalidRequestError,
    MalformedJsonError,
    UnsupportedContentTypeError,
)
from facegate.observability import logger

PROBLEM_JSON = "application/problem+json"


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
    if isinstance(body.get("retry_after"), int):  # 429: tell clients when to come back (RFC 9110)
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

    @app.not_found
    def _not_found(_: NotFoundError) -> Response:
        from facegate.errors import RouteNotFoundError

        return problem(RouteNotFoundError(), path())

    @app.exception_handler(Exception)
    def _unexpected(error: Exception) -> Response:
        logger.exception("unhandled error")
        return problem(FacegateError("an unexpected error occurred; it has been logged"), path())

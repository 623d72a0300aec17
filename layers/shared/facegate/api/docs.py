"""What a route answers on success, for the OpenAPI document (`responses=` of a route).

Errors are documented once for every route by tools/openapi.py (problem+json, facegate.api.problems).
"""

from __future__ import annotations

from http import HTTPStatus

from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from pydantic import BaseModel


def returns(model: type[BaseModel], *statuses: int) -> dict[int, OpenAPIResponse]:
    """The route answers `model` as JSON with each of `statuses` (200 when none is given)."""
    return {
        status: {"description": HTTPStatus(status).phrase, "content": {"application/json": {"model": model}}}
        for status in statuses or (200,)
    }

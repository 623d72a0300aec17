"""Idempotency-Key support for writes (Powertools idempotency on DynamoDB).

The key is scoped to tenant and route, so two tenants (or two routes) can never collide, and reusing a
key with a different body is refused instead of silently answering the first request.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from facegate.errors import InvalidRequestError

MAX_KEY_LENGTH = 255


class Idempotency:
    def __init__(self, table_name: str, expires_after_seconds: int = 24 * 3600) -> None:
        self.config = IdempotencyConfig(
            event_key_jmespath="key",
            payload_validation_jmespath="request",
            raise_on_no_idempotency_key=False,
            expires_after_seconds=expires_after_seconds,
        )
        self.persistence = DynamoDBPersistenceLayer(table_name=table_name)

    def register(self, context: LambdaContext) -> None:
        self.config.register_lambda_context(context)

    def wrap(self, name: str, operation: Callable[[dict[str, Any]], dict[str, Any]]) -> Callable[..., Any]:
        """A version of `operation(request)` that answers a repeated key with the stored answer."""

        def run(call: dict[str, Any]) -> dict[str, Any]:
            return operation(call["request"])

        run.__name__ = name
        return idempotent_function(
            data_keyword_argument="call", persistence_store=self.persistence, config=self.config
        )(run)


def scoped_key(header: str | None, tenant_id: str, route: str) -> str | None:
    if header is None:
        return None
    if not 8 <= len(header) <= MAX_KEY_LENGTH:
        raise InvalidRequestError("Idempotency-Key must be 8 to 255 characters")
    return f"{tenant_id}|{route}|{header}"

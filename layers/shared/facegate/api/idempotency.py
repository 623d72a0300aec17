"""Idempotency-Key support for writes (Powertools idempotency on DynamoDB).

Records are partitioned per tenant and subject (partition key `idempotency#T#<tenant>#S#<subject_ref>`),
so that erasing a subject can find and delete the stored answers too. The key is scoped to the route,
and reusing a key with a different body is refused instead of silently answering the first request.

While the first request runs, its record is INPROGRESS and a retry is answered 409 `request_in_progress`
(facegate.api.problems). The lock lasts at most until the function's timeout, because the handler
registers its Lambda context: Powertools then expires an in-progress record at the invocation's deadline,
so a retry after a crashed or timed-out instance proceeds from then on.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import Any

import boto3
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from facegate.core.config import ClientLimits
from facegate.core.errors import InvalidRequestError

MAX_KEY_LENGTH = 255
PARTITION_PREFIX = "idempotency#"


def partition_for(tenant_id: str, subject_ref: str) -> str:
    return f"{PARTITION_PREFIX}T#{tenant_id}#S#{subject_ref}"


class Idempotency:
    def __init__(self, table_name: str, limits: ClientLimits, expires_after_seconds: int = 24 * 3600) -> None:
        self.table_name = table_name
        self.limits = limits
        self.config = IdempotencyConfig(
            event_key_jmespath="key",
            payload_validation_jmespath="request",
            raise_on_no_idempotency_key=False,
            expires_after_seconds=expires_after_seconds,
        )

    @cached_property
    def _client(self) -> Any:
        return boto3.session.Session().client("dynamodb", config=self.limits.botocore_config())

    def register(self, context: LambdaContext) -> None:
        """Call at the start of every invocation: bounds an in-progress lock by the invocation's deadline."""
        self.config.register_lambda_context(context)

    def wrap(
        self, name: str, partition: str, operation: Callable[[dict[str, Any]], dict[str, Any]]
    ) -> Callable[..., Any]:
        """A version of `operation(request)` that answers a repeated key with the stored answer."""
        persistence = DynamoDBPersistenceLayer(
            table_name=self.table_name,
            key_attr="id",
            sort_key_attr="sk",
            static_pk_value=partition,
            boto3_client=self._client,
        )

        def run(call: dict[str, Any]) -> dict[str, Any]:
            return operation(call["request"])

        run.__name__ = name
        return idempotent_function(data_keyword_argument="call", persistence_store=persistence, config=self.config)(run)

    def run(
        self,
        name: str,
        header: str | None,
        tenant_id: str,
        subject_ref: str,
        operation: Callable[[dict[str, Any]], dict[str, Any]],
        request: dict[str, Any],
    ) -> dict[str, Any]:
        """`operation(request)`, once per Idempotency-Key (`header`) for this operation and subject."""
        call = {"key": scoped_key(header, name), "request": request}
        answer: dict[str, Any] = self.wrap(name, partition_for(tenant_id, subject_ref), operation)(call=call)
        return answer


def scoped_key(header: str | None, route: str) -> str | None:
    if header is None:
        return None
    if not 8 <= len(header) <= MAX_KEY_LENGTH:
        raise InvalidRequestError("Idempotency-Key must be 8 to 255 characters")
    return f"{route}|{header}"

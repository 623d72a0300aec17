"""Helpers every repository shares: binding items to their table, translating AWS error codes."""

from __future__ import annotations

from datetime import UTC, datetime

from pynamodb.connection import Connection
from pynamodb.exceptions import PutError, TransactWriteError, UpdateError
from pynamodb.models import Model

from facegate.config import ClientLimits
from facegate.errors import ConflictError

# PynamoDB keeps connection settings on the item classes (class-level Meta), so they are process-wide
# by nature: the composition root sets them once per cold start (facegate.wiring), before any binding.
_limits = ClientLimits()


def use_client_limits(limits: ClientLimits) -> None:
    """Timeouts and attempts of every PynamoDB connection bound from now on."""
    global _limits
    _limits = limits


def bind(model: type[Model], table_name: str, region: str) -> None:
    """Point an item class at its table (names come from config, not from import-time globals)."""
    meta = model.Meta
    if getattr(meta, "table_name", None) != table_name or getattr(meta, "region", None) != region:
        meta.table_name = table_name
        meta.region = region
    # PynamoDB annotates these as int, yet passes them to botocore, which takes fractions of a second.
    meta.connect_timeout_seconds = _limits.connect_timeout  # type: ignore[assignment]
    meta.read_timeout_seconds = _limits.read_timeout  # type: ignore[assignment]
    meta.max_retry_attempts = _limits.max_attempts - 1  # PynamoDB counts retries, not attempts
    # A fresh connection per repository: clients made under another endpoint or mock must not leak.
    model._connection = None


def connection(region: str) -> Connection:
    """A PynamoDB connection for transactions, with the same limits as the bound item classes."""
    return Connection(
        region=region,
        connect_timeout_seconds=_limits.connect_timeout,
        read_timeout_seconds=_limits.read_timeout,
        max_retry_attempts=_limits.max_attempts - 1,
    )


def subject_pk(tenant_id: str, subject_ref: str) -> str:
    """The partition of everything a subject owns, in every table: erasure finds it by key."""
    return f"T#{tenant_id}#S#{subject_ref}"


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def is_condition_failure(error: PutError | UpdateError | TransactWriteError) -> bool:
    """True when DynamoDB refused a write because a condition did not hold (a lost race)."""
    if isinstance(error, TransactWriteError):
        reasons = error.cancellation_reasons or []
        return any(r is not None and r.code == "ConditionalCheckFailed" for r in reasons)
    return error.cause_response_code == "ConditionalCheckFailedException"


def conflict_from(error: PutError | UpdateError | TransactWriteError) -> Exception:
    """Map a lost race to ConflictError; anything else is re-raised unchanged by the caller."""
    if is_condition_failure(error):
        return ConflictError()
    return error

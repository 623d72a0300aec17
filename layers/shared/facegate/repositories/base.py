"""Helpers every repository shares: binding items to their table, translating AWS error codes."""

from __future__ import annotations

from datetime import UTC, datetime

from pynamodb.exceptions import PutError, TransactWriteError, UpdateError
from pynamodb.models import Model

from facegate.errors import ConflictError


def bind(model: type[Model], table_name: str, region: str) -> None:
    """Point an item class at its table (names come from config, not from import-time globals)."""
    meta = model.Meta
    if getattr(meta, "table_name", None) != table_name or getattr(meta, "region", None) != region:
        meta.table_name = table_name
        meta.region = region
    # A fresh connection per repository: clients made under another endpoint or mock must not leak.
    model._connection = None


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

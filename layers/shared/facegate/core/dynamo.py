"""Helpers every PynamoDB repository shares (binding items to their table, translating AWS error codes),
and the audit log's table."""

from __future__ import annotations

import json
from datetime import timedelta

import botocore.loaders
import botocore.session
import pynamodb.connection.base as pynamodb_connection
from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.connection import Connection
from pynamodb.exceptions import PutError, TransactWriteError, UpdateError
from pynamodb.models import Model

from facegate.core.audit import AuditEvent
from facegate.core.clock import iso, utcnow
from facegate.core.config import ClientLimits
from facegate.core.errors import ConflictError
from facegate.core.tenancy import subject_pk

# PynamoDB keeps connection settings on the item classes (class-level Meta), so they are process-wide
# by nature: the composition root sets them once per cold start (facegate.wiring), before any binding.
_limits = ClientLimits()

# PynamoDB gives every connection (one per item class and thread) a botocore session of its own, and each new
# session reads and parses DynamoDB's service model, endpoints and partitions again: about 70 ms per item class,
# most of a non-face function's first request (measured by tools/bench_coldstart.py). Every session made here
# shares one data loader, whose cache makes that a one-time cost per process; sessions themselves stay separate
# (botocore does not promise that making clients from one session is thread-safe).
_DATA_LOADER = botocore.loaders.create_loader()


def botocore_session() -> botocore.session.Session:
    """A botocore session that shares the process's data loader (service models parsed once)."""
    session = botocore.session.get_session()
    session.register_component("data_loader", _DATA_LOADER)
    return session


pynamodb_connection.get_session = botocore_session  # the factory PynamoDB's Connection.session calls


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


class AuditItem(Model):
    class Meta:
        table_name = ""

    pk = UnicodeAttribute(hash_key=True)  # T#<tenant>#S#<subject_ref> or T#<tenant>
    sk = UnicodeAttribute(range_key=True)  # <timestamp>#<event_id>
    tenant_id = UnicodeAttribute()
    action = UnicodeAttribute()
    actor = UnicodeAttribute()
    subject_ref = UnicodeAttribute(null=True)
    purpose = UnicodeAttribute(null=True)
    outcome = UnicodeAttribute()
    request_id = UnicodeAttribute(null=True)
    details = UnicodeAttribute(null=True)  # JSON; counts and codes, never biometrics
    at = UnicodeAttribute()
    expires_at = NumberAttribute()


class AuditRepository:
    def __init__(self, table_name: str, region: str, retention_days: int) -> None:
        bind(AuditItem, table_name, region)
        self._retention = timedelta(days=retention_days)

    def append(self, event: AuditEvent) -> None:
        now = utcnow()
        pk = subject_pk(event.tenant_id, event.subject_ref) if event.subject_ref else f"T#{event.tenant_id}"
        AuditItem(
            pk=pk,
            sk=f"{iso(now)}#{event.event_id}",
            tenant_id=event.tenant_id,
            action=event.action,
            actor=event.actor,
            subject_ref=event.subject_ref,
            purpose=event.purpose,
            outcome=event.outcome,
            request_id=event.request_id,
            details=json.dumps(event.details, sort_keys=True) if event.details else None,
            at=iso(now),
            expires_at=int((now + self._retention).timestamp()),
        ).save(condition=AuditItem.pk.does_not_exist())

    def for_subject(self, tenant_id: str, subject_ref: str) -> list[AuditEvent]:
        return [
            AuditEvent(
                event_id=item.sk.split("#", 1)[1],
                tenant_id=item.tenant_id,
                action=item.action,
                actor=item.actor,
                outcome=item.outcome,
                subject_ref=item.subject_ref,
                purpose=item.purpose,
                request_id=item.request_id,
                details=json.loads(item.details) if item.details else {},
                at=item.at,
            )
            for item in AuditItem.query(subject_pk(tenant_id, subject_ref))
        ]

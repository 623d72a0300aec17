"""Who is calling (tenant, app client, scopes from the verified JWT claims) and where a subject's data lives."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CallerContext:
    tenant_id: str
    client_id: str
    scopes: frozenset[str]
    request_id: str | None = None


def subject_pk(tenant_id: str, subject_ref: str) -> str:
    """The partition of everything a subject owns, in every table: erasure finds it by key."""
    return f"T#{tenant_id}#S#{subject_ref}"

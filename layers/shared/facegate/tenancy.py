"""Who is calling: the tenant, its app client and scopes, taken from the verified JWT claims."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CallerContext:
    tenant_id: str
    client_id: str
    scopes: frozenset[str]
    request_id: str | None = None

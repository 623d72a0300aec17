"""Who is calling (tenant, app client, scopes from the verified JWT claims, or a device session) and where a
subject's data lives."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DeviceSessionGrant:
    """What a verified device token allows: one subject, one purpose, named operations, until `expires_at`."""

    session_id: str
    tenant_id: str
    subject_id: str
    purpose: str
    operations: frozenset[str]
    expires_at: int  # epoch seconds


@dataclass(frozen=True)
class CallerContext:
    tenant_id: str
    client_id: str
    scopes: frozenset[str]
    request_id: str | None = None
    # Set for a device (a browser or phone holding a device-session token): it has no tenant scopes at all.
    device_session: DeviceSessionGrant | None = None


def subject_pk(tenant_id: str, subject_ref: str) -> str:
    """The partition of everything a subject owns, in every table: erasure finds it by key."""
    return f"T#{tenant_id}#S#{subject_ref}"

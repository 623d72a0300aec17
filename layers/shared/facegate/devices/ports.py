"""What the device-session service needs from storage (implemented in dynamo.py).

Signing and the public keys come through facegate.core.ports.Signer and a JWKS callable, purposes through
facegate.consent.ports.Purposes, the audit log through facegate.core.audit.
"""

from __future__ import annotations

from typing import Literal, Protocol

from facegate.devices.entities import DeviceSession

SessionState = Literal["active", "revoked", "unknown"]


class DeviceSessions(Protocol):
    def create(self, session: DeviceSession) -> None: ...

    def state(self, tenant_id: str, subject_ref: str, session_id: str, purpose: str) -> SessionState:
        """`active` if the session exists for that subject and purpose and was not revoked; `revoked` if a
        revocation exists; `unknown` if no such session exists (never minted, erased, or removed by TTL)."""
        ...

    def revoke(self, tenant_id: str, session_id: str, until: int) -> None:
        """Record the revocation of a session id of this tenant (idempotent), kept until `until` (TTL)."""
        ...

"""Device sessions: minted by a tenant's backend for one subject, one purpose and named operations; a compact
ES256 JWS signed by the KMS signing key (the one behind /v1/keys), checked on every device request by the
gateway's Lambda authorizer (signature, audience, issuer, expiry, revocation, the route's operation).

The token carries no tenant credential: only the tenant id, the subject id, the purpose and the operations it
allows, for at most MAX_TTL_SECONDS. The session is also stored (under the subject's partition, with a TTL), so
that erasure, a withdrawal and a revocation end it at once: a token whose session is gone is refused.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from facegate.consent.ports import Purposes
from facegate.core.audit import Auditor
from facegate.core.clock import iso, utcnow
from facegate.core.errors import (
    DeviceSessionExpiredError,
    DeviceSessionRevokedError,
    ForbiddenError,
    InvalidDeviceTokenError,
    InvalidRequestError,
    OperationNotAllowedError,
)
from facegate.core.hashing import Subject, SubjectHasher
from facegate.core.observability import count, logger
from facegate.core.ports import Signer
from facegate.core.tenancy import CallerContext, DeviceSessionGrant
from facegate.devices.entities import (
    AUDIENCE,
    DEFAULT_TTL_SECONDS,
    MAX_TTL_SECONDS,
    MIN_TTL_SECONDS,
    OPERATIONS,
    REVOCATION_RECORD_SECONDS,
    ROUTE_OPERATIONS,
    SESSION_RECORD_SECONDS,
    TOKEN_TYPE,
    DeviceSession,
    MintedDeviceSession,
)
from facegate.devices.ports import DeviceSessions

# Reads the claims of a compact ES256 JWS signed by one of the keys of a JWKS; None for anything else.
TokenReader = Callable[[str], dict[str, Any] | None]


def require_operation(caller: CallerContext, operation: str | None, now: datetime) -> DeviceSessionGrant:
    """Defence in depth on every device route: the caller is a device session that allows `operation` (None:
    any) and has not expired at `now`. The authorizer has checked the same before the function ran."""
    grant = caller.device_session
    if grant is None:
        raise ForbiddenError("this route is for device sessions only")
    if operation is not None and operation not in grant.operations:
        raise OperationNotAllowedError(f"the device session does not allow '{operation}'")
    if grant.expires_at <= int(now.timestamp()):
        raise DeviceSessionExpiredError()
    return grant


class DeviceSessionService:
    def __init__(
        self,
        sessions: DeviceSessions,
        signer: Signer,
        reader: TokenReader,
        notices: Purposes,
        hasher: SubjectHasher,
        auditor: Auditor,
        issuer: str,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._sessions = sessions
        self._signer = signer
        self._reader = reader
        self._notices = notices
        self._hasher = hasher
        self._auditor = auditor
        self._issuer = issuer
        self._clock = clock

    # -- the tenant's backend

    def mint(
        self,
        caller: CallerContext,
        subject: Subject,
        purpose: str,
        operations: Iterable[str],
        ttl_seconds: int = DEFAULT_TTL_SECONDS,
    ) -> MintedDeviceSession:
        """A device session and its token for this subject and purpose (the purpose must exist)."""
        if caller.device_session is not None:
            raise ForbiddenError("a device session cannot mint device sessions")
        ops = tuple(dict.fromkeys(operations))
        unknown = [op for op in ops if op not in OPERATIONS]
        if not ops or unknown:
            raise InvalidRequestError(
                f"operations must be a non-empty subset of {list(OPERATIONS)}",
                errors=[{"loc": ["body", "operations"], "msg": "unknown or empty", "type": "value_error"}],
            )
        if not MIN_TTL_SECONDS <= ttl_seconds <= MAX_TTL_SECONDS:
            raise InvalidRequestError(f"ttl_seconds must be between {MIN_TTL_SECONDS} and {MAX_TTL_SECONDS}")
        self._notices.purpose(caller.tenant_id, purpose)
        now = self._clock()
        valid_until = int((now + timedelta(seconds=ttl_seconds)).timestamp())
        session = DeviceSession(
            session_id=uuid.uuid4().hex,
            tenant_id=caller.tenant_id,
            subject_ref=subject.ref,
            purpose=purpose,
            operations=ops,
            created_at=iso(now),
            valid_until=valid_until,
            expires_at=valid_until + SESSION_RECORD_SECONDS,
        )
        claims = {
            "iss": self._issuer,
            "aud": AUDIENCE,
            "typ": TOKEN_TYPE,
            "sub": subject.id,
            "tenant": caller.tenant_id,
            "purpose": purpose,
            "ops": list(ops),
            "jti": session.session_id,
            "iat": int(now.timestamp()),
            "exp": valid_until,
        }
        token = self._signer.sign(claims)
        self._sessions.create(session)
        self._auditor.record(
            caller,
            "device_session.minted",
            "ok",
            subject.ref,
            purpose,
            device_session_id=session.session_id,
            operations=list(ops),
            ttl_seconds=ttl_seconds,
        )
        count("DeviceSessionMinted")
        return MintedDeviceSession(session=session, subject_id=subject.id, token=token)

    def revoke(self, caller: CallerContext, session_id: str) -> None:
        """Revoke a session id of the caller's tenant: its token is refused from now on (idempotent)."""
        if caller.device_session is not None:
            raise ForbiddenError("a device session cannot revoke device sessions")
        until = int(self._clock().timestamp()) + REVOCATION_RECORD_SECONDS
        self._sessions.revoke(caller.tenant_id, session_id, until)
        self._auditor.record(caller, "device_session.revoked", "ok", device_session_id=session_id)
        count("DeviceSessionRevoked")

    # -- the gateway's authorizer

    def authorize(self, token: str | None, route_key: str) -> DeviceSessionGrant:
        """The grant of a valid device token for this route, or the reason it is refused (InvalidDeviceToken,
        DeviceSessionExpired, DeviceSessionRevoked, OperationNotAllowed)."""
        grant = self.verify(token)
        if route_key not in ROUTE_OPERATIONS:
            raise OperationNotAllowedError("device sessions cannot call this route")
        needed = ROUTE_OPERATIONS[route_key]
        if needed is not None and needed not in grant.operations:
            raise OperationNotAllowedError(f"the device session does not allow '{needed}'")
        ref = self._hasher.ref(grant.tenant_id, grant.subject_id)
        state = self._sessions.state(grant.tenant_id, ref, grant.session_id, grant.purpose)
        if state != "active":
            logger.info("device session refused", reason=state, device_session_id=grant.session_id)
            raise DeviceSessionRevokedError()
        return grant

    def verify(self, token: str | None) -> DeviceSessionGrant:
        """The grant a device token states, if facegate signed it as a device session and it has not expired."""
        claims = self._reader(token) if token else None
        if claims is None:
            raise InvalidDeviceTokenError()
        try:
            grant = DeviceSessionGrant(
                session_id=_text(claims, "jti"),
                tenant_id=_text(claims, "tenant"),
                subject_id=_text(claims, "sub"),
                purpose=_text(claims, "purpose"),
                operations=frozenset(_operations(claims)),
                expires_at=_number(claims, "exp"),
            )
            issued_at = _number(claims, "iat")
        except (KeyError, TypeError, ValueError) as error:
            raise InvalidDeviceTokenError() from error
        if (
            claims.get("typ") != TOKEN_TYPE
            or claims.get("aud") != AUDIENCE
            or claims.get("iss") != self._issuer
            or not grant.operations
            or grant.expires_at - issued_at > MAX_TTL_SECONDS
        ):
            raise InvalidDeviceTokenError()
        if grant.expires_at <= int(self._clock().timestamp()):
            raise DeviceSessionExpiredError()
        return grant


def _text(claims: dict[str, Any], name: str) -> str:
    value = claims[name]
    if not isinstance(value, str) or not value:
        raise ValueError(name)
    return value


def _number(claims: dict[str, Any], name: str) -> int:
    value = claims[name]
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(name)
    return value


def _operations(claims: dict[str, Any]) -> list[str]:
    ops = claims["ops"]
    if not isinstance(ops, list) or not all(isinstance(op, str) and op in OPERATIONS for op in ops):
        raise ValueError("ops")
    return ops

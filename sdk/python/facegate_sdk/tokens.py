"""Offline verification of what facegate signs (ES256 by its KMS key; public keys at GET /v1/keys):

- verification results (`result_token` of face and non-face verifications), for the tenant's backend:
  `verify_result_token(token, keys, tenant="shop")`;
- device-session tokens (`token` of POST /v1/device-sessions): `verify_device_token(token, keys)`.

Each check is the signature with the key of the token's `kid`, the algorithm (ES256 only), the audience, the
issuer, the type and the expiry; anything else raises InvalidTokenError.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import jwt
import requests

DEVICE_AUDIENCE = "facegate-device"
DEVICE_MAX_LIFETIME = 600
DEFAULT_ISSUER = "facegate"


class InvalidTokenError(Exception):
    """The token is not a valid facegate token of the expected kind (signature, audience, issuer, type, expiry)."""


class Keys:
    """facegate's public keys (a JWKS). Fetched from /v1/keys with `Keys.fetch(base_url)`, or given as a dict
    (cached by the tenant, for fully offline checks). An unknown `kid` refetches once (key rotation)."""

    def __init__(self, jwks: Mapping[str, Any], refresh: Callable[[], Mapping[str, Any]] | None = None) -> None:
        self._keys = self._parse(jwks)
        self._refresh = refresh

    @staticmethod
    def _parse(jwks: Mapping[str, Any]) -> dict[str, jwt.PyJWK]:
        keys = {}
        for key in jwks.get("keys", []):
            if key.get("kty") == "EC" and key.get("crv") == "P-256" and key.get("alg", "ES256") == "ES256":
                keys[str(key.get("kid"))] = jwt.PyJWK.from_dict(dict(key), algorithm="ES256")
        return keys

    @classmethod
    def fetch(cls, base_url: str, timeout: float = 10.0) -> Keys:
        def load() -> Mapping[str, Any]:
            response = requests.get(base_url.rstrip("/") + "/v1/keys", timeout=timeout)
            response.raise_for_status()
            return dict(response.json())

        return cls(load(), refresh=load)

    def key_for(self, token: str) -> jwt.PyJWK:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as error:
            raise InvalidTokenError(f"not a JWS: {error}") from error
        if header.get("alg") != "ES256":
            raise InvalidTokenError("only ES256 tokens are facegate's")
        kid = str(header.get("kid"))
        if kid not in self._keys and self._refresh is not None:
            self._keys = self._parse(self._refresh())
        if kid not in self._keys:
            raise InvalidTokenError("signed by a key that is not facegate's")
        return self._keys[kid]


def _decode(token: str, keys: Keys, audience: str, issuer: str, leeway: float, now: float | None) -> dict[str, Any]:
    try:
        claims = jwt.decode(
            token,
            keys.key_for(token).key,
            algorithms=["ES256"],
            audience=audience,
            issuer=issuer,
            leeway=leeway,
            options={"require": ["exp", "iat", "iss", "aud", "sub", "jti"], "verify_exp": now is None},
        )
    except jwt.PyJWTError as error:
        raise InvalidTokenError(str(error)) from error
    if now is not None and claims["exp"] + leeway <= now:
        raise InvalidTokenError("Signature has expired")
    return dict(claims)


@dataclass(frozen=True)
class VerificationResult:
    subject_id: str
    purpose: str
    method: str  # face, email_otp, sms_otp, totp, manual_review
    decision: str  # match, no_match
    verification_id: str | None
    claims: dict[str, Any]

    @property
    def matched(self) -> bool:
        return self.decision == "match"


def verify_result_token(
    token: str,
    keys: Keys,
    *,
    tenant: str,
    issuer: str = DEFAULT_ISSUER,
    subject_id: str | None = None,
    purpose: str | None = None,
    leeway: float = 0.0,
    now: float | None = None,
) -> VerificationResult:
    """A verification result signed by facegate for `tenant` (its audience), not expired; with `subject_id` /
    `purpose` given, for that subject and purpose too."""
    claims = _decode(token, keys, tenant, issuer, leeway, now)
    if claims.get("typ") != "verification-result":
        raise InvalidTokenError("not a verification result")
    if subject_id is not None and claims["sub"] != subject_id:
        raise InvalidTokenError("the result is for another subject")
    if purpose is not None and claims.get("purpose") != purpose:
        raise InvalidTokenError("the result is for another purpose")
    return VerificationResult(
        subject_id=claims["sub"],
        purpose=str(claims.get("purpose")),
        method=str(claims.get("method")),
        decision=str(claims.get("decision")),
        verification_id=claims.get("verification_id"),
        claims=claims,
    )


@dataclass(frozen=True)
class DeviceClaims:
    device_session_id: str
    tenant: str
    subject_id: str
    purpose: str
    operations: tuple[str, ...]
    expires_at: int


def verify_device_token(
    token: str,
    keys: Keys,
    *,
    tenant: str | None = None,
    issuer: str = DEFAULT_ISSUER,
    leeway: float = 0.0,
    now: float | None = None,
) -> DeviceClaims:
    """A device-session token signed by facegate (audience facegate-device), not expired, living at most 10
    minutes; with `tenant` given, minted by that tenant. (Revocation is the service's to check, not offline.)"""
    claims = _decode(token, keys, DEVICE_AUDIENCE, issuer, leeway, now)
    if claims.get("typ") != "device-session":
        raise InvalidTokenError("not a device-session token")
    if claims["exp"] - claims["iat"] > DEVICE_MAX_LIFETIME:
        raise InvalidTokenError("a device session lives at most 10 minutes")
    if tenant is not None and claims.get("tenant") != tenant:
        raise InvalidTokenError("minted by another tenant")
    ops = claims.get("ops")
    if not isinstance(ops, list) or not ops:
        raise InvalidTokenError("no operations")
    return DeviceClaims(
        device_session_id=claims["jti"],
        tenant=str(claims.get("tenant")),
        subject_id=claims["sub"],
        purpose=str(claims.get("purpose")),
        operations=tuple(str(op) for op in ops),
        expires_at=int(claims["exp"]),
    )


def seconds_left(claims: DeviceClaims, now: float | None = None) -> float:
    return claims.expires_at - (time.time() if now is None else now)

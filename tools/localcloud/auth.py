"""API Gateway's JWT authorizer, emulated for real, and Cognito-style client-credentials tokens.

Tokens are RS256 JWTs signed with the local user pool's key (the emulator publishes the public half at
`/<pool id>/.well-known/jwks.json`) and verified against that JWKS: signature, issuer, expiry, audience
(client_id) and the route's scopes, as the HTTP API authorizer does.
"""

from __future__ import annotations

import gzip
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any, Protocol

import jwt

SCOPE_PREFIX = "facegate/"


class AuthError(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def _pool_private_jwk() -> dict[str, Any]:
    """The emulated user pool's signing key (shipped with moto; its public half is the pool's JWKS)."""
    data = resources.files("moto.cognitoidp").joinpath("resources/jwks-private.json.gz").read_bytes()
    return json.loads(gzip.decompress(data))


def issuer_for(region: str, pool_id: str) -> str:
    return f"https://cognito-idp.{region}.amazonaws.com/{pool_id}"


def mint_access_token(
    *, region: str, pool_id: str, client_id: str, scopes: list[str], lifetime_seconds: int = 3600
) -> str:
    """An access token shaped like Cognito's for the client-credentials grant."""
    jwk = _pool_private_jwk()
    key = jwt.PyJWK.from_dict(jwk, algorithm="RS256")
    now = int(time.time())
    claims = {
        "sub": client_id,
        "token_use": "access",
        "scope": " ".join(SCOPE_PREFIX + s for s in scopes),
        "auth_time": now,
        "iss": issuer_for(region, pool_id),
        "exp": now + lifetime_seconds,
        "iat": now,
        "version": 2,
        "jti": str(uuid.uuid4()),
        "client_id": client_id,
    }
    return jwt.encode(claims, key.key, algorithm="RS256", headers={"kid": jwk["kid"]})


class JwksClient(Protocol):
    def get_signing_key_from_jwt(self, token: str) -> jwt.PyJWK: ...


@dataclass
class JwtAuthorizer:
    issuer: str
    audience: list[str]
    jwks: JwksClient

    def authorize(self, authorization: str | None, route_scopes: list[str]) -> tuple[dict[str, Any], list[str]]:
        """Claims and scopes of a valid token, or AuthError(401|403) as API Gateway would answer."""
        if not authorization:
            raise AuthError(401, "missing token")
        token = authorization.removeprefix("Bearer ").strip()
        try:
            key = self.jwks.get_signing_key_from_jwt(token)
            claims = jwt.decode(
                token,
                key.key,
                algorithms=["RS256"],
                issuer=self.issuer,
                options={"require": ["exp", "iat", "iss"], "verify_aud": False},
            )
        except jwt.PyJWTError as error:
            raise AuthError(401, f"invalid token: {error}") from error
        audience = claims.get("aud") or claims.get("client_id")
        if audience not in self.audience:
            raise AuthError(401, "token audience is not allowed")
        scopes = str(claims.get("scope", "")).split()
        if route_scopes and not set(route_scopes) & set(scopes):
            raise AuthError(403, "token lacks the route's scope")
        return claims, scopes


# ---------------------------------------------------------------- Lambda REQUEST authorizers (device sessions)


@dataclass(frozen=True)
class LambdaAuthorizer:
    """An HTTP API Lambda REQUEST authorizer of the template (payload format 2.0, simple responses), as API
    Gateway runs it with caching off: 401 without the identity source (the function is not called), the
    function's `isAuthorized` false → 403, an error or another answer → 500; allowed → its `context` goes to the
    route's function as `requestContext.authorizer.lambda`."""

    name: str
    function: str  # logical id
    identity_headers: tuple[str, ...]

    def authorize(self, event: dict[str, Any], invoke: Callable[[str, dict[str, Any]], Any]) -> dict[str, Any]:
        headers = event.get("headers") or {}
        identity = [headers.get(h.lower()) for h in self.identity_headers]
        if not all(identity):
            raise AuthError(401, "missing identity source")
        request = {
            **{k: v for k, v in event.items() if k not in ("body", "isBase64Encoded")},
            "type": "REQUEST",
            "routeArn": "arn:aws:execute-api:us-east-1:123456789012:local/$default/"
            + str(event["routeKey"]).replace(" ", ""),
            "identitySource": identity,
        }
        try:
            answer = invoke(self.function, request)
        except Exception as error:  # a crashed authorizer: API Gateway answers 500
            raise AuthError(500, f"authorizer failed: {error}") from error
        if not isinstance(answer, dict) or not isinstance(answer.get("isAuthorized"), bool):
            raise AuthError(500, "authorizer answered no simple response")
        if not answer["isAuthorized"]:
            raise AuthError(403, "denied by the authorizer")
        context = answer.get("context") or {}
        return dict(context) if isinstance(context, dict) else {}


def lambda_authorizers(template: dict[str, Any]) -> dict[str, LambdaAuthorizer]:
    """The HTTP API's Lambda authorizers by name (those with a FunctionArn; `!GetAtt Fn.Arn` names the function)."""
    found = {}
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::Serverless::HttpApi":
            continue
        for name, config in resource["Properties"].get("Auth", {}).get("Authorizers", {}).items():
            arn = config.get("FunctionArn")
            if not isinstance(arn, dict) or "Fn::GetAtt" not in arn:
                continue
            if str(config.get("AuthorizerPayloadFormatVersion")) != "2.0" or not config.get("EnableSimpleResponses"):
                raise ValueError(f"authorizer {name}: only payload 2.0 with simple responses is emulated")
            headers = tuple(config.get("Identity", {}).get("Headers", []))
            found[name] = LambdaAuthorizer(name=name, function=arn["Fn::GetAtt"][0], identity_headers=headers)
    return found

"""The resolver every function uses: validation, body limits, problem details, caller context."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.utilities.typing import LambdaContext

from facegate.api import problems
from facegate.core.errors import (
    ForbiddenError,
    InvalidDeviceTokenError,
    PayloadTooLargeError,
    TenantUnknownError,
    UnauthorizedError,
    UnsupportedContentTypeError,
)
from facegate.core.tenancy import CallerContext, DeviceSessionGrant

SCOPE_PREFIX = "facegate/"


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


class FacegateResolver(APIGatewayHttpResolver):
    """Powertools' HTTP API resolver with a body-size limit checked before anything parses the body."""

    def __init__(self, max_body_bytes: int) -> None:
        super().__init__(enable_validation=True, serializer=_json)
        self.max_body_bytes = max_body_bytes

    def resolve(self, event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
        body = event.get("body") or ""
        size = len(body) * 3 // 4 if event.get("isBase64Encoded") else len(body.encode("utf-8"))
        if size > self.max_body_bytes:
            error = PayloadTooLargeError(f"the body may be at most {self.max_body_bytes} bytes")
            return problems.lambda_response(error, str(event.get("rawPath", "")))
        if body and not _is_json(event.get("headers") or {}):
            # Every route takes JSON; Powertools would also parse form and multipart bodies.
            refused = UnsupportedContentTypeError("send the body as application/json")
            return problems.lambda_response(refused, str(event.get("rawPath", "")))
        return super().resolve(event, context)


def _is_json(headers: Mapping[str, Any]) -> bool:
    content_type = next((str(v) for k, v in headers.items() if k.lower() == "content-type"), "")
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type in ("", "application/json") or media_type.endswith("+json")


def create_resolver(max_body_bytes: int) -> FacegateResolver:
    app = FacegateResolver(max_body_bytes)
    problems.install(app)
    return app


def caller(app: APIGatewayHttpResolver, tenant_for_client: Callable[[str], str | None]) -> CallerContext:
    """The verified caller. API Gateway's JWT authorizer has already checked signature, expiry and scope."""
    context = app.current_event.request_context
    authorizer = context.authorizer
    if authorizer and authorizer.get_lambda:
        # A device session on a tenant route: never (the gateway puts the JWT authorizer there; defence in depth).
        raise ForbiddenError("a device session cannot call this route")
    claims = authorizer.jwt_claim if authorizer else None
    if not claims or "client_id" not in claims:
        raise UnauthorizedError()
    client_id = str(claims["client_id"])
    tenant_id = tenant_for_client(client_id)
    if tenant_id is None:
        raise TenantUnknownError()
    scopes = frozenset(
        scope.removeprefix(SCOPE_PREFIX) for scope in (authorizer.jwt_scopes or str(claims.get("scope", "")).split())
    )
    return CallerContext(tenant_id=tenant_id, client_id=client_id, scopes=scopes, request_id=context.request_id)


def device_caller(app: APIGatewayHttpResolver) -> CallerContext:
    """The device caller of a /v1/device/... route: the grant the Lambda authorizer verified (signature, expiry,
    revocation, the route's operation) and passed as its context. The device has no tenant scope at all."""
    context = app.current_event.request_context
    authorizer = context.authorizer
    granted = authorizer.get_lambda if authorizer else {}
    try:
        grant = DeviceSessionGrant(
            session_id=str(granted["device_session_id"]),
            tenant_id=str(granted["tenant"]),
            subject_id=str(granted["subject_id"]),
            purpose=str(granted["purpose"]),
            operations=frozenset(str(granted["operations"]).split()),
            expires_at=int(granted["expires_at"]),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise InvalidDeviceTokenError() from error
    return CallerContext(
        tenant_id=grant.tenant_id,
        client_id=f"device:{grant.session_id}",
        scopes=frozenset(),
        request_id=context.request_id,
        device_session=grant,
    )


def require_scope(caller: CallerContext, scope: str) -> None:
    """Defence in depth: the authorizer checks route scopes; services that matter check again."""
    if scope not in caller.scopes:
        raise ForbiddenError(f"the token lacks the '{scope}' scope")

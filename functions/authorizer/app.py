"""Device-session authorizer: API Gateway's Lambda REQUEST authorizer (payload 2.0, simple responses) on the
/v1/device/... routes. Result caching is off, so a revoked session is refused on its next request.

Thin adapter: the bearer token and the route key in, one service call, allow (with the grant as the context the
handlers read through facegate.api.resolver.device_caller) or deny (API Gateway answers 403).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from facegate.api.handler import lambda_entry
from facegate.core.errors import FacegateError
from facegate.core.observability import count, logger
from facegate.wiring import container


def _bearer(headers: dict[str, Any]) -> str | None:
    value = next((str(v) for k, v in (headers or {}).items() if k.lower() == "authorization"), "")
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


@lambda_entry()
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    route_key = str(event.get("routeKey", ""))
    try:
        grant = container().devices.authorize(_bearer(event.get("headers") or {}), route_key)
    except FacegateError as refused:
        logger.info("device session denied", code=refused.code, route=route_key)
        count("DeviceSessionDenied")
        return {"isAuthorized": False}
    return {
        "isAuthorized": True,
        "context": {
            "device_session_id": grant.session_id,
            "tenant": grant.tenant_id,
            "subject_id": grant.subject_id,
            "purpose": grant.purpose,
            "operations": " ".join(sorted(grant.operations)),
            "expires_at": grant.expires_at,
        },
    }

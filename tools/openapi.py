"""Generate the one OpenAPI document of the facegate API from the functions' own routes and models.

Every function's Powertools resolver describes its routes and their success answers (`responses=`);
this merges them, adds the bearer-token security scheme with the scopes template.yaml requires per
route, documents the errors every route can answer (RFC 9457 problem+json from the service, or API
Gateway's own `{"message": ...}` for what it refuses before any function runs), and writes
layers/shared/facegate/openapi.json, which `GET /v1/openapi.json` serves. A test fails when the
committed document and the code drift apart: rerun `make openapi`. `make fuzz` checks the running
local cloud against it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
OUTPUT = REPO / "layers" / "shared" / "facegate" / "openapi.json"
FUNCTIONS = ("consent", "embedding", "matching", "fallback", "deletion")
PLACEHOLDER_ENV = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "TENANTS_TABLE": "tenants",
    "CONSENTS_TABLE": "consents",
    "AUDIT_TABLE": "audit",
    "IDEMPOTENCY_TABLE": "idempotency",
    "SIGNING_KEY_ID": "signing-key",
    "PEPPER_SECRET_ARN": "pepper",
    "EVENT_BUS_NAME": "bus",
    "POWERTOOLS_TRACE_DISABLED": "true",
}


def _app(function: str) -> Any:
    path = REPO / "functions" / function / "app.py"
    spec = importlib.util.spec_from_file_location(f"openapi_{function}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.app


def route_scopes() -> dict[tuple[str, str], list[str]]:
    sys.path.insert(0, str(REPO / "tools"))
    from localcloud.gateway import routes_from
    from localcloud.template import load_template

    return {(r.method.lower(), r.path): list(r.scopes) for r in routes_from(load_template())}


def device_routes() -> list[tuple[str, str]]:
    """(path, method) of the routes behind a Lambda authorizer (device sessions)."""
    sys.path.insert(0, str(REPO / "tools"))
    from localcloud.auth import lambda_authorizers
    from localcloud.gateway import routes_from
    from localcloud.template import load_template

    template = load_template()
    named = lambda_authorizers(template)
    return [(r.path, r.method.lower()) for r in routes_from(template) if r.authorizer in named]


GATEWAY_MESSAGE = {
    "title": "GatewayMessage",
    "description": "API Gateway's own answer, given before any function runs (for example 401 for a missing "
    "or invalid token, 403 for a missing scope, 404 for no such route, 413 for a body over 10 MB)",
    "type": "object",
    "properties": {"message": {"type": "string"}},
    "required": ["message"],
    "additionalProperties": False,
}
POWERTOOLS_ERROR_SCHEMAS = ("HTTPValidationError", "ValidationError", "ResponseValidationError")


def _error_responses(operation: dict[str, Any]) -> dict[str, Any]:
    """A route's error answers: the service's problem documents and API Gateway's own messages."""
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    either = {**problem, "application/json": {"schema": {"$ref": "#/components/schemas/GatewayMessage"}}}
    responses: dict[str, Any] = {}
    if operation.get("security"):
        responses["401"] = {"description": "No valid bearer token", "content": either}
        responses["403"] = {"description": "The token lacks the route's scope, or the client is no tenant"}
        responses["403"]["content"] = either
    if operation.get("parameters") or operation.get("requestBody"):
        responses["422"] = {"description": "The request does not match the schema (invalid_request)"}
        responses["422"]["content"] = problem
    responses["default"] = {"description": "An error: a problem document with a stable code", "content": either}
    return responses


def document_errors(document: dict[str, Any]) -> None:
    """Replace Powertools' FastAPI-style 422 with problem+json and document the other errors."""
    from facegate.api.problems import ProblemDetails

    schemas = document["components"]["schemas"]
    problem = ProblemDetails.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(problem.pop("$defs", {}))
    schemas["Problem"] = problem
    schemas["GatewayMessage"] = GATEWAY_MESSAGE
    for operations in document["paths"].values():
        for operation in operations.values():
            responses = operation["responses"]
            responses.pop("422", None)
            responses.update(_error_responses(operation))
    for name in POWERTOOLS_ERROR_SCHEMAS:
        schemas.pop(name, None)


def generate() -> dict[str, Any]:
    for key, value in PLACEHOLDER_ENV.items():
        os.environ.setdefault(key, value)
    from facegate import __version__

    document: dict[str, Any] = {}
    for function in FUNCTIONS:
        schema = _app(function).get_openapi_schema(title="facegate", version=__version__)
        part = json.loads(schema.model_dump_json(by_alias=True, exclude_none=True))
        if not document:
            document = {**part, "paths": {}, "components": {"schemas": {}}}
        document["paths"].update(part.get("paths", {}))
        document["components"]["schemas"].update(part.get("components", {}).get("schemas", {}))
    document["info"]["description"] = (
        "Consent-first face verification. Errors are RFC 9457 problem details (application/problem+json) "
        "with a stable `code`. Tokens: Cognito client-credentials access tokens; scopes facegate/<name>."
    )
    scopes = route_scopes()
    document["components"]["securitySchemes"] = {
        "tenantToken": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    }
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            needed = scopes.get((method, path))
            if needed:
                operation["security"] = [{"tenantToken": needed}]
    # Device sessions (issue 15): the /v1/device/... routes take a device-session token, checked by the template's
    # Lambda authorizer (functions/authorizer), not a tenant token.
    document["components"]["securitySchemes"]["deviceToken"] = {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "A device-session token from POST /v1/device-sessions (ES256, aud facegate-device)",
    }
    for path, method in device_routes():
        if path in document["paths"] and method in document["paths"][path]:
            document["paths"][path][method]["security"] = [{"deviceToken": []}]
    for operations in document["paths"].values():
        for operation in operations.values():
            operation["responses"].get("204", {}).pop("content", None)  # 204 No Content has no body
    document_errors(document)
    document["paths"] = dict(sorted(document["paths"].items()))
    document["components"]["schemas"] = dict(sorted(document["components"]["schemas"].items()))
    return document


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=1, sort_keys=False, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    OUTPUT.write_text(render(generate()), encoding="utf-8")
    print(f"wrote {OUTPUT.relative_to(REPO)}")

"""template.yaml's HTTP routes, served by invoking the real handlers with API Gateway v2 events."""

from __future__ import annotations

import base64
import os
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qsl

from localcloud.auth import AuthError, JwtAuthorizer, LambdaAuthorizer, lambda_authorizers
from localcloud.pool import FunctionSpec, Invocation, LambdaContext, Pools, load_handler_module
from localcloud.provision import Stack
from localcloud.template import REPO_ROOT

__all__ = ["Gateway", "HttpResponse", "LambdaContext", "Route", "build_event", "routes_from", "to_http"]

MAX_PAYLOAD_BYTES = 10 * 1024 * 1024  # the HTTP API's own limit


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    function: str  # logical id
    scopes: tuple[str, ...]
    public: bool
    pattern: re.Pattern[str] = field(compare=False)
    authorizer: str | None = None  # the template's authorizer name when the route names one (else the default)

    @property
    def route_key(self) -> str:
        return f"{self.method} {self.path}"


def _pattern(path: str) -> re.Pattern[str]:
    regex = re.sub(r"\\\{([A-Za-z0-9_]+)\\\+\\\}", r"(?P<\1>.+)", re.escape(path))
    regex = re.sub(r"\\\{([A-Za-z0-9_]+)\\\}", r"(?P<\1>[^/]+)", regex)
    return re.compile(f"^{regex}$")


def routes_from(template: dict[str, Any]) -> list[Route]:
    found = []
    for logical, resource in template["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        for event in resource["Properties"].get("Events", {}).values():
            if event["Type"] != "HttpApi":
                continue
            props = event["Properties"]
            auth = props.get("Auth", {})
            found.append(
                Route(
                    method=props["Method"].upper(),
                    path=props["Path"],
                    function=logical,
                    scopes=tuple(auth.get("AuthorizationScopes", [])),
                    public=auth.get("Authorizer") == "NONE",
                    pattern=_pattern(props["Path"]),
                    authorizer=auth.get("Authorizer") if auth.get("Authorizer") != "NONE" else None,
                )
            )
    # Like API Gateway: the most specific route wins (fewer path variables first).
    return sorted(found, key=lambda r: (r.path.count("{"), -len(r.path)))


@dataclass
class HttpResponse:
    status: int
    headers: dict[str, str]
    body: bytes


def _gateway_error(status: int, message: str) -> HttpResponse:
    return HttpResponse(status, {"content-type": "application/json"}, f'{{"message":"{message}"}}'.encode())


class Gateway:
    """Routes requests to the handlers, after the JWT authorizer.

    With `instances` > 0 each function runs in a pool of that many worker processes (localcloud.pool),
    so concurrent requests run in parallel as on Lambda; every answer then names the instance that
    served it (`x-localcloud-instance`, `x-localcloud-pid`) and the invocation's interval on the
    gateway's monotonic clock (`x-localcloud-invocation`: start and end in ns). With 0 (the in-process
    tests) the handlers are imported into this process and each function serves one invocation at a time.
    """

    def __init__(self, stack: Stack, authorizer: JwtAuthorizer, instances: int = 0) -> None:
        self.stack = stack
        self.authorizer = authorizer
        self.routes = routes_from(stack.template)
        self._modules: dict[str, ModuleType] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._globals = stack.template.get("Globals", {}).get("Function", {})
        self.pools: Pools | None = None
        self.lambda_authorizers: dict[str, LambdaAuthorizer] = lambda_authorizers(stack.template)
        if instances > 0:
            functions = [
                logical
                for logical, resource in stack.template["Resources"].items()
                if resource["Type"] == "AWS::Serverless::Function"
            ]
            self.pools = Pools({logical: self.function_spec(logical) for logical in functions}, instances)

    def function_spec(self, logical: str) -> FunctionSpec:
        props = self.stack.template["Resources"][logical]["Properties"]
        return FunctionSpec(
            logical=logical,
            code_path=str(REPO_ROOT / props["CodeUri"] / "app.py"),
            module_name=f"facegate_function_{Path(props['CodeUri']).name}",
            environment={**os.environ, **self.stack.function_environment(logical)},
            memory_mb=int(props.get("MemorySize", self._globals.get("MemorySize", 128))),
            timeout_s=int(props.get("Timeout", self._globals.get("Timeout", 3))),
        )

    def handler_module(self, logical: str) -> ModuleType:
        """Import functions/<name>/app.py into this process (the in-process mode)."""
        if logical not in self._modules:
            spec = self.function_spec(logical)
            os.environ.update(self.stack.function_environment(logical))
            self._modules[logical] = load_handler_module(spec.code_path, spec.module_name)
            self._locks[logical] = threading.Lock()
        return self._modules[logical]

    def invoke(self, logical: str, event: dict[str, Any]) -> Any:
        return self.invoke_recorded(logical, event)[0]

    def invoke_recorded(self, logical: str, event: dict[str, Any]) -> tuple[Any, Invocation | None]:
        """The handler's answer and, in pool mode, which instance gave it and when."""
        if self.pools is not None:
            return self.pools.invoke(logical, event)
        module = self.handler_module(logical)
        spec = self.function_spec(logical)
        context = LambdaContext(spec.function_name, spec.memory_mb, spec.timeout_s)
        with self._locks[logical]:
            return module.lambda_handler(event, context), None

    def close(self) -> None:
        if self.pools is not None:
            self.pools.close()

    def handle(self, method: str, raw_path: str, raw_query: str, headers: dict[str, str], body: bytes) -> HttpResponse:
        headers = {k.lower(): v for k, v in headers.items()}
        if len(body) > MAX_PAYLOAD_BYTES:
            return _gateway_error(413, "Request Entity Too Large")
        for route in self.routes:
            match = route.pattern.match(raw_path)
            if match and route.method in (method, "ANY"):
                break
        else:
            return _gateway_error(404, "Not Found")
        jwt_context = None
        lambda_authorizer = self.lambda_authorizers.get(route.authorizer or "")
        if lambda_authorizer is not None:
            # A Lambda REQUEST authorizer (device sessions): invoked like API Gateway does, its context handed on.
            event = build_event(route, match.groupdict(), method, raw_path, raw_query, headers, body, None)
            try:
                context = lambda_authorizer.authorize(event, self.invoke)
            except AuthError as error:
                message = {401: "Unauthorized", 403: "Forbidden"}.get(error.status, "Internal Server Error")
                return _gateway_error(error.status, message)
            event["requestContext"]["authorizer"] = {"lambda": context}
            return self._respond(route, event)
        if not route.public:
            try:
                claims, scopes = self.authorizer.authorize(headers.get("authorization"), list(route.scopes))
            except AuthError as error:
                return _gateway_error(error.status, "Unauthorized" if error.status == 401 else "Forbidden")
            jwt_context = {"claims": {k: str(v) for k, v in claims.items()}, "scopes": scopes}
        event = build_event(route, match.groupdict(), method, raw_path, raw_query, headers, body, jwt_context)
        return self._respond(route, event)

    def _respond(self, route: Route, event: dict[str, Any]) -> HttpResponse:
        result, invocation = self.invoke_recorded(route.function, event)
        response = to_http(result)
        if invocation is not None:
            response.headers["x-localcloud-instance"] = invocation.instance
            response.headers["x-localcloud-pid"] = str(invocation.pid)
            response.headers["x-localcloud-invocation"] = f"{invocation.started_ns} {invocation.finished_ns}"
        return response


def build_event(
    route: Route,
    path_parameters: dict[str, str],
    method: str,
    raw_path: str,
    raw_query: str,
    headers: dict[str, str],
    body: bytes,
    jwt_context: dict[str, Any] | None,
) -> dict[str, Any]:
    """An API Gateway HTTP API payload format 2.0 event."""
    now = time.time()
    query: dict[str, str] = {}
    for key, value in parse_qsl(raw_query, keep_blank_values=True):
        query[key] = f"{query[key]},{value}" if key in query else value
    is_text = not body or headers.get("content-type", "").startswith(("application/json", "text/"))
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route.route_key,
        "rawPath": raw_path,
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": headers.get("host", "127.0.0.1"),
            "domainPrefix": "local",
            "http": {
                "method": method,
                "path": raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": route.route_key,
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": not is_text,
    }
    if query:
        event["queryStringParameters"] = query
    if path_parameters:
        event["pathParameters"] = path_parameters
    if jwt_context is not None:
        event["requestContext"]["authorizer"] = {"jwt": jwt_context}
    if body:
        event["body"] = body.decode("utf-8", errors="replace") if is_text else base64.b64encode(body).decode()
    return event


def to_http(result: Any) -> HttpResponse:
    """Payload format 2.0 response mapping, as the HTTP API applies it."""
    if not isinstance(result, dict) or "statusCode" not in result:
        import json

        return HttpResponse(200, {"content-type": "application/json"}, json.dumps(result).encode())
    headers = {k.lower(): str(v) for k, v in (result.get("headers") or {}).items()}
    for key, values in (result.get("multiValueHeaders") or {}).items():
        headers[key.lower()] = ",".join(str(v) for v in values)
    raw = result.get("body") or ""
    body = base64.b64decode(raw) if result.get("isBase64Encoded") else str(raw).encode("utf-8")
    return HttpResponse(int(result["statusCode"]), headers, body)

"""The local cloud's emulation of an HTTP API Lambda REQUEST authorizer (payload 2.0, simple responses), as API
Gateway runs one with caching off: read from template.yaml, 401 without the identity source (the function is never
called), 403 on a denial, 500 when the function fails or answers something else, its context handed on."""

from __future__ import annotations

from typing import Any

import pytest

from localcloud.auth import AuthError, LambdaAuthorizer, lambda_authorizers
from localcloud.template import load_template

pytestmark = pytest.mark.unit

EVENT = {
    "version": "2.0",
    "routeKey": "GET /v1/device/session",
    "rawPath": "/v1/device/session",
    "headers": {"authorization": "Bearer abc"},
    "requestContext": {"requestId": "r1"},
    "body": "{}",
    "isBase64Encoded": False,
}


def authorizer() -> LambdaAuthorizer:
    return lambda_authorizers(load_template())["DeviceSession"]


def test_the_template_names_the_device_session_authorizer_function_and_its_identity_source() -> None:
    found = authorizer()
    assert found.function == "AuthorizerFunction" and found.identity_headers == ("Authorization",)


def test_allowed_hands_on_the_context_and_the_function_sees_a_request_event() -> None:
    seen: list[tuple[str, dict[str, Any]]] = []

    def invoke(function: str, event: dict[str, Any]) -> Any:
        seen.append((function, event))
        return {"isAuthorized": True, "context": {"tenant": "demo"}}

    assert authorizer().authorize(EVENT, invoke) == {"tenant": "demo"}
    function, event = seen[0]
    assert function == "AuthorizerFunction" and event["type"] == "REQUEST"
    assert event["identitySource"] == ["Bearer abc"] and event["routeKey"] == "GET /v1/device/session"
    assert "body" not in event  # API Gateway sends an authorizer no body


def test_no_identity_source_is_401_without_calling_the_function() -> None:
    def invoke(function: str, event: dict[str, Any]) -> Any:
        raise AssertionError("called")

    with pytest.raises(AuthError) as refused:
        authorizer().authorize({**EVENT, "headers": {}}, invoke)
    assert refused.value.status == 401


@pytest.mark.parametrize(
    ("answer", "status"),
    [({"isAuthorized": False}, 403), ({"allow": True}, 500), ("yes", 500), ({"isAuthorized": "true"}, 500)],
)
def test_denied_is_403_and_anything_else_500(answer: Any, status: int) -> None:
    with pytest.raises(AuthError) as refused:
        authorizer().authorize(EVENT, lambda function, event: answer)
    assert refused.value.status == status


def test_a_crashed_authorizer_is_500() -> None:
    def invoke(function: str, event: dict[str, Any]) -> Any:
        raise RuntimeError("boom")

    with pytest.raises(AuthError) as refused:
        authorizer().authorize(EVENT, invoke)
    assert refused.value.status == 500


def test_only_payload_2_with_simple_responses_is_emulated() -> None:
    template = load_template()
    config = template["Resources"]["Api"]["Properties"]["Auth"]["Authorizers"]["DeviceSession"]
    config["EnableSimpleResponses"] = False
    with pytest.raises(ValueError, match="simple responses"):
        lambda_authorizers(template)

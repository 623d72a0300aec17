"""The answers match the OpenAPI document that /v1/openapi.json serves (hardening item 10).

`make fuzz` checks this with schemathesis against a running local cloud; these are its findings, fixed
and pinned down as fast, deterministic cases: every status an operation answers is documented for it,
with the content type and body schema the document gives (problem+json for the service's errors, API
Gateway's `{"message"}` for what the authorizer refuses), and a body that is not JSON is refused with
415 instead of a 500 or, for form and multipart bodies, being parsed as if it were JSON.
"""

from __future__ import annotations

import json
import re
from importlib import resources
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from tests.integration.conftest import Api, Reply, all_items
from tests.integration.test_consent_api import consent_body, current_notice

pytestmark = pytest.mark.integration

DOCUMENT = json.loads((resources.files("facegate") / "openapi.json").read_text(encoding="utf-8"))


def operation_for(method: str, path: str) -> dict[str, Any]:
    path = path.partition("?")[0]
    for template, operations in DOCUMENT["paths"].items():
        pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, path) and method.lower() in operations:
            return operations[method.lower()]
    raise AssertionError(f"{method} {path} is not in the document")


def assert_documented(method: str, path: str, reply: Reply) -> None:
    """The status is documented for the operation (or falls under `default`), and so are the content type
    and the body's schema."""
    responses = operation_for(method, path)["responses"]
    documented = responses.get(str(reply.status))
    if documented is None:
        assert not str(reply.status).startswith("2"), f"{method} {path}: success {reply.status} not documented"
        documented = responses["default"]
    media_type = reply.headers["content-type"].split(";")[0].strip()
    assert media_type in documented["content"], f"{method} {path} {reply.status}: {media_type} not documented"
    schema = {**documented["content"][media_type]["schema"], "components": DOCUMENT["components"]}
    errors = [e.message for e in Draft202012Validator(schema).iter_errors(reply.json)]
    assert errors == [], f"{method} {path} {reply.status}: {errors}"


def test_success_answers_are_documented_with_their_status_and_schema(api: Api, subject_id: str) -> None:
    notice = current_notice(api)
    calls: list[tuple[str, str, Any, int]] = [
        ("GET", "/v1/notices/checkout?locale=en", None, 200),
        ("POST", f"/v1/subjects/{subject_id}/consents", consent_body(notice), 201),
        ("GET", f"/v1/subjects/{subject_id}/consents", None, 200),
        ("GET", f"/v1/subjects/{subject_id}/consents/history", None, 200),
        ("POST", "/v1/probes", {"content_type": "image/png"}, 201),
        ("POST", f"/v1/subjects/{subject_id}/enrolments", {"purpose": "checkout"}, 202),
        ("DELETE", f"/v1/subjects/{subject_id}/consents/checkout", None, 200),
        ("DELETE", f"/v1/subjects/{subject_id}", None, 202),
        ("GET", "/v1/health", None, 200),
    ]
    for method, path, body, status in calls:
        reply = api.call(method, path, body)
        assert reply.status == status, (method, path, reply.body)
        assert_documented(method, path, reply)


def test_error_answers_are_documented_problems_or_gateway_messages(api: Api, subject_id: str) -> None:
    from localcloud.seed import SCOPES

    no_delete = api.cloud.token("demo", tuple(s for s in SCOPES if s != "delete"))
    cases: list[tuple[str, str, dict[str, Any], int, str]] = [
        ("POST", "/v1/probes", {"body": {"content_type": "image/gif"}}, 422, "invalid_request"),
        ("GET", "/v1/deletions/" + "0" * 32, {}, 404, "deletion_not_found"),
        ("GET", f"/v1/subjects/{subject_id}/consents", {"tenant": None}, 401, ""),
        ("DELETE", f"/v1/subjects/{subject_id}", {"token": no_delete}, 403, ""),
        ("GET", "/v1/proctoring/sessions/" + "0" * 32, {}, 404, "proctoring_session_not_found"),
        ("POST", "/v1/probes", {"raw": b'{"content_type": "image/png"', "body": None}, 400, "malformed_json"),
    ]
    for method, path, options, status, code in cases:
        reply = api.call(method, path, options.pop("body", None), **options)
        assert reply.status == status, (method, path, reply.body)
        assert_documented(method, path, reply)
        if code:
            assert reply.headers["content-type"] == "application/problem+json"
            assert reply.json["code"] == code
        else:
            assert set(reply.json) == {"message"}  # the authorizer's answer, before any function runs


@pytest.mark.parametrize(
    ("content_type", "raw"),
    [
        ("text/plain", b'{"content_type": "image/png"}'),  # was 500 internal_error
        ("application/x-www-form-urlencoded", b"content_type=image/png"),  # was parsed as the body
        (
            "multipart/form-data; boundary=x",
            b'--x\r\nContent-Disposition: form-data; name="content_type"\r\n\r\nimage/png\r\n--x--\r\n',
        ),  # was 201: a probe upload started from a form
    ],
)
def test_a_body_that_is_not_json_is_refused_with_415(api: Api, content_type: str, raw: bytes) -> None:
    reply = api.call("POST", "/v1/probes", raw=raw, headers={"content-type": content_type})
    assert reply.status == 415, reply.body
    assert reply.headers["content-type"] == "application/problem+json"
    assert reply.json["code"] == "unsupported_content_type"
    assert_documented("POST", "/v1/probes", reply)


def test_a_consent_sent_as_a_form_is_refused_and_records_nothing(api: Api, aws: Any, subject_id: str) -> None:
    notice = current_notice(api)
    before = all_items(aws, api.cloud)
    form = "&".join(f"{k}={v}" for k, v in consent_body(notice).items())
    reply = api.call(
        "POST",
        f"/v1/subjects/{subject_id}/consents",
        raw=form.encode(),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert reply.status == 415 and reply.json["code"] == "unsupported_content_type"
    assert all_items(aws, api.cloud)["ConsentsTable"] == before["ConsentsTable"]

"""Device sessions over HTTP on the local cloud as `make run` starts it: the gateway calls the Lambda authorizer
(functions/authorizer, in its own worker processes) before every /v1/device/... route, as API Gateway does.
The negative cases of issue 15: expired, another subject, another operation, replayed after revocation, and forged
or foreign tokens; a device token reaches no tenant route (admin, identification, deletion)."""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from localcloud.process import RunningCloud, running

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def cloud() -> Iterator[RunningCloud]:
    with running(instances=1) as local:
        yield local


@pytest.fixture(scope="module")
def tenant(cloud: RunningCloud) -> str:
    return cloud.token("demo")


def call(cloud: RunningCloud, method: str, path: str, token: str | None, body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(cloud.base + path, data=data, method=method)
    request.add_header("content-type", "application/json")
    if token is not None:
        request.add_header("authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def mint(cloud: RunningCloud, tenant: str, subject: str, ops: list[str], ttl: int = 300) -> dict[str, Any]:
    body = {"subject_id": subject, "purpose": "checkout", "operations": ops, "ttl_seconds": ttl}
    status, minted = call(cloud, "POST", "/v1/device-sessions", tenant, body)
    assert status == 201, minted
    return minted


def subject() -> str:
    return f"e2e-dev-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def short_lived(cloud: RunningCloud, tenant: str) -> dict[str, Any]:
    """A 60 s session minted when the module starts; the expiry test runs last and waits only for what is left."""
    return mint(cloud, tenant, subject(), ["notice"], ttl=60)


def test_device_flow_and_refusals(cloud: RunningCloud, tenant: str, short_lived: dict[str, Any]) -> None:
    person = subject()
    token = mint(cloud, tenant, person, ["notice", "consent"])["token"]
    assert call(cloud, "GET", "/v1/device/notice?locale=en", short_lived["token"])[0] == 200

    status, notice = call(cloud, "GET", "/v1/device/notice?locale=en", token)
    assert status == 200 and notice["purpose"] == "checkout"
    body = {
        "notice_version": notice["version"],
        "notice_sha256": notice["sha256"],
        "decision": "granted",
        "locale": "en",
        "age_band": "adult",
    }
    status, record = call(cloud, "POST", "/v1/device/consents", token, body)
    assert status == 201 and record["subject_id"] == person, record

    # Another subject: the body cannot name one (422), and the tenant routes refuse the device token (401)
    other = subject()
    status, problem = call(cloud, "POST", "/v1/device/consents", token, {**body, "subject_id": other})
    assert status == 422 and problem["code"] == "invalid_request"
    assert call(cloud, "GET", f"/v1/subjects/{other}/consents", token)[0] == 401
    assert call(cloud, "GET", f"/v1/subjects/{other}/consents", tenant)[1]["consents"] == []

    # Another operation: refused by the authorizer (403), nothing happens
    assert call(cloud, "POST", "/v1/device/verifications", token, {"image": "AAAA"})[0] == 403
    assert call(cloud, "POST", "/v1/device/liveness/sessions", token, {})[0] == 403

    # No admin, no identification, no deletion, no minting with a device token
    for method, path, payload in [
        ("PUT", "/v1/purposes/checkout", {"identification_enabled": True}),
        ("GET", "/v1/compliance/report", None),
        ("POST", "/v1/identifications", {"purpose": "checkout", "image": "AAAA"}),
        ("DELETE", f"/v1/subjects/{person}", None),
        ("POST", "/v1/device-sessions", {"subject_id": other, "purpose": "checkout", "operations": ["verify"]}),
    ]:
        assert call(cloud, method, path, token, payload) == (401, {"message": "Unauthorized"}), path


def test_replayed_after_revocation(cloud: RunningCloud, tenant: str) -> None:
    minted = mint(cloud, tenant, subject(), ["notice"])
    assert call(cloud, "GET", "/v1/device/session", minted["token"])[0] == 200
    assert call(cloud, "DELETE", f"/v1/device-sessions/{minted['device_session_id']}", tenant)[0] == 204
    assert call(cloud, "GET", "/v1/device/session", minted["token"]) == (403, {"message": "Forbidden"})
    assert call(cloud, "DELETE", f"/v1/device-sessions/{minted['device_session_id']}", tenant)[0] == 204


def test_forged_and_foreign_tokens(cloud: RunningCloud, tenant: str) -> None:
    token = mint(cloud, tenant, subject(), ["notice"])["token"]
    head, body, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    forged = base64.urlsafe_b64encode(json.dumps({**claims, "sub": "victim"}).encode()).rstrip(b"=").decode()
    for bad in [f"{head}.{forged}.{signature}", "garbage", tenant, cloud.token("other")]:
        assert call(cloud, "GET", "/v1/device/session", bad) == (403, {"message": "Forbidden"})
    assert call(cloud, "GET", "/v1/device/session", None) == (401, {"message": "Unauthorized"})


def test_expired_zz(cloud: RunningCloud, short_lived: dict[str, Any]) -> None:
    """Last in the module: the 60 s session minted at its start has expired by the time this asks."""
    expires = json.loads(base64.urlsafe_b64decode(short_lived["token"].split(".")[1] + "=="))["exp"]
    time.sleep(max(0.0, expires - time.time() + 1))
    assert call(cloud, "GET", "/v1/device/notice", short_lived["token"]) == (403, {"message": "Forbidden"})

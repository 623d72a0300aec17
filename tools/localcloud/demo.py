"""The demo checkout page at /demo/ (`make run`), and the tiny "tenant backend" it needs.

The page (sdk/js/demo, built into sdk/js/dist/demo by `npm run build`) is a shop's checkout that uses the
TypeScript SDK. Like a real integration, it never holds tenant credentials: it asks this backend, which
holds the demo tenant's token, for a device session (POST /v1/device-sessions over HTTP, as any tenant
backend would call the API) and for a verification session carrying the shopper's e-mail address (the non-face
alternative). The backend also checks the signed result against /v1/keys, as the shop must before it ships.

Routes (all under /demo/; everything else still goes to the API gateway):
  GET  /demo/...                          the built page's files
  POST /demo/backend/device-session       {subject_id?, email?, locale?} -> the device session and a
                                          verification session (its id offers the e-mail code)
  POST /demo/backend/exam-session         {subject_id?} -> a device session of the purpose exam_proctoring with the
                                          operation proctoring (the exam view, /demo/?view=exam) and the exam id
  POST /demo/backend/result               {result_token} -> {valid, claims} (signature checked with /v1/keys; the
                                          exam's report_token too)
  GET  /demo/backend/outbox               the local outbox's newest e-mails (a person trying the page reads the code)
"""

from __future__ import annotations

import json
import mimetypes
import re
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt

from localcloud.template import REPO_ROOT

DIST = REPO_ROOT / "sdk" / "js" / "dist" / "demo"
PURPOSE = "checkout"
OPERATIONS = ["notice", "consent", "liveness", "verify", "enrol"]
SUBJECT = re.compile(r"^[A-Za-z0-9._:@\-]{1,128}$")
DEFAULT_SUBJECT = "shopper-0001"
# The exam view (/demo/?view=exam): an exam platform's backend minting a device session for a candidate's sitting.
EXAM_PURPOSE = "exam_proctoring"
EXAM_OPERATIONS = ["notice", "consent", "liveness", "proctoring"]
EXAM_ID = "demo-exam-2026"
DEFAULT_CANDIDATE = "candidate-0001"
DEFAULT_EMAIL = "shopper@example.com"
NOT_BUILT = (
    "<!doctype html><meta charset=utf-8><title>facegate demo</title>"
    "<p>The demo page is not built. It needs Node.js: run <code>make sdk-js</code> (or "
    "<code>cd sdk/js &amp;&amp; npm ci &amp;&amp; npm run build</code>) and reload.</p>"
)


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes


def _json(status: int, value: Any) -> Reply:
    return Reply(status, {"content-type": "application/json", "cache-control": "no-store"}, json.dumps(value).encode())


class DemoBackend:
    """`api` is the API's base URL (http://127.0.0.1:PORT); `tenant_token()` a bearer token of the demo tenant."""

    def __init__(self, api: str, tenant_token: Callable[[], str], outbox: Callable[[], list[dict[str, str]]]) -> None:
        self.api = api.rstrip("/")
        self.tenant_token = tenant_token
        self.outbox = outbox

    def handles(self, path: str) -> bool:
        return path == "/demo" or path.startswith("/demo/")

    def handle(self, method: str, path: str, body: bytes) -> Reply:
        if path == "/demo":
            return Reply(301, {"location": "/demo/"}, b"")
        if path.startswith("/demo/backend/"):
            try:
                data = json.loads(body or b"{}") if method == "POST" else {}
                if not isinstance(data, dict):
                    raise ValueError("a JSON object is expected")
            except ValueError as error:
                return _json(400, {"code": "invalid_request", "detail": str(error)})
            route = (method, path.removeprefix("/demo/backend/"))
            if route == ("POST", "device-session"):
                return self.device_session(data)
            if route == ("POST", "exam-session"):
                return self.exam_session(data)
            if route == ("POST", "result"):
                return self.result(data)
            if route == ("GET", "outbox"):
                return _json(200, {"emails": self.outbox()})
            return _json(404, {"code": "route_not_found", "detail": f"{method} {path}"})
        if method not in ("GET", "HEAD"):
            return _json(405, {"code": "method_not_allowed"})
        return self.static(path.removeprefix("/demo/"))

    def static(self, relative: str) -> Reply:
        if not DIST.is_dir():
            return Reply(503, {"content-type": "text/html; charset=utf-8"}, NOT_BUILT.encode())
        target = (DIST / (relative or "index.html")).resolve()
        if not target.is_relative_to(DIST.resolve()) or not target.is_file():
            return Reply(404, {"content-type": "text/plain"}, b"not found")
        kind = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        cache = "no-cache" if target.name == "index.html" else "public, max-age=3600"
        return Reply(200, {"content-type": kind, "cache-control": cache}, target.read_bytes())

    def _call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        request = urllib.request.Request(
            self.api + path, data=None if body is None else json.dumps(body).encode(), method=method
        )
        request.add_header("authorization", f"Bearer {self.tenant_token()}")
        request.add_header("content-type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # the local API only
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def device_session(self, data: dict[str, Any]) -> Reply:
        """What a shop's backend does when a signed-in shopper reaches the checkout: mint a device session for
        this person, and open a verification session that offers the non-face alternative (their e-mail)."""
        subject = str(data.get("subject_id") or DEFAULT_SUBJECT)
        email = str(data.get("email") or DEFAULT_EMAIL)
        locale = "zh-CN" if data.get("locale") == "zh-CN" else "en"
        if not SUBJECT.match(subject):
            return _json(400, {"code": "invalid_request", "detail": "subject_id"})
        status, minted = self._call(
            "POST",
            "/v1/device-sessions",
            {"subject_id": subject, "purpose": PURPOSE, "operations": OPERATIONS, "ttl_seconds": 600},
        )
        if status != 201:
            return _json(status, minted)
        status, session = self._call(
            "POST",
            "/v1/verification-sessions",
            {"subject_id": subject, "purpose": PURPOSE, "email": email, "locale": locale},
        )
        if status != 201:
            return _json(status, session)
        return _json(201, {**minted, "api": "", "verification_session": session})

    def exam_session(self, data: dict[str, Any]) -> Reply:
        """What an exam platform's backend does when a signed-in candidate opens the exam: mint a device session for
        the candidate's sitting (the longest a device session lives; a longer exam mints again)."""
        subject = str(data.get("subject_id") or DEFAULT_CANDIDATE)
        if not SUBJECT.match(subject):
            return _json(400, {"code": "invalid_request", "detail": "subject_id"})
        status, minted = self._call(
            "POST",
            "/v1/device-sessions",
            {"subject_id": subject, "purpose": EXAM_PURPOSE, "operations": EXAM_OPERATIONS, "ttl_seconds": 600},
        )
        if status != 201:
            return _json(status, minted)
        return _json(201, {**minted, "api": "", "exam_id": EXAM_ID})

    def result(self, data: dict[str, Any]) -> Reply:
        """The shop checks the signed result with the service's public keys before it trusts it."""
        token = data.get("result_token")
        if not isinstance(token, str):
            return _json(400, {"code": "invalid_request", "detail": "result_token"})
        try:
            with urllib.request.urlopen(self.api + "/v1/keys", timeout=10) as response:  # the local API only
                keys = json.loads(response.read())
            kid = jwt.get_unverified_header(token).get("kid")
            jwk = next((k for k in keys["keys"] if k.get("kid") == kid), None)
            if jwk is None:
                return _json(200, {"valid": False, "reason": "unknown key"})
            claims = jwt.decode(
                token,
                jwt.PyJWK(jwk).key,
                algorithms=["ES256"],
                options={"verify_aud": False},
            )
        except jwt.PyJWTError as error:
            return _json(200, {"valid": False, "reason": str(error)})
        return _json(200, {"valid": True, "claims": claims})

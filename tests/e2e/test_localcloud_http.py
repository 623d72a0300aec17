"""Boots the local cloud exactly as `make run` does and drives the consent flow over real HTTP."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    base: str
    env: dict[str, str]
    process: subprocess.Popen[bytes]

    def token(self, tenant: str = "demo") -> str:
        out = subprocess.run(
            [sys.executable, "-m", "localcloud", "token", "--tenant", tenant],
            env=self.env,
            capture_output=True,
            check=True,
            cwd=REPO,
        )
        return out.stdout.decode().strip().splitlines()[-1]

    def call(self, method: str, path: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method)
        request.add_header("content-type", "application/json")
        if token:
            request.add_header("authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    env = dict(os.environ)
    env.update(
        MOTO_PORT=str(free_port()),
        PORT=str(free_port()),
        PYTHONPATH=os.pathsep.join(str(REPO / p) for p in ("layers/shared", "layers/model", "tools")),
    )
    env["LOCALCLOUD_STATE"] = str(Path(tempfile.gettempdir()) / f"localcloud-{env['PORT']}.json")  # its own
    env.pop("AWS_ENDPOINT_URL", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "localcloud", "run"],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{env['PORT']}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(base + "/v1/health", timeout=2):
                break
        except OSError:
            if process.poll() is not None:
                pytest.fail(process.stdout.read().decode() if process.stdout else "local cloud exited")
            time.sleep(0.3)
    else:
        process.kill()
        pytest.fail("local cloud did not come up within 60 s")
    served = Server(base, env, process)
    # These tests are about single-photo flows; liveness (required by default) is tested in test_liveness_http.py.
    for purpose in ("checkout", "exam_proctoring"):
        body = {"liveness": "optional", "liveness_reason": "e2e tests of single-photo flows"}
        status, answer = served.call("PUT", f"/v1/purposes/{purpose}", body, token=served.token("demo"))
        assert status == 200 and answer["liveness"] == "optional", answer
    yield served
    process.send_signal(signal.SIGINT)
    process.wait(timeout=60)  # a loaded machine can take a while; a hang still fails


def consent_body(server: Server, token: str, decision: str = "granted") -> dict[str, Any]:
    """A consent (or refusal) against the current English checkout notice."""
    status, notice = server.call("GET", "/v1/notices/checkout?locale=en", token=token)
    assert status == 200 and notice["version"] >= 1 and notice["content"]["alternatives"]
    return {
        "purpose": "checkout",
        "notice_version": notice["version"],
        "notice_sha256": notice["sha256"],
        "decision": decision,
        "channel": "web",
        "locale": "en",
        "age_band": "adult",
    }


def test_consent_flow_over_http(server: Server) -> None:
    token = server.token("demo")
    body = consent_body(server, token, "granted")
    status, record = server.call("POST", "/v1/subjects/e2e-alice/consents", body, token=token)
    assert status == 201 and record["action"] == "granted"
    status, state = server.call("GET", "/v1/subjects/e2e-alice/consents", token=token)
    assert state["consents"][0]["active"] is True
    status, withdrawn = server.call("DELETE", "/v1/subjects/e2e-alice/consents/checkout", token=token)
    assert status == 200 and withdrawn["action"] == "withdrawn"
    status, history = server.call("GET", "/v1/subjects/e2e-alice/consents/history", token=token)
    assert [r["action"] for r in history["records"]] == ["granted", "withdrawn"]

    other = server.token("other")
    status, seen = server.call("GET", "/v1/subjects/e2e-alice/consents/history", token=other)
    assert status == 200 and seen["records"] == []
    assert server.call("GET", "/v1/subjects/e2e-alice/consents")[0] == 401
    assert server.call("GET", "/v1/health")[0] == 200


def test_ctrl_c_stops_everything() -> None:
    """Ctrl-C (SIGINT) ends the one process that holds the emulator and the API; both ports close."""
    env = dict(os.environ)
    env.update(
        MOTO_PORT=str(free_port()),
        PORT=str(free_port()),
        PYTHONPATH=os.pathsep.join(str(REPO / p) for p in ("layers/shared", "layers/model", "tools")),
    )
    env["LOCALCLOUD_STATE"] = str(Path(tempfile.gettempdir()) / f"localcloud-{env['PORT']}.json")  # its own
    process = subprocess.Popen(
        [sys.executable, "-m", "localcloud", "run"],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", int(env["PORT"])), timeout=1):
                break
        except OSError:
            time.sleep(0.3)
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=60) == 0  # a loaded machine can take a while; a hang still fails
    for port in (env["PORT"], env["MOTO_PORT"]):
        with pytest.raises(OSError), socket.create_connection(("127.0.0.1", int(port)), timeout=1):
            pass


def _photos(shared: Path) -> tuple[list[Path], list[Path]]:
    folders = sorted(p for p in (shared / "faces").iterdir() if p.is_dir() and len(list(p.iterdir())) >= 3)
    return sorted(folders[0].iterdir()), sorted(folders[1].iterdir())


def test_face_flow_over_http(server: Server, shared_dir: Path) -> None:
    """Issue 3 and 4 end to end: enrol by presigned upload, verify, identify only once enabled."""
    import base64

    import boto3
    import jwt
    import requests

    a, b = _photos(shared_dir)
    token = server.token("demo")
    consent = consent_body(server, token, "granted")
    assert server.call("POST", "/v1/subjects/e2e-face-a/consents", consent, token=token)[0] == 201

    status, started = server.call("POST", "/v1/subjects/e2e-face-a/enrolments", {"purpose": "checkout"}, token=token)
    assert status == 202, started
    form = started["upload"]
    posted = requests.post(form["url"], data=form["fields"], files={"file": ("a.jpg", a[0].read_bytes())}, timeout=30)
    assert posted.status_code in (200, 201, 204)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        _, job = server.call("GET", f"/v1/subjects/e2e-face-a/enrolments/{started['enrolment_id']}", token=token)
        if job["status"] != "pending":
            break
        time.sleep(0.5)
    assert job["status"] == "completed", job

    s3 = boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{server.env['MOTO_PORT']}",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    uploads = next(b["Name"] for b in s3.list_buckets()["Buckets"] if "-uploads-" in b["Name"])
    assert s3.list_objects_v2(Bucket=uploads).get("KeyCount", 0) == 0

    def verify(photo: Path) -> dict:
        body = {
            "subject_id": "e2e-face-a",
            "purpose": "checkout",
            "image": base64.b64encode(photo.read_bytes()).decode(),
        }
        status, result = server.call("POST", "/v1/verifications", body, token=token)
        assert status == 200, result
        return result

    match = verify(a[1])
    assert match["decision"] == "match"
    _, jwks = server.call("GET", "/v1/keys")
    claims = jwt.decode(
        match["result_token"], jwt.PyJWK.from_dict(jwks["keys"][0]).key, algorithms=["ES256"], audience="demo"
    )
    assert claims["decision"] == "match" and claims["sub"] == "e2e-face-a"
    assert verify(b[0])["decision"] == "no_match"

    probe = {"purpose": "checkout", "image": base64.b64encode(a[2].read_bytes()).decode()}
    status, refused = server.call("POST", "/v1/identifications", probe, token=token)
    assert status == 403 and refused["code"] == "identification_disabled"
    enable = {"identification_enabled": True, "assessment_id": "PIA-E2E-1"}
    assert server.call("PUT", "/v1/purposes/checkout", enable, token=token)[0] == 200
    status, found = server.call("POST", "/v1/identifications", probe, token=token)
    assert status == 200 and found["candidates"][0]["subject_id"] == "e2e-face-a", found


def test_refused_consent_email_otp_over_http(server: Server) -> None:
    """Issue 5 end to end: refusal → session without face → e-mail OTP read from `make outbox` → a
    result that checks against /v1/keys exactly like a face result."""
    import re

    import jwt

    token = server.token("demo")
    refusal = consent_body(server, token, "refused")
    assert server.call("POST", "/v1/subjects/e2e-refuser/consents", refusal, token=token)[0] == 201
    session_body = {"subject_id": "e2e-refuser", "purpose": "checkout", "email": "refuser@example.com", "locale": "en"}
    status, session = server.call("POST", "/v1/verification-sessions", session_body, token=token)
    assert status == 201, session
    assert "face" not in session["methods"] and "email_otp" in session["methods"]
    challenge_body = {"session_id": session["session_id"], "method": "email_otp"}
    status, challenge = server.call("POST", "/v1/fallback/challenges", challenge_body, token=token)
    assert status in (200, 201), challenge

    outbox = subprocess.run(
        [sys.executable, "-m", "localcloud.outbox"], env=server.env, capture_output=True, check=True, cwd=REPO
    ).stdout.decode()
    assert "refuser@example.com" in outbox, outbox
    code = re.findall(r"\b(\d{6})\b", outbox.split("refuser@example.com", 1)[1])[0]
    path = f"/v1/fallback/challenges/{challenge['challenge_id']}/verify"
    status, result = server.call("POST", path, {"code": code}, token=token)
    assert status == 200, result
    _, jwks = server.call("GET", "/v1/keys")
    claims = jwt.decode(
        result["result_token"], jwt.PyJWK.from_dict(jwks["keys"][0]).key, algorithms=["ES256"], audience="demo"
    )
    assert claims["decision"] == "match" and claims["method"] == "email_otp" and claims["sub"] == "e2e-refuser"


def test_erasure_over_http_leaves_no_trace(server: Server, shared_dir: Path) -> None:
    """Issue 6 end to end: consent, enrol, verify, DELETE; the receipt arrives and the emulator's
    tables and buckets hold nothing of the subject but the tombstone and audit entries."""
    import base64

    import boto3

    a, _ = _photos(shared_dir)
    token = server.token("demo")
    consent = consent_body(server, token, "granted")
    subject = "e2e-erase-me"
    assert server.call("POST", f"/v1/subjects/{subject}/consents", consent, token=token)[0] == 201
    image = base64.b64encode(a[0].read_bytes()).decode()
    status, enrolled = server.call(
        "POST", f"/v1/subjects/{subject}/enrolments", {"purpose": "checkout", "image": image}, token=token
    )
    assert status == 201, enrolled
    probe = {"subject_id": subject, "purpose": "checkout", "image": base64.b64encode(a[1].read_bytes()).decode()}
    assert server.call("POST", "/v1/verifications", probe, token=token)[1]["decision"] == "match"

    status, job = server.call("DELETE", f"/v1/subjects/{subject}", token=token)
    assert status == 202
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        _, job = server.call("GET", f"/v1/deletions/{job['deletion_id']}", token=token)
        if job["status"] == "completed":
            break
        time.sleep(0.5)
    assert job["status"] == "completed" and job["receipt"], job

    kwargs = {
        "endpoint_url": f"http://127.0.0.1:{server.env['MOTO_PORT']}",
        "region_name": "us-east-1",
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
    }
    ddb, s3 = boto3.client("dynamodb", **kwargs), boto3.client("s3", **kwargs)
    secrets = boto3.client("secretsmanager", **kwargs)
    pepper_arn = next(x["ARN"] for x in secrets.list_secrets()["SecretList"] if "Pepper" in x["Name"])
    pepper = secrets.get_secret_value(SecretId=pepper_arn)["SecretString"].encode()
    from facegate.core.hashing import SubjectHasher

    needles = [subject, SubjectHasher(pepper).ref("demo", subject), enrolled["template"]["template_id"]]
    left = []
    for table in ddb.list_tables()["TableNames"]:
        for item in ddb.scan(TableName=table)["Items"]:
            text = json.dumps(item, default=str)
            allowed = table.endswith("AuditTable") or item.get("sk", {}).get("S") == "TOMBSTONE"
            if any(n in text for n in needles) and not allowed:
                left.append((table, text[:120]))
    for bucket in s3.list_buckets()["Buckets"]:
        for obj in s3.list_objects_v2(Bucket=bucket["Name"]).get("Contents", []):
            body = s3.get_object(Bucket=bucket["Name"], Key=obj["Key"])["Body"].read()
            if any(n.encode() in body or n in obj["Key"] for n in needles):
                left.append((bucket["Name"], obj["Key"]))
    assert left == [], left

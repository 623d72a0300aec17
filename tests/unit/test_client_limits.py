"""Hardening item 7: every AWS client a function makes has connect and read timeouts and an attempt
budget, and one AWS call can never outlast the function (template.yaml's Timeout).

Without them botocore waits 60 s per read (PynamoDB 30 s) and tries up to 4-5 times: a frozen
dependency made a request wait longer than the function's timeout.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ReadTimeoutError

from facegate.core.config import ClientLimits, Settings
from localcloud.template import load_template

# Integration-level: fresh interpreters import every function and build its AWS clients; a real socket that
# never answers. Not in the fast unit tier.
pytestmark = [pytest.mark.integration, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]

PLACEHOLDERS = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "TENANTS_TABLE": "tenants",
    "CONSENTS_TABLE": "consents",
    "TEMPLATES_TABLE": "templates",
    "CHALLENGES_TABLE": "challenges",
    "SESSIONS_TABLE": "sessions",
    "AUDIT_TABLE": "audit",
    "IDEMPOTENCY_TABLE": "idempotency",
    "JOBS_TABLE": "jobs",
    "UPLOADS_BUCKET": "uploads",
    "GALLERIES_BUCKET": "galleries",
    "DATA_KEY_ID": "data-key",
    "SIGNING_KEY_ID": "signing-key",
    "PEPPER_SECRET_ARN": "pepper",
    "EVENT_BUS_NAME": "bus",
    "DELETION_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/deletion",
    "REVIEW_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/review",
    "POWERTOOLS_TRACE_DISABLED": "true",
}


def functions() -> dict[str, tuple[int, dict[str, str]]]:
    """Each function of template.yaml: its Timeout and its CLIENT_* environment (Globals + its own)."""
    template = load_template()
    defaults = template["Globals"]["Function"]
    found = {}
    for logical, resource in template["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        props = resource["Properties"]
        variables = {**defaults["Environment"]["Variables"], **props.get("Environment", {}).get("Variables", {})}
        client = {k: str(v) for k, v in variables.items() if k.startswith("CLIENT_")}
        found[logical] = (int(props.get("Timeout", defaults["Timeout"])), client)
    return found


FUNCTIONS = functions()


def limits_of(function: str) -> ClientLimits:
    return Settings.model_validate({**PLACEHOLDERS, **FUNCTIONS[function][1]}).client_limits


def test_every_function_sets_its_client_limits_explicitly() -> None:
    assert set(FUNCTIONS) == {
        "ConsentFunction",
        "EmbeddingFunction",
        "MatchingFunction",
        "FallbackFunction",
        "DeletionFunction",
        "AuthorizerFunction",  # device sessions (issue 15)
        "WebhooksFunction",
    }
    for function, (_, client) in FUNCTIONS.items():
        assert set(client) == {
            "CLIENT_CONNECT_TIMEOUT_SECONDS",
            "CLIENT_READ_TIMEOUT_SECONDS",
            "CLIENT_MAX_ATTEMPTS",
        }, function


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_one_aws_call_ends_before_the_function_times_out(function: str) -> None:
    timeout, _ = FUNCTIONS[function]
    limits = limits_of(function)
    # (connect + read) x attempts, plus standard mode's backoff between attempts (at most 1 s, 2 s, ...)
    assert limits.worst_case_seconds < timeout, (function, limits, timeout)
    assert (limits.connect_timeout + limits.read_timeout) * limits.max_attempts < timeout
    assert limits.max_attempts >= 2, "one retry at least: a single dropped connection must not fail a request"


def test_worst_case_counts_every_attempt_and_the_backoff_between_them() -> None:
    assert ClientLimits(1, 3, 1).worst_case_seconds == 4
    assert ClientLimits(1, 3, 2).worst_case_seconds == 2 * 4 + 1
    assert ClientLimits(1, 5, 3).worst_case_seconds == 3 * 6 + 1 + 2


# Runs in its own interpreter with one function's environment: building the wiring binds PynamoDB item
# classes and sets process-wide connection limits, which must not leak into other tests.
PROBE = """
import importlib.util, json, sys
import boto3, botocore.session
from moto import mock_aws

made = []
create_client = botocore.session.Session.create_client
def recording(self, service_name, *args, **kwargs):
    client = create_client(self, service_name, *args, **kwargs)
    made.append(client)
    return client

with mock_aws():
    boto3.client("secretsmanager").create_secret(Name="pepper", SecretString="p" * 48)
    botocore.session.Session.create_client = recording  # from here on: only clients the functions make
    from pynamodb.models import Model
    from facegate.wiring import container
    from facegate.wiring import fallback

    shared = container()
    for name in ("signer", "consents", "enrolments", "verifications", "identifications", "gallery_remover",
                 "deletions", "sqs"):
        if hasattr(type(shared), name):
            getattr(shared, name)
    for name in ("sessions", "challenges", "totp"):
        getattr(fallback(), name)
    shared.consent_records._connection.client  # the connection of consent transactions

    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)
    models = sorted({m for m in subclasses(Model) if m.__module__.startswith("facegate.") and m.Meta.table_name},
                    key=lambda m: m.__name__)
    for model in models:
        model._get_connection().connection.client
    for function in sys.argv[1:]:
        spec = importlib.util.spec_from_file_location("app_" + function, f"functions/{function}/app.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        if hasattr(module, "idempotency"):
            module.idempotency._client

print(json.dumps({
    "models": [m.__name__ for m in models],
    "clients": [
        {"service": c.meta.service_model.service_name, "connect": c.meta.config.connect_timeout,
         "read": c.meta.config.read_timeout, "retries": c.meta.config.retries}
        for c in made
    ],
}))
"""


def probe(environment: dict[str, str]) -> dict[str, Any]:
    paths = [str(REPO / "layers" / "shared"), str(REPO / "layers" / "model"), str(REPO / "tools")]
    env = {**PLACEHOLDERS, **environment, "PYTHONPATH": ":".join(paths), "PATH": "/usr/bin:/bin"}
    functions = ["consent", "embedding", "matching", "fallback", "deletion"]
    out = subprocess.run(
        [sys.executable, "-c", PROBE, *functions], env=env, cwd=REPO, capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr[-3000:]
    answer: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return answer


@pytest.mark.parametrize("function", ["ConsentFunction", "DeletionFunction"])
def test_every_client_the_wiring_builds_has_the_configured_limits(function: str) -> None:
    # Given one function's environment from template.yaml (Globals' limits, or its own longer ones)
    limits = limits_of(function)
    # When its composition root builds every service, and each PynamoDB item class opens its connection
    built = probe(FUNCTIONS[function][1])
    # Then every botocore client made, boto3's and PynamoDB's alike, has those timeouts and that budget
    services = {c["service"] for c in built["clients"]}
    assert {"dynamodb", "kms", "s3", "sqs", "events", "secretsmanager", "sesv2", "sns"} <= services
    assert len([c for c in built["clients"] if c["service"] == "dynamodb"]) >= len(built["models"]) + 1
    assert {"EnrolmentItem", "TemplateItem", "AuditItem", "ChallengeItem"} <= set(built["models"])
    # Except the X-Ray SDK's own client, made at import for the local X-Ray daemon's sampling rules.
    for client in [c for c in built["clients"] if c["service"] != "xray"]:
        assert client["connect"] == limits.connect_timeout, client
        assert client["read"] == limits.read_timeout, client
        assert client["retries"]["mode"] == "standard", client
        assert client["retries"]["total_max_attempts"] == limits.max_attempts, client


class FrozenDependency:
    """A TCP endpoint that accepts connections and never answers: a dependency that froze."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}"
        self.connections: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                self.connections.append(self.server.accept()[0])

    def close(self) -> None:
        for connection in self.connections:
            connection.close()
        self.server.close()


@pytest.fixture
def frozen() -> Iterator[FrozenDependency]:
    dependency = FrozenDependency()
    yield dependency
    dependency.close()


def test_a_frozen_dependency_fails_within_the_budget_after_exactly_max_attempts(frozen: FrozenDependency) -> None:
    # Given a client with short limits (the real ones are longer; the arithmetic is the same)
    limits = ClientLimits(connect_timeout=0.5, read_timeout=0.5, max_attempts=3)
    kms = boto3.session.Session(region_name="us-east-1").client(
        "kms",
        endpoint_url=frozen.url,
        config=limits.botocore_config(),
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    # When the dependency never answers
    started = time.monotonic()
    with pytest.raises(ReadTimeoutError):
        kms.get_public_key(KeyId="alias/any")
    elapsed = time.monotonic() - started
    # Then the call gave up after max_attempts attempts, within the budget (1 s of slack for a busy CI
    # machine's scheduling; the budget itself is 3 x 1 s + at most 1 s + 2 s of backoff)
    assert len(frozen.connections) == limits.max_attempts
    assert elapsed < limits.worst_case_seconds + 1.0, elapsed

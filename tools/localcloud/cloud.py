"""Assemble the local cloud: deploy the template into the emulator, onboard the tenants, open the gateway."""

from __future__ import annotations

import gzip
import json
import os
from dataclasses import dataclass
from importlib import resources
from typing import Any

import boto3
import jwt

from localcloud.auth import JwksClient, JwtAuthorizer, mint_access_token
from localcloud.gateway import Gateway
from localcloud.provision import Provisioner, Stack
from localcloud.seed import SCOPES, TENANTS, create_client, seed_tenant

REGION = "us-east-1"

LOCAL_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_DEV": "false",
}


def moto_public_jwks() -> dict[str, Any]:
    data = resources.files("moto.cognitoidp").joinpath("resources/jwks-public.json.gz").read_bytes()
    return json.loads(gzip.decompress(data))


class StaticJwksClient:
    """For in-process tests (no HTTP server): the same public JWKS the emulator serves over HTTP."""

    def __init__(self, jwks: dict[str, Any]) -> None:
        self._keys = {key["kid"]: jwt.PyJWK.from_dict(key) for key in jwks["keys"]}

    def get_signing_key_from_jwt(self, token: str) -> jwt.PyJWK:
        kid = jwt.get_unverified_header(token).get("kid")
        if kid not in self._keys:
            # As PyJWKClient does over HTTP: a token of another key (a device token) is an invalid token (401).
            raise jwt.PyJWKClientError(f"no key with kid {kid!r} in the pool's JWKS")
        return self._keys[kid]


@dataclass
class QueueTrigger:
    """An event source of a function, read from a queue: an SQS event source as Lambda polls it, or an
    S3 trigger whose notifications the emulator sends to a local queue (kind "s3")."""

    function: str
    queue_url: str
    kind: str  # "sqs" | "s3"
    queue_arn: str = ""


def wire_triggers(session: boto3.session.Session, stack: Stack) -> list[QueueTrigger]:
    """For each `Type: S3` event route the bucket's notifications to a local queue; for each `Type: SQS`
    event poll the template's queue."""
    s3 = session.client("s3", region_name=REGION)
    sqs = session.client("sqs", region_name=REGION)
    per_bucket: dict[str, list[dict[str, Any]]] = {}
    triggers = []
    for logical, resource in stack.template["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        for event_name, event in resource["Properties"].get("Events", {}).items():
            if event["Type"] == "SQS":
                arn = stack.resolver.resolve(event["Properties"]["Queue"])
                name = arn.rsplit(":", 1)[1]
                url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
                triggers.append(QueueTrigger(logical, url, "sqs", arn))
                continue
            if event["Type"] != "S3":
                continue
            props = stack.resolver.resolve(event["Properties"])
            url = sqs.create_queue(QueueName=f"localcloud-s3-{logical}-{event_name}")["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            events = props["Events"] if isinstance(props["Events"], list) else [props["Events"]]
            config: dict[str, Any] = {"QueueArn": arn, "Events": events}
            rules = props.get("Filter", {}).get("S3Key", {}).get("Rules")
            if rules:
                config["Filter"] = {"Key": {"FilterRules": rules}}
            per_bucket.setdefault(props["Bucket"], []).append(config)
            triggers.append(QueueTrigger(logical, url, "s3"))
    for bucket, configs in per_bucket.items():
        s3.put_bucket_notification_configuration(
            Bucket=bucket, NotificationConfiguration={"QueueConfigurations": configs}
        )
    return triggers


@dataclass
class LocalCloud:
    stack: Stack
    gateway: Gateway
    pool_id: str
    client_ids: dict[str, str]
    triggers: list[QueueTrigger]
    session: boto3.session.Session

    def token(self, tenant: str = "demo", scopes: tuple[str, ...] = SCOPES, lifetime_seconds: int = 3600) -> str:
        return mint_access_token(
            region=REGION,
            pool_id=self.pool_id,
            client_id=self.client_ids[tenant],
            scopes=list(scopes),
            lifetime_seconds=lifetime_seconds,
        )

    def deliver_events(self) -> int:
        """Invoke functions with what waits in their event sources, as Lambda's pollers do. SQS messages
        a function reports as failed stay in the queue (visible again after the visibility timeout)."""
        sqs = self.session.client("sqs", region_name=REGION)
        delivered = 0
        for trigger in self.triggers:
            while True:
                messages = sqs.receive_message(
                    QueueUrl=trigger.queue_url, MaxNumberOfMessages=10, AttributeNames=["All"]
                ).get("Messages", [])
                if not messages:
                    break
                failed: set[str] = set()
                if trigger.kind == "s3":
                    for message in messages:
                        event = json.loads(message["Body"])
                        if event.get("Records"):
                            self.gateway.invoke(trigger.function, event)
                            delivered += 1
                else:
                    records = [_sqs_record(message, trigger.queue_arn) for message in messages]
                    try:
                        answer = self.gateway.invoke(trigger.function, {"Records": records}) or {}
                        failed = {f["itemIdentifier"] for f in answer.get("batchItemFailures", [])}
                    except Exception:  # a function error: Lambda retries the whole batch
                        failed = {r["messageId"] for r in records}
                    delivered += len(records) - len(failed)
                for message in messages:
                    if message["MessageId"] not in failed:
                        sqs.delete_message(QueueUrl=trigger.queue_url, ReceiptHandle=message["ReceiptHandle"])
                if failed:
                    break
        return delivered


def _sqs_record(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": message.get("MessageAttributes", {}),
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": REGION,
    }


# -- webhooks: the local cloud delivers to its own receiver on 127.0.0.1 over http (deployed: https, public hosts)
LOCAL_FUNCTION_SETTINGS: dict[str, dict[str, str]] = {"WebhooksFunction": {"WEBHOOK_ALLOW_LOCAL_HTTP": "true"}}


def with_local_settings(env_vars: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    """The local cloud's own settings under the caller's overrides (theirs win)."""
    merged = {scope: dict(values) for scope, values in LOCAL_FUNCTION_SETTINGS.items()}
    for scope, values in env_vars.items():
        merged.setdefault(scope, {}).update(values)
    return merged


# -- end webhooks


def create_tenant_clients(session: boto3.session.Session, pool_id: str) -> dict[str, str]:
    cognito = session.client("cognito-idp", region_name=REGION)
    return {tenant: create_client(cognito, pool_id, tenant) for tenant in TENANTS}


def start(
    session: boto3.session.Session,
    emulator_endpoint: str | None = None,
    instances: int = 0,
    env_vars: dict[str, dict[str, str]] | None = None,
) -> LocalCloud:
    """Deploy and seed. With an emulator endpoint, tokens are checked against the JWKS it serves over
    HTTP; without one (moto in-process, in tests) against the same JWKS read from moto's package.
    `instances` > 0 runs each function in that many worker processes (they need the emulator's
    endpoint in AWS_ENDPOINT_URL); 0 runs the handlers in this process. `env_vars` overrides variables
    of the functions' environment (checked by localcloud.template.check_env_vars)."""
    if instances and not emulator_endpoint:
        raise ValueError("worker processes reach the emulator over HTTP: pass emulator_endpoint")
    for key, value in LOCAL_ENVIRONMENT.items():
        os.environ.setdefault(key, value)
    stack = Provisioner(session, REGION).deploy()
    stack.env_overrides = with_local_settings(env_vars or {})
    from localcloud.outbox import verify_senders

    verify_senders(session, stack)  # the emulated SES sends only from verified identities
    pool_id = stack.ref("UserPool")
    client_ids = create_tenant_clients(session, pool_id)
    stack.resolver.parameters["AllowedClientIds"] = list(client_ids.values())

    # Every function shares the Globals environment; set it before any handler or repository is built.
    for logical in stack.template["Resources"]:
        if stack.template["Resources"][logical]["Type"] == "AWS::Serverless::Function":
            os.environ.update(stack.function_environment(logical))
    from facegate import wiring

    wiring.reset()
    for tenant in TENANTS:
        seed_tenant(wiring.container().tenants, tenant, client_ids[tenant], created_by="localcloud-seed")

    api = stack.template["Resources"]["Api"]["Properties"]["Auth"]
    config = stack.resolver.resolve(api["Authorizers"][api["DefaultAuthorizer"]]["JwtConfiguration"])
    jwks: JwksClient = (
        jwt.PyJWKClient(f"{emulator_endpoint}/{pool_id}/.well-known/jwks.json", cache_keys=True)
        if emulator_endpoint
        else StaticJwksClient(moto_public_jwks())
    )
    authorizer = JwtAuthorizer(issuer=config["issuer"], audience=list(config["audience"]), jwks=jwks)
    return LocalCloud(
        stack=stack,
        gateway=Gateway(stack, authorizer, instances),
        pool_id=pool_id,
        client_ids=client_ids,
        triggers=wire_triggers(session, stack),
        session=session,
    )

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
from localcloud.seed import SCOPES, TENANTS, seed_tenants

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
        return self._keys[jwt.get_unverified_header(token)["kid"]]


@dataclass
class S3Trigger:
    """An S3 event source of a function, delivered through a local queue (S3 → SQS is emulated)."""

    function: str
    queue_url: str


def wire_s3_triggers(session: boto3.session.Session, stack: Stack) -> list[S3Trigger]:
    """For each `Type: S3` event in the template, route the bucket's notifications to a queue."""
    s3 = session.client("s3", region_name=REGION)
    sqs = session.client("sqs", region_name=REGION)
    per_bucket: dict[str, list[dict[str, Any]]] = {}
    triggers = []
    for logical, resource in stack.template["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        for event_name, event in resource["Properties"].get("Events", {}).items():
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
            triggers.append(S3Trigger(logical, url))
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
    s3_triggers: list[S3Trigger]
    session: boto3.session.Session

    def deliver_s3_events(self) -> int:
        """Invoke the functions with the S3 events waiting for them, as Lambda's S3 trigger does."""
        sqs = self.session.client("sqs", region_name=REGION)
        delivered = 0
        for trigger in self.s3_triggers:
            while True:
                messages = sqs.receive_message(QueueUrl=trigger.queue_url, MaxNumberOfMessages=10).get("Messages", [])
                if not messages:
                    break
                for message in messages:
                    event = json.loads(message["Body"])
                    if event.get("Records"):
                        self.gateway.invoke(trigger.function, event)
                        delivered += 1
                    sqs.delete_message(QueueUrl=trigger.queue_url, ReceiptHandle=message["ReceiptHandle"])
        return delivered

    def token(self, tenant: str = "demo", scopes: tuple[str, ...] = SCOPES, lifetime_seconds: int = 3600) -> str:
        return mint_access_token(
            region=REGION,
            pool_id=self.pool_id,
            client_id=self.client_ids[tenant],
            scopes=list(scopes),
            lifetime_seconds=lifetime_seconds,
        )


def create_tenant_clients(session: boto3.session.Session, pool_id: str) -> dict[str, str]:
    cognito = session.client("cognito-idp", region_name=REGION)
    existing = {
        c["ClientName"]: c["ClientId"]
        for c in cognito.list_user_pool_clients(UserPoolId=pool_id, MaxResults=60)["UserPoolClients"]
    }
    for tenant in TENANTS:
        if tenant in existing:
            continue
        existing[tenant] = cognito.create_user_pool_client(
            UserPoolId=pool_id,
            ClientName=tenant,
            GenerateSecret=True,
            AllowedOAuthFlows=["client_credentials"],
            AllowedOAuthScopes=[f"facegate/{scope}" for scope in SCOPES],
            AllowedOAuthFlowsUserPoolClient=True,
        )["UserPoolClient"]["ClientId"]
    return {tenant: existing[tenant] for tenant in TENANTS}


def start(session: boto3.session.Session, emulator_endpoint: str | None = None) -> LocalCloud:
    """Deploy and seed. With an emulator endpoint, tokens are checked against the JWKS it serves over
    HTTP; without one (moto in-process, in tests) against the same JWKS read from moto's package."""
    for key, value in LOCAL_ENVIRONMENT.items():
        os.environ.setdefault(key, value)
    stack = Provisioner(session, REGION).deploy()
    pool_id = stack.ref("UserPool")
    client_ids = create_tenant_clients(session, pool_id)
    stack.resolver.parameters["AllowedClientIds"] = list(client_ids.values())

    # Every function shares the Globals environment; set it before any handler or repository is built.
    for logical in stack.template["Resources"]:
        if stack.template["Resources"][logical]["Type"] == "AWS::Serverless::Function":
            os.environ.update(stack.function_environment(logical))
    from facegate import wiring

    wiring.reset()
    seed_tenants(wiring.container().tenants, client_ids)

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
        gateway=Gateway(stack, authorizer),
        pool_id=pool_id,
        client_ids=client_ids,
        s3_triggers=wire_s3_triggers(session, stack),
        session=session,
    )

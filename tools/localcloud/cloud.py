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
class LocalCloud:
    stack: Stack
    gateway: Gateway
    pool_id: str
    client_ids: dict[str, str]

    def token(
        self, tenant: str = "demo", scopes: tuple[str, ...] = SCOPES, lifetime_seconds: int = 3600
    ) -> str:
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
    return LocalCloud(stack=stack, gateway=Gateway(stack, authorizer), pool_id=pool_id, client_ids=client_ids)

"""Onboard a tenant onto a deployed facegate stack: its Cognito app client (client-credentials grant),
its purposes and default notices in zh-CN and en (edit them with PUT /v1/notices/{purpose}).

    python tools/onboard_tenant.py --stack facegate-dev --tenant acme \\
        --processor-name "ACME Ltd" --processor-contact privacy@acme.example

Idempotent: running it again reuses the client and adds nothing that exists. It prints the client id
and secret; add the client id to the stack's AllowedClientIds parameter and redeploy, so the HTTP API's
JWT authorizer accepts the tenant's tokens.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

import boto3

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1] / "layers" / "shared")]

from facegate.consent.dynamo import TenantRepository  # noqa: E402
from localcloud.seed import create_client, seed_tenant  # noqa: E402

TENANT_ID = re.compile(r"^[a-z][a-z0-9-]{1,39}$")


def stack_outputs(session: boto3.session.Session, stack: str) -> dict[str, str]:
    answer = session.client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in answer.get("Outputs", [])}


def onboard(
    session: boto3.session.Session,
    pool_id: str,
    tenants_table: str,
    tenant_id: str,
    processor: dict[str, str],
) -> dict[str, Any]:
    if not TENANT_ID.match(tenant_id):
        raise ValueError("tenant ids are 2-40 lowercase letters, digits and dashes, starting with a letter")
    cognito = session.client("cognito-idp")
    client_id = create_client(cognito, pool_id, tenant_id)
    secret = cognito.describe_user_pool_client(UserPoolId=pool_id, ClientId=client_id)["UserPoolClient"].get(
        "ClientSecret"
    )
    seed_tenant(TenantRepository(tenants_table, session.region_name or "us-east-1"), tenant_id, client_id, processor)
    return {"tenant_id": tenant_id, "client_id": client_id, "client_secret": secret}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", required=True)
    parser.add_argument("--tenant", required=True)
    parser.add_argument("--processor-name", required=True)
    parser.add_argument("--processor-contact", required=True)
    parser.add_argument("--region")
    args = parser.parse_args()
    session = boto3.session.Session(region_name=args.region)
    outputs = stack_outputs(session, args.stack)
    result = onboard(
        session,
        outputs["UserPoolId"],
        outputs["TenantsTableName"],
        args.tenant,
        {"name": args.processor_name, "contact": args.processor_contact},
    )
    print(json.dumps(result, indent=1))
    print(f"next: add {result['client_id']} to the AllowedClientIds parameter of {args.stack} and redeploy")


if __name__ == "__main__":
    main()

"""python -m localcloud run [--instances N] [--env-vars FILE]
python -m localcloud token [--tenant demo] [--scopes consent,enrol] [--lifetime 3600]"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import boto3


def token(tenant: str, scopes: list[str], lifetime: int) -> str:
    from localcloud.auth import mint_access_token
    from localcloud.cloud import REGION

    endpoint = f"http://127.0.0.1:{os.environ.get('MOTO_PORT', '4566')}"
    cognito = boto3.client(
        "cognito-idp",
        region_name=REGION,
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    pools = [p for p in cognito.list_user_pools(MaxResults=60)["UserPools"] if p["Name"].startswith("facegate-")]
    if not pools:
        raise SystemExit("no local cloud is running (start it with `make run`)")
    pool_id = pools[0]["Id"]
    clients = cognito.list_user_pool_clients(UserPoolId=pool_id, MaxResults=60)["UserPoolClients"]
    client_id = next((c["ClientId"] for c in clients if c["ClientName"] == tenant), None)
    if client_id is None:
        raise SystemExit(f"unknown tenant {tenant!r}; local tenants are demo and other")
    return mint_access_token(
        region=REGION, pool_id=pool_id, client_id=client_id, scopes=scopes, lifetime_seconds=lifetime
    )


def env_vars(parser: argparse.ArgumentParser, path: str) -> dict[str, dict[str, str]]:
    """The overrides of an --env-vars file, checked against template.yaml before anything starts."""
    from localcloud.template import check_env_vars, load_template

    try:
        with open(path, encoding="utf-8") as handle:
            data: Any = json.load(handle)
        return check_env_vars(load_template(), data)
    except (OSError, ValueError) as error:  # json.JSONDecodeError is a ValueError
        parser.error(f"--env-vars {path}: {error}")


def main() -> None:
    from localcloud.seed import SCOPES

    parser = argparse.ArgumentParser(prog="localcloud")
    sub = parser.add_subparsers(dest="command", required=True)
    run_parser = sub.add_parser("run", help="start the emulator and serve the API")
    run_parser.add_argument(
        "--instances",
        type=int,
        default=None,
        help="worker processes per function (default: $LOCALCLOUD_INSTANCES, else 3; 0: all in this process)",
    )
    run_parser.add_argument(
        "--env-vars",
        metavar="FILE",
        default=None,
        help="JSON file overriding variables of the functions' environment, as `sam local start-api --env-vars` "
        'takes it: {"Parameters": {"VAR": "value"}, "FallbackFunction": {"VAR": "value"}}',
    )
    tok = sub.add_parser("token", help="print a bearer token for a local tenant")
    tok.add_argument("--tenant", default="demo")
    tok.add_argument("--scopes", default=",".join(SCOPES))
    tok.add_argument("--lifetime", type=int, default=3600)
    args = parser.parse_args()
    if args.command == "run":
        from localcloud.server import main as run

        if args.instances is not None and args.instances < 0:
            parser.error("--instances must be 0 or more")
        run(args.instances, env_vars(parser, args.env_vars) if args.env_vars else None)
    else:
        try:
            print(token(args.tenant, [s for s in args.scopes.split(",") if s], args.lifetime))
        except Exception as error:  # a readable line instead of a traceback
            if isinstance(error, SystemExit):
                raise
            print(f"cannot reach the local cloud: {error}", file=sys.stderr)
            raise SystemExit(1) from error


if __name__ == "__main__":
    main()

"""Create, in an AWS emulator, the resources that template.yaml declares (derived, never hand-listed).

Works against any boto3 session: the moto server of `make run`, or moto's in-process mock in tests.
Serverless functions, layers and the HTTP API are not created in the emulator: the local gateway runs
the real handlers in-process instead.
"""

from __future__ import annotations

import json
import secrets
import string
from dataclasses import dataclass, field
from typing import Any

import boto3

from localcloud.template import Resolver, creation_order, load_template

ACCOUNT_ID = "123456789012"
STACK_NAME = "facegate-local"

RUN_IN_PROCESS = {"AWS::Serverless::Function", "AWS::Serverless::LayerVersion", "AWS::Serverless::HttpApi"}


@dataclass
class Stack:
    """What was created: physical ids, attributes, the functions' environment, skipped types."""

    template: dict[str, Any]
    resolver: Resolver
    created: dict[str, str] = field(default_factory=dict)  # logical id → resource type
    skipped: dict[str, str] = field(default_factory=dict)
    # Environment overrides (`localcloud run --env-vars`, checked by template.check_env_vars): per function
    # logical id, or "Parameters" for every function that has the variable.
    env_overrides: dict[str, dict[str, str]] = field(default_factory=dict)

    def ref(self, logical: str) -> Any:
        return self.resolver.refs[logical]

    def attr(self, logical: str, name: str) -> Any:
        return self.resolver.attrs[(logical, name)]

    def resources_of(self, resource_type: str) -> list[str]:
        return [name for name, kind in self.created.items() if kind == resource_type]

    def function_environment(self, logical: str) -> dict[str, str]:
        """Globals environment merged with the function's own, intrinsics resolved, then the overrides of
        the variables it has (Parameters first, the function's own last, as SAM applies them)."""
        globals_env = self.template.get("Globals", {}).get("Function", {}).get("Environment", {})
        own_env = self.template["Resources"][logical]["Properties"].get("Environment", {})
        merged = {**globals_env.get("Variables", {}), **own_env.get("Variables", {})}
        environment = {k: str(v) for k, v in self.resolver.resolve(merged).items()}
        for scope in ("Parameters", logical):
            environment.update({k: v for k, v in self.env_overrides.get(scope, {}).items() if k in environment})
        return environment


def _secret_value(length: int) -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(length))


def _lifecycle_rule(rule: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"ID": rule.get("Id", "rule"), "Status": rule["Status"], "Filter": {"Prefix": ""}}
    if "ExpirationInDays" in rule:
        out["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
    if "AbortIncompleteMultipartUpload" in rule:
        days = int(rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])
        out["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": days}
    return out


class Provisioner:
    def __init__(self, session: boto3.session.Session, region: str) -> None:
        self.session = session
        self.region = region
        self._clients: dict[str, Any] = {}

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.session.client(service, region_name=self.region)
        return self._clients[service]

    def arn(self, service: str, resource: str) -> str:
        return f"arn:aws:{service}:{self.region}:{ACCOUNT_ID}:{resource}"

    def deploy(self, parameters: dict[str, Any] | None = None) -> Stack:
        template = load_template()
        params = {name: spec.get("Default") for name, spec in template.get("Parameters", {}).items()}
        for name, spec in template.get("Parameters", {}).items():
            if spec.get("Type") == "CommaDelimitedList" and isinstance(params[name], str):
                params[name] = params[name].split(",")
        params.update(parameters or {})
        resolver = Resolver(
            template=template,
            parameters=params,
            pseudo={
                "AWS::AccountId": ACCOUNT_ID,
                "AWS::Region": self.region,
                "AWS::Partition": "aws",
                "AWS::URLSuffix": "amazonaws.com",
                "AWS::StackName": STACK_NAME,
                "AWS::NoValue": "",
            },
        )
        stack = Stack(template=template, resolver=resolver)
        resources = template["Resources"]
        for logical in creation_order(resources):
            kind = resources[logical]["Type"]
            if kind in RUN_IN_PROCESS:
                resolver.refs[logical] = logical
                stack.skipped[logical] = kind
                continue
            create = getattr(self, "_" + kind.replace("::", "_").lower(), None)
            if create is None:
                stack.skipped[logical] = kind
                continue
            create(logical, resolver.resolve(resources[logical].get("Properties", {})), resolver)
            stack.created[logical] = kind
        return stack

    # -- one method per resource type; each records Ref and the GetAtt attributes it offers

    def _aws_kms_key(self, logical: str, props: dict[str, Any], r: Resolver) -> None:
        kms = self.client("kms")
        meta = kms.create_key(
            Description=props.get("Description", logical),
            KeySpec=props.get("KeySpec", "SYMMETRIC_DEFAULT"),
            KeyUsage=props.get("KeyUsage", "ENCRYPT_DECRYPT"),
            Tags=[{"TagKey": "logical-id", "TagValue": logical}],
        )["KeyMetadata"]
        if props.get("EnableKeyRotation"):
            kms.enable_key_rotation(KeyId=meta["KeyId"])
        r.refs[logical] = meta["KeyId"]
        r.attrs[(logical, "Arn")] = meta["Arn"]
        r.attrs[(logical, "KeyId")] = meta["KeyId"]

    def _aws_secretsmanager_secret(self, logical: str, props: dict[str, Any], r: Resolver) -> None:
        generate = props.get("GenerateSecretString", {})
        arn = self.client("secretsmanager").create_secret(
            Name=f"{STACK_NAME}-{logical}",
            SecretString=_secret_value(int(generate.get("PasswordLength", 32))),
            KmsKeyId=props.get("KmsKeyId", "alias/aws/secretsmanager"),
        )["ARN"]
        r.refs[logical] = arn

    def _aws_cognito_userpool(self, logical: str, props: dict[str, Any], r: Resolver) -> None:
        pool = self.client("cognito-idp").create_user_pool(PoolName=props.get("UserPoolName", logical))
        pool_id = pool["UserPool"]["Id"]
        r.refs[logical] = pool_id
        r.attrs[(logical, "Arn")] = pool["UserPool"]["Arn"]
        r.attrs[(logical, "ProviderURL")] = f"cognito-idp.{self.region}.amazonaws.com/{pool_id}"

    def _aws_cognito_userpooldomain(self, logical: str, props: dict[str, Any], r: Resolver) -> None:
        self.client("cognito-idp").create_user_pool_domain(Domain=props["Domain"], UserPoolId=props["UserPoolId"])
        r.refs[logical] = props["Domain"]

    def _aws_cognito_userpoolresourceserver(self, logical: str, props: dict[str, Any], r: Resolver) -> None:
        self.client("cognito-idp").create_resource_server(
            UserPoolId=props["UserPoolId"],
            Identifier=props["Identifier"],
            Name=props["Name"],
            Scopes=props["Scopes"],
        )
        r.refs[logical] = props["Identifier"]

    def _aws_dynamodb_table(self, logical: str, props: dict[str, Any], r: Resolver) -> None:
        ddb = self.client("dynamodb")
        name = props.get("TableName") or f"{STACK_NAME}-{logical}"
        args: dict[str, Any] = {
            "TableName": name,
            "KeySchema": props["KeySchema"],
            "AttributeDefinitions": props["AttributeDefinitions"],
            "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
        }
        for index_kind in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
            if props.get(index_kind):
                args[index_kind] = props[index_kind]
        sse = props.get("SSESpecification")
        if sse and sse.get("SSEEnabled"):
            args["SSESpecification"] = {
                "Enabled": True,
                "SSEType": "KMS",
                "KMSMasterKeyId": sse["KMSMasterKeyId"],
            }
        description = ddb.create_table(**args)["TableDescription"]
        ttl = props.get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled"):
            ddb.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]},
            )
        if props.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled"):
            ddb.update_continuous_backups(
                TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
            )
        r.refs[logical] = name
        r.attrs[(logical, "Arn")] = description["TableArn"]

    def _aws_s3_bucket(self, logical: str, props: dict[str, Any], r: Resolver) -> None:
        s3 = self.client("s3")
        name = props.get("BucketName") or f"{STACK_NAME}-{logical}".lower()
        if self.region == "us-east-1":
            s3.create_bucket(Bucket=name)
        else:
            s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": self.region})
        encryption = props.get("BucketEncryption", {}).get("ServerSideEncryptionConfiguration")
        if encryption:
            s3.put_bucket_encryption(
                Bucket=name,
                ServerSideEncryptionConfiguration={
                    "Rules": [
                        {
                            "ApplyServerSideEncryptionByDefault": {
                                "SSEAlgorithm": rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"],
                                "KMSMasterKeyID": rule["ServerSideEncryptionByDefault"].get("KMSMasterKeyID", ""),
                            },
                            "BucketKeyEnabled": bool(rule.get("BucketKeyEnabled", False)),
                        }
                        for rule in encryption
                    ]
                },
            )
        if "PublicAccessBlockConfiguration" in props:
            s3.put_public_access_block(
                Bucket=name, PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"]
            )
        rules = props.get("LifecycleConfiguration", {}).get("Rules")
        if rules:
            s3.put_bucket_lifecycle_configuration(
                Bucket=name, LifecycleConfiguration={"Rules": [_lifecycle_rule(rule) for rule in rules]}
            )
        cors = props.get("CorsConfiguration", {}).get("CorsRules")
        if cors:
            renamed = {"Id": "ID", "MaxAge": "MaxAgeSeconds"}  # CloudFormation names → S3 API names
            rules_api = [{renamed.get(k, k): v for k, v in rule.items()} for rule in cors]
            s3.put_bucket_cors(Bucket=name, CORSConfiguration={"CORSRules": rules_api})
        r.refs[logical] = name
        r.attrs[(logical, "Arn")] = f"arn:aws:s3:::{name}"

    def _aws_s3_bucketpolicy(self, logical: str, props: dict[str, Any], r: Resolver) -> None:
        # moto applies bucket policies but ignores their conditions, so a TLS-only Deny (condition
        # aws:SecureTransport=false) would deny everything. Statements with conditions are left out here;
        # real S3 evaluates them.
        document = dict(props["PolicyDocument"])
        document["Statement"] = [st for st in document["Statement"] if "Condition" not in st]
        if document["Statement"]:
            self.client("s3").put_bucket_policy(Bucket=props["Bucket"], Policy=json.dumps(document))
        r.refs[logical] = logical

    def _aws_sqs_queue(self, logical: str, props: dict[str, Any], r: Resolver) -> None:
        name = props.get("QueueName") or f"{STACK_NAME}-{logical}"
        attributes: dict[str, str] = {
            key: str(props[key])
            for key in ("VisibilityTimeout", "MessageRetentionPeriod", "KmsMasterKeyId", "DelaySeconds")
            if key in props
        }
        if "RedrivePolicy" in props:
            attributes["RedrivePolicy"] = json.dumps(props["RedrivePolicy"])
        url = self.client("sqs").create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        r.refs[logical] = url
        r.attrs[(logical, "Arn")] = self.arn("sqs", name)
        r.attrs[(logical, "QueueName")] = name
        r.attrs[(logical, "QueueUrl")] = url

    def _aws_sqs_queuepolicy(self, logical: str, props: dict[str, Any], r: Resolver) -> None:
        for url in props["Queues"]:
            self.client("sqs").set_queue_attributes(
                QueueUrl=url, Attributes={"Policy": json.dumps(props["PolicyDocument"])}
            )
        r.refs[logical] = logical

    def _aws_events_eventbus(self, logical: str, props: dict[str, Any], r: Resolver) -> None:
        arn = self.client("events").create_event_bus(Name=props["Name"])["EventBusArn"]
        r.refs[logical] = props["Name"]
        r.attrs[(logical, "Arn")] = arn
        r.attrs[(logical, "Name")] = props["Name"]

    def _aws_events_rule(self, logical: str, props: dict[str, Any], r: Resolver) -> None:
        events = self.client("events")
        bus = props.get("EventBusName", "default")
        arn = events.put_rule(
            Name=logical,
            EventBusName=bus,
            EventPattern=json.dumps(props["EventPattern"]),
            Description=props.get("Description", ""),
            State="ENABLED",
        )["RuleArn"]
        targets = [{"Id": t["Id"], "Arn": t["Arn"]} for t in props.get("Targets", [])]
        if targets:
            events.put_targets(Rule=logical, EventBusName=bus, Targets=targets)
        r.refs[logical] = logical
        r.attrs[(logical, "Arn")] = arn

"""Units with no AWS: the template reader, the consent hash chain, the guardian rule."""

from __future__ import annotations

import pytest

from facegate.consent.api import RecordConsentRequest
from facegate.consent.entities import GENESIS_HASH, ConsentRecord, record_hash
from facegate.consent.service import _check_guardian
from facegate.core.errors import GuardianRequiredError
from facegate.core.hashing import SubjectHasher, canonical_sha256
from localcloud.gateway import routes_from
from localcloud.template import creation_order, load_template

pytestmark = pytest.mark.unit


def test_template_declares_what_the_design_names() -> None:
    template = load_template()
    resources = template["Resources"]
    functions = {k for k, v in resources.items() if v["Type"] == "AWS::Serverless::Function"}
    assert functions == {
        "ConsentFunction",
        "EmbeddingFunction",
        "MatchingFunction",
        "FallbackFunction",
        "DeletionFunction",
        "AuthorizerFunction",  # device sessions (issue 15): the Lambda authorizer of /v1/device/...
        "WebhooksFunction",  # issue 15: webhook endpoints and delivery
    }
    for name, resource in resources.items():
        if resource["Type"] == "AWS::DynamoDB::Table":
            props = resource["Properties"]
            assert props["BillingMode"] == "PAY_PER_REQUEST", name
            assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"], name
            assert props["SSESpecification"]["SSEType"] == "KMS", name
        if resource["Type"] == "AWS::S3::Bucket":
            block = resource["Properties"]["PublicAccessBlockConfiguration"]
            assert all(block.values()), name
    order = creation_order(resources)
    assert order.index("DataKey") < order.index("ConsentsTable")


def test_every_route_but_public_ones_has_a_scope() -> None:
    routes = routes_from(load_template())
    public = {r.path for r in routes if r.public}
    assert public == {"/v1/health", "/v1/keys", "/v1/openapi.json"}
    tenant_routes = [r for r in routes if not r.public and r.authorizer is None]
    assert all(len(r.scopes) == 1 and r.scopes[0].startswith("facegate/") for r in tenant_routes)


def test_device_routes_and_only_they_take_the_device_session_authorizer_without_caching() -> None:
    """Issue 15: every /v1/device/... route is behind the Lambda authorizer, with no tenant scope; no other route is;
    the authorizer caches nothing (a revoked session must be refused on its next request)."""
    from facegate.devices.entities import ROUTE_OPERATIONS

    template = load_template()
    routes = routes_from(template)
    device = {r.route_key for r in routes if r.authorizer == "DeviceSession"}
    assert device == {r.route_key for r in routes if r.path.startswith("/v1/device/")}
    assert device == set(ROUTE_OPERATIONS)
    assert all(not r.scopes for r in routes if r.authorizer == "DeviceSession")
    config = template["Resources"]["Api"]["Properties"]["Auth"]["Authorizers"]["DeviceSession"]
    assert config["Identity"]["ReauthorizeEvery"] == 0 and config["EnableSimpleResponses"] is True
    assert config["FunctionArn"] == {"Fn::GetAtt": ["AuthorizerFunction", "Arn"]}


def test_subject_refs_are_keyed_and_tenant_scoped() -> None:
    hasher = SubjectHasher(b"p" * 64)
    assert hasher.ref("demo", "alice") == hasher.ref("demo", "alice")
    assert hasher.ref("demo", "alice") != hasher.ref("other", "alice")
    assert hasher.ref("demo", "alice") != SubjectHasher(b"q" * 64).ref("demo", "alice")
    assert "alice" not in hasher.ref("demo", "alice")


def test_record_hash_covers_the_record_and_its_predecessor() -> None:
    record = ConsentRecord(
        record_id="r1",
        tenant_id="demo",
        subject_ref="ref",
        purpose="checkout",
        action="granted",
        notice_version=1,
        notice_sha256="a" * 64,
        locale="en",
        channel="web",
        age_band="adult",
        guardian=None,
        created_at="2026-11-22T00:00:00.000000Z",
        prev_hash=GENESIS_HASH,
    )
    first = record_hash(record)
    assert len(first) == 64 and first == record_hash(record)
    from dataclasses import replace

    assert record_hash(replace(record, prev_hash="b" * 64)) != first
    assert record_hash(replace(record, action="refused")) != first
    assert record_hash(replace(record, receipt="anything")) == first
    assert canonical_sha256({"b": 1, "a": "人"}) == canonical_sha256({"a": "人", "b": 1})


def _request(**overrides: object) -> RecordConsentRequest:
    body = {
        "purpose": "checkout",
        "notice_version": 1,
        "notice_sha256": "a" * 64,
        "decision": "granted",
        "channel": "web",
        "locale": "en",
        "age_band": "child_under_14",
    }
    body.update(overrides)
    return RecordConsentRequest.model_validate(body)


def test_guardian_rule() -> None:
    with pytest.raises(GuardianRequiredError):
        _check_guardian(_request())
    guardian = {"name": "A", "relation": "parent", "contact": "a@example.com", "decision": "refused"}
    with pytest.raises(GuardianRequiredError):
        _check_guardian(_request(guardian=guardian))
    _check_guardian(_request(guardian=guardian, decision="refused"))
    _check_guardian(_request(guardian=dict(guardian, decision="granted")))
    _check_guardian(_request(age_band="adult"))


def test_every_dead_letter_queue_raises_an_alarm_at_its_first_message() -> None:
    """A message in a dead-letter queue is work that failed every retry; in the deletion one it is an erasure that
    has not happened. Every queue that is a dead-letter target (SQS redrive or a function's DeadLetterQueue) has an
    alarm on its visible messages (> 0) that notifies the operations topic."""
    resources = load_template()["Resources"]

    def target(arn: object) -> str:
        assert isinstance(arn, dict) and "Fn::GetAtt" in arn, arn
        get_att = arn["Fn::GetAtt"]
        return str(get_att[0] if isinstance(get_att, list) else get_att.split(".")[0])

    dead_letter = set()
    for resource in resources.values():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::SQS::Queue" and "RedrivePolicy" in props:
            dead_letter.add(target(props["RedrivePolicy"]["deadLetterTargetArn"]))
        if resource["Type"] == "AWS::Serverless::Function" and "DeadLetterQueue" in props:
            dead_letter.add(target(props["DeadLetterQueue"]["TargetArn"]))
    assert "DeletionDeadLetterQueue" in dead_letter and len(dead_letter) >= 4

    alarmed = {}
    for resource in resources.values():
        if resource["Type"] != "AWS::CloudWatch::Alarm":
            continue
        props = resource["Properties"]
        (dimension,) = props["Dimensions"]
        alarmed[target(dimension["Value"])] = props
    assert dead_letter <= set(alarmed), dead_letter - set(alarmed)
    for queue in dead_letter:
        props = alarmed[queue]
        assert (props["Namespace"], props["MetricName"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
        assert (props["ComparisonOperator"], props["Threshold"]) == ("GreaterThanThreshold", 0), queue
        assert props["AlarmActions"] == [{"Ref": "OpsAlarmTopic"}], queue
    assert resources["OpsAlarmTopic"]["Type"] == "AWS::SNS::Topic"

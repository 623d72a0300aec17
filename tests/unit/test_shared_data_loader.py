"""Cold start: every botocore session the service makes (PynamoDB's per item class, the wiring's boto3 session)
shares one data loader, so DynamoDB's service model is parsed once per process, not once per item class."""

from __future__ import annotations

import pytest
from pynamodb.connection import Connection

from facegate.core import dynamo

pytestmark = pytest.mark.unit


def test_pynamodb_connections_share_one_data_loader() -> None:
    # Given two connections, as two item classes have
    a, b = Connection(region="us-east-1"), Connection(region="us-east-1")
    # Then their sessions are separate, but load service models through the same loader (and so its cache)
    assert a.session is not b.session
    assert a.session.get_component("data_loader") is b.session.get_component("data_loader")
    assert a.session.get_component("data_loader") is dynamo.botocore_session().get_component("data_loader")


def test_the_shared_loader_parses_a_service_model_once() -> None:
    loader = dynamo.botocore_session().get_component("data_loader")
    first = loader.load_service_model("dynamodb", "service-2")
    # A second session asking for the same model gets the cached object, not a new parse
    again = dynamo.botocore_session().get_component("data_loader").load_service_model("dynamodb", "service-2")
    assert again is first

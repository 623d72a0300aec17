"""tools/onboard_tenant.py against the emulated stack: a new tenant can use the API at once."""

from __future__ import annotations

import boto3
import pytest
from onboard_tenant import onboard

from localcloud.auth import mint_access_token
from localcloud.cloud import REGION, LocalCloud
from tests.integration.conftest import Api

pytestmark = pytest.mark.integration


def test_onboarded_tenant_gets_purposes_notices_and_a_working_client(cloud: LocalCloud, api: Api) -> None:
    session = boto3.session.Session(region_name=REGION)
    processor = {"name": "ACME Ltd", "contact": "privacy@acme.example"}
    first = onboard(session, cloud.pool_id, cloud.stack.ref("TenantsTable"), "acme", processor)
    again = onboard(session, cloud.pool_id, cloud.stack.ref("TenantsTable"), "acme", processor)
    assert first["client_id"] == again["client_id"] and first["client_secret"]

    # As after redeploying with the client id added to AllowedClientIds:
    cloud.gateway.authorizer.audience.append(first["client_id"])
    token = mint_access_token(region=REGION, pool_id=cloud.pool_id, client_id=first["client_id"], scopes=["consent"])
    notice = api.call("GET", "/v1/notices/checkout?locale=zh-CN", token=token)
    assert notice.status == 200 and notice.json["content"]["processor"] == processor
    assert notice.json["version"] == 1  # running it twice added no second version
    with pytest.raises(ValueError, match="tenant ids"):
        onboard(session, cloud.pool_id, cloud.stack.ref("TenantsTable"), "Bad Tenant", processor)

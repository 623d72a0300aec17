"""DeviceSessionService's rules with in-memory fakes of its own ports (the moto integration tests and the e2e tests
cover the DynamoDB adapter, KMS signing and the gateway's authorizer): what a device token must state, and when
the authorizer refuses it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from facegate.consent.entities import Purpose
from facegate.consent.service import NoticeService
from facegate.core.audit import Auditor
from facegate.core.errors import (
    DeviceSessionExpiredError,
    DeviceSessionRevokedError,
    ForbiddenError,
    InvalidDeviceTokenError,
    InvalidRequestError,
    OperationNotAllowedError,
)
from facegate.core.hashing import SubjectHasher
from facegate.core.tenancy import CallerContext
from facegate.devices.entities import DeviceSession
from facegate.devices.ports import SessionState
from facegate.devices.service import DeviceSessionService, require_operation
from tests.unit.domain.fakes import Clock, InMemoryAuditLog, InMemoryTenants, RecordingSigner

pytestmark = pytest.mark.unit

SHOP = CallerContext(tenant_id="demo", client_id="shop-backend", scopes=frozenset({"verify"}))


@dataclass
class InMemoryDeviceSessions:
    sessions: dict[tuple[str, str, str], DeviceSession] = field(default_factory=dict)
    revoked: dict[tuple[str, str], int] = field(default_factory=dict)

    def create(self, session: DeviceSession) -> None:
        self.sessions[(session.tenant_id, session.subject_ref, session.session_id)] = session

    def state(self, tenant_id: str, subject_ref: str, session_id: str, purpose: str) -> SessionState:
        if (tenant_id, session_id) in self.revoked:
            return "revoked"
        session = self.sessions.get((tenant_id, subject_ref, session_id))
        return "active" if session is not None and session.purpose == purpose else "unknown"

    def revoke(self, tenant_id: str, session_id: str, until: int) -> None:
        self.revoked[(tenant_id, session_id)] = until


def read_unsigned(token: str) -> dict[str, Any] | None:
    """What the signature check hands on for a token RecordingSigner 'signed' (None for anything else)."""
    return json.loads(token.removeprefix("unsigned.")) if token.startswith("unsigned.") else None


@pytest.fixture
def world() -> dict[str, Any]:
    tenants = InMemoryTenants()
    tenants.put_purpose("demo", Purpose("checkout", "Checkout", 365))
    clock = Clock(datetime(2026, 3, 1, 12, 0, tzinfo=UTC))
    audit = InMemoryAuditLog()
    auditor = Auditor(audit)
    hasher = SubjectHasher(b"p" * 48)
    sessions = InMemoryDeviceSessions()
    service = DeviceSessionService(
        sessions=sessions,
        signer=RecordingSigner(),
        reader=read_unsigned,
        notices=NoticeService(tenants, auditor, clock),
        hasher=hasher,
        auditor=auditor,
        issuer="facegate",
        clock=clock,
    )
    return {"service": service, "sessions": sessions, "clock": clock, "audit": audit, "hasher": hasher}


def minted(world: dict[str, Any], ops: tuple[str, ...] = ("notice", "verify"), ttl: int = 300) -> str:
    subject = world["hasher"].subject("demo", "alice")
    return world["service"].mint(SHOP, subject, "checkout", ops, ttl).token


def forged(token: str, **changes: Any) -> str:
    claims = read_unsigned(token)
    assert claims is not None
    return "unsigned." + json.dumps({**claims, **changes})


def test_a_minted_token_grants_its_operations_on_their_routes(world: dict[str, Any]) -> None:
    token = minted(world)
    grant = world["service"].authorize(token, "POST /v1/device/verifications")
    assert (grant.tenant_id, grant.subject_id, grant.purpose) == ("demo", "alice", "checkout")
    assert grant.operations == {"notice", "verify"}
    assert world["service"].authorize(token, "GET /v1/device/session").session_id == grant.session_id
    assert world["audit"].actions() == ["device_session.minted"]


@pytest.mark.parametrize(
    "route", ["POST /v1/device/consents", "POST /v1/device/enrolments", "POST /v1/verifications", "GET /v1/keys"]
)
def test_a_route_outside_the_operations_or_not_a_device_route_is_refused(world: dict[str, Any], route: str) -> None:
    with pytest.raises(OperationNotAllowedError):
        world["service"].authorize(minted(world), route)


def test_expired_at_exp_and_after(world: dict[str, Any]) -> None:
    token = minted(world, ttl=60)
    world["clock"].advance(seconds=59)
    world["service"].authorize(token, "GET /v1/device/notice")
    world["clock"].advance(seconds=1)
    with pytest.raises(DeviceSessionExpiredError):
        world["service"].authorize(token, "GET /v1/device/notice")


def test_revoked_or_erased_sessions_are_refused(world: dict[str, Any]) -> None:
    token, other = minted(world), minted(world)
    session_id = read_unsigned(token)["jti"]  # type: ignore[index]
    world["service"].revoke(SHOP, session_id)
    with pytest.raises(DeviceSessionRevokedError):
        world["service"].authorize(token, "GET /v1/device/notice")
    world["sessions"].sessions.clear()  # erasure of the subject, or withdrawal of the purpose
    with pytest.raises(DeviceSessionRevokedError):
        world["service"].authorize(other, "GET /v1/device/notice")
    assert world["audit"].actions()[-1] == "device_session.revoked"


@pytest.mark.parametrize(
    "changes",
    [
        {"aud": "demo"},
        {"typ": "verification-result"},
        {"iss": "someone-else"},
        {"ops": []},
        {"ops": ["notice", "identify"]},
        {"ops": "notice"},
        {"exp": True},
        {"exp": "9999999999"},
        {"sub": ""},
        {"tenant": None},
        {"jti": 7},
        {"iat": 0},  # lives longer than 10 minutes
    ],
)
def test_claims_that_a_device_token_never_has_are_invalid(world: dict[str, Any], changes: dict[str, Any]) -> None:
    with pytest.raises(InvalidDeviceTokenError):
        world["service"].authorize(forged(minted(world), **changes), "GET /v1/device/session")


@pytest.mark.parametrize("token", [None, "", "garbage", "a.b.c"])
def test_no_token_or_an_unreadable_one_is_invalid(world: dict[str, Any], token: str | None) -> None:
    with pytest.raises(InvalidDeviceTokenError):
        world["service"].authorize(token, "GET /v1/device/session")


@pytest.mark.parametrize(
    ("ops", "ttl"), [((), 300), (("notice", "delete"), 300), (("notice",), 601), (("notice",), 59)]
)
def test_mint_bounds(world: dict[str, Any], ops: tuple[str, ...], ttl: int) -> None:
    with pytest.raises(InvalidRequestError):
        minted(world, ops, ttl)


def test_a_device_can_neither_mint_nor_revoke(world: dict[str, Any]) -> None:
    grant = world["service"].authorize(minted(world), "GET /v1/device/session")
    device = CallerContext("demo", "device:x", frozenset(), device_session=grant)
    with pytest.raises(ForbiddenError):
        world["service"].mint(device, world["hasher"].subject("demo", "bob"), "checkout", ["verify"])
    with pytest.raises(ForbiddenError):
        world["service"].revoke(device, grant.session_id)


def test_handlers_second_check(world: dict[str, Any]) -> None:
    grant = world["service"].authorize(minted(world, ("notice",), 60), "GET /v1/device/session")
    device = CallerContext("demo", "device:x", frozenset(), device_session=grant)
    assert require_operation(device, "notice", world["clock"]()) is grant
    with pytest.raises(OperationNotAllowedError):
        require_operation(device, "verify", world["clock"]())
    world["clock"].advance(seconds=60)
    with pytest.raises(DeviceSessionExpiredError):
        require_operation(device, None, world["clock"]())
    with pytest.raises(ForbiddenError):
        require_operation(SHOP, None, world["clock"]())

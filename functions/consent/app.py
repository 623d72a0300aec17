"""Consent function: notices, consent grant/refusal/withdrawal, history, receipts and public keys.

Thin adapter: parse and validate the request, call one service, map the result to a response.
"""

from __future__ import annotations

from importlib import resources
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.utilities.typing import LambdaContext

from facegate import __version__
from facegate.api.docs import returns
from facegate.api.handler import NO_STORE, lambda_entry, once
from facegate.api.idempotency import Idempotency
from facegate.api.resolver import caller, create_resolver, device_caller, require_scope
from facegate.consent.api import (
    ConsentHistoryResponse,
    ConsentRecordResponse,
    ConsentStateResponse,
    ConsentStatesResponse,
    Locale,
    NoticeResponse,
    PurposeName,
    PutNoticeRequest,
    RecordConsentRequest,
)
from facegate.consent.entities import ConsentRecord, Notice
from facegate.core.config import get_settings
from facegate.devices.api import (
    CreateDeviceSessionRequest,
    DeviceSessionResponse,
    DeviceSessionView,
    RecordDeviceConsentRequest,
)
from facegate.devices.service import require_operation
from facegate.wiring import container

SubjectId = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:@\-]+$")]
PurposePath = Annotated[PurposeName, Path()]

OPENAPI = (resources.files("facegate") / "openapi.json").read_text(encoding="utf-8")

settings = get_settings()
app = create_resolver(settings.max_json_body_bytes)
idempotency = Idempotency(settings.idempotency_table, settings.client_limits)


def _caller():
    return caller(app, container().tenant_for_client)


def _notice(notice: Notice) -> dict[str, Any]:
    return NoticeResponse(
        purpose=notice.purpose,
        locale=notice.locale,
        version=notice.version,
        sha256=notice.sha256,
        created_at=notice.created_at,
        content=notice.content,  # type: ignore[arg-type]
    ).model_dump(mode="json")


def _record(subject_id: str, record: ConsentRecord) -> dict[str, Any]:
    return ConsentRecordResponse(
        record_id=record.record_id,
        subject_id=subject_id,
        purpose=record.purpose,
        action=record.action,  # type: ignore[arg-type]
        notice_version=record.notice_version,
        notice_sha256=record.notice_sha256,
        locale=record.locale,
        channel=record.channel,
        age_band=record.age_band,
        guardian=record.guardian,  # type: ignore[arg-type]
        created_at=record.created_at,
        prev_hash=record.prev_hash,
        record_hash=record.record_hash,
        receipt=record.receipt,
    ).model_dump(mode="json")


@app.get("/v1/health")
def health() -> dict[str, str]:
    return {"status": "ok", "version": __version__}


@app.get("/v1/keys")
def public_keys() -> dict[str, Any]:
    """JWKS of the key that signs consent receipts and verification results."""
    return container().signer.jwks()


@app.get("/v1/openapi.json")
def openapi() -> Response[str]:
    """The whole API's document, generated from every function's routes (tools/openapi.py)."""
    return Response(status_code=200, content_type="application/json", body=OPENAPI)


@app.get("/v1/notices/<purpose>", responses=returns(NoticeResponse))
def get_notice(purpose: PurposePath, locale: Annotated[Locale, Query()] = "zh-CN") -> dict[str, Any]:
    who = _caller()
    return _notice(container().notices.current(who.tenant_id, purpose, locale))


@app.put("/v1/notices/<purpose>", responses=returns(NoticeResponse, 201))
def put_notice(purpose: PurposePath, body: PutNoticeRequest) -> Response[dict[str, Any]]:
    who = _caller()
    notice = container().notices.publish(who, purpose, body.locale, body.content)
    return Response(status_code=201, content_type="application/json", body=_notice(notice))


@app.post("/v1/subjects/<subject_id>/consents", responses=returns(ConsentRecordResponse, 201))
def record_consent(subject_id: SubjectId, body: RecordConsentRequest) -> Response[dict[str, Any]]:
    who = _caller()
    subject = container().subject(who, subject_id)
    answer = once(
        app,
        idempotency,
        "record_consent",
        who.tenant_id,
        subject.ref,
        body,
        lambda request: _record(subject_id, container().consents.record(who, subject, request)),
    )
    return Response(status_code=201, content_type="application/json", body=answer)


@app.get("/v1/subjects/<subject_id>/consents", responses=returns(ConsentStatesResponse))
def get_consents(subject_id: SubjectId) -> dict[str, Any]:
    who = _caller()
    states = container().consents.states(who, container().subject(who, subject_id))
    return ConsentStatesResponse(
        subject_id=subject_id,
        consents=[
            ConsentStateResponse(
                purpose=s.purpose,
                status=s.status,  # type: ignore[arg-type]
                active=s.status == "granted",
                record_id=s.record_id,
                notice_version=s.notice_version,
                notice_sha256=s.notice_sha256,
                age_band=s.age_band,
                updated_at=s.updated_at,
            )
            for s in states
        ],
    ).model_dump(mode="json")


@app.get("/v1/subjects/<subject_id>/consents/history", responses=returns(ConsentHistoryResponse))
def get_history(subject_id: SubjectId) -> dict[str, Any]:
    who = _caller()
    records = container().consents.history(who, container().subject(who, subject_id))
    return ConsentHistoryResponse.model_validate(
        {"subject_id": subject_id, "records": [_record(subject_id, r) for r in records]}
    ).model_dump(mode="json")


@app.delete("/v1/subjects/<subject_id>/consents/<purpose>", responses=returns(ConsentRecordResponse))
def withdraw(subject_id: SubjectId, purpose: PurposePath) -> dict[str, Any]:
    who = _caller()
    return _record(subject_id, container().consents.withdraw(who, container().subject(who, subject_id), purpose))


# ---------------------------------------------------------------- device sessions (issue 15)
# Minted and revoked by the tenant's backend (tenant token, scope verify); the /v1/device/... routes take the device
# token (functions/authorizer checked it) and read the subject and purpose from it, never from the request.

DeviceSessionIdPath = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")]
NO_CONTENT = {204: {"description": "Revoked (also when it already was, or never existed)"}}


@app.post("/v1/device-sessions", responses=returns(DeviceSessionResponse, 201))
def mint_device_session(body: CreateDeviceSessionRequest) -> Response[dict[str, Any]]:
    """A token for one person's device: this subject, this purpose, these operations, for at most 10 minutes."""
    who = _caller()
    require_scope(who, "verify")
    subject = container().subject(who, body.subject_id)
    minted = container().devices.mint(who, subject, body.purpose, body.operations, body.ttl_seconds)
    answer = DeviceSessionResponse.of(minted).model_dump(mode="json")
    return Response(status_code=201, content_type="application/json", body=answer, headers=NO_STORE)


@app.delete("/v1/device-sessions/<device_session_id>", responses=NO_CONTENT)
def revoke_device_session(device_session_id: DeviceSessionIdPath) -> Response[str]:
    """Its token is refused from the next request on (idempotent)."""
    who = _caller()
    require_scope(who, "verify")
    container().devices.revoke(who, device_session_id)
    return Response(status_code=204, body="")


@app.get("/v1/device/session", responses=returns(DeviceSessionView))
def device_session() -> dict[str, Any]:
    """The device's own session: its subject, purpose, operations, expiry and the non-face alternatives."""
    grant = require_operation(device_caller(app), None, container().now())
    alternatives = container().liveness.alternatives(grant.tenant_id, grant.purpose)
    return DeviceSessionView.of(grant, alternatives).model_dump(mode="json")


@app.get("/v1/device/notice", responses=returns(NoticeResponse))
def device_notice(locale: Annotated[Locale, Query()] = "zh-CN") -> dict[str, Any]:
    grant = require_operation(device_caller(app), "notice", container().now())
    return _notice(container().notices.current(grant.tenant_id, grant.purpose, locale))


@app.post("/v1/device/consents", responses=returns(ConsentRecordResponse, 201))
def device_record_consent(body: RecordDeviceConsentRequest) -> Response[dict[str, Any]]:
    """The person's consent or refusal for the token's subject and purpose (as POST /v1/subjects/{id}/consents)."""
    who = device_caller(app)
    grant = require_operation(who, "consent", container().now())
    request = RecordConsentRequest(purpose=grant.purpose, **dict(body))
    subject = container().subject(who, grant.subject_id)
    answer = once(
        app,
        idempotency,
        "record_consent",
        who.tenant_id,
        subject.ref,
        request,
        lambda parsed: _record(grant.subject_id, container().consents.record(who, subject, parsed)),
    )
    return Response(status_code=201, content_type="application/json", body=answer)


# ---------------------------------------------------------------- end device sessions


@lambda_entry(idempotency)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)

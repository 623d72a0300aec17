"""Embedding function: enrolment over HTTP (inline image or presigned upload) and S3 upload events.

Thin adapter: parse and validate, call the enrolment service, map the result to a response.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.utilities.data_classes import S3Event
from aws_lambda_powertools.utilities.typing import LambdaContext

from facegate.api.docs import returns
from facegate.api.handler import lambda_entry, once
from facegate.api.idempotency import Idempotency
from facegate.api.images import decode_base64_image
from facegate.api.resolver import caller, create_resolver, device_caller
from facegate.core.config import get_settings
from facegate.core.tenancy import CallerContext
from facegate.devices.api import DeviceEnrolmentRequest
from facegate.devices.service import require_operation
from facegate.enrolment.api import EnrolmentResponse, StartEnrolmentRequest
from facegate.enrolment.entities import Enrolment
from facegate.wiring import container

SubjectId = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:@\-]+$")]
EnrolmentId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")]

settings = get_settings()
# An inline image of 5 MB is about 6.7 MB in base64, inside a small JSON body.
app = create_resolver(max_body_bytes=settings.max_image_bytes * 4 // 3 + 64 * 1024)
idempotency = Idempotency(settings.idempotency_table, settings.client_limits)


def _response(subject_id: str, job: Enrolment, upload: dict[str, Any] | None = None) -> dict[str, Any]:
    template = None
    if job.status == "completed":
        template = {
            "template_id": job.template_id,
            "model_id": job.model_id,
            "model_version": job.model_version,
            "expires_at": job.template_expires_at,
        }
    return EnrolmentResponse.model_validate(
        {
            "enrolment_id": job.enrolment_id,
            "subject_id": subject_id,
            "purpose": job.purpose,
            "status": job.status,
            "reason": job.reason,
            "detail": job.detail,
            "created_at": job.created_at,
            "updated_at": job.updated_at,
            "template": template,
            "upload": upload,
        }
    ).model_dump(mode="json", exclude_none=True)


@app.post("/v1/subjects/<subject_id>/enrolments", responses=returns(EnrolmentResponse, 201, 202))
def start_enrolment(subject_id: SubjectId, body: StartEnrolmentRequest) -> Response[dict[str, Any]]:
    return _start_enrolment(caller(app, container().tenant_for_client), subject_id, body)


def _start_enrolment(who: CallerContext, subject_id: str, body: StartEnrolmentRequest) -> Response[dict[str, Any]]:
    """POST /v1/subjects/{subject_id}/enrolments and POST /v1/device/enrolments (the token's subject and purpose)."""
    subject = container().subject(who, subject_id)

    def operation(request: StartEnrolmentRequest) -> dict[str, Any]:
        image = decode_base64_image(request.image) if request.image is not None else None
        started = container().enrolments.start(
            who,
            subject,
            request.purpose,
            image,
            request.content_type,
            replace_existing=request.replace,
            liveness=request.liveness.proof() if request.liveness is not None else None,
        )
        upload = started.upload.__dict__ if started.upload else None
        return _response(subject_id, started.job, upload)

    answer = once(app, idempotency, "start_enrolment", who.tenant_id, subject.ref, body, operation)
    return Response(
        status_code=202 if answer["status"] == "pending" else 201, content_type="application/json", body=answer
    )


@app.get("/v1/subjects/<subject_id>/enrolments/<enrolment_id>", responses=returns(EnrolmentResponse))
def get_enrolment(subject_id: SubjectId, enrolment_id: EnrolmentId) -> dict[str, Any]:
    who = caller(app, container().tenant_for_client)
    return _response(subject_id, container().enrolments.status(who, container().subject(who, subject_id), enrolment_id))


# ---------------------------------------------------------------- device sessions (issue 15)


@app.post("/v1/device/enrolments", responses=returns(EnrolmentResponse, 201, 202))
def device_start_enrolment(body: DeviceEnrolmentRequest) -> Response[dict[str, Any]]:
    """Enrol the token's subject for its purpose (as POST /v1/subjects/{subject_id}/enrolments, never replacing)."""
    who = device_caller(app)
    grant = require_operation(who, "enrol", container().now())
    request = StartEnrolmentRequest(purpose=grant.purpose, **dict(body))
    return _start_enrolment(who, grant.subject_id, request)


# ---------------------------------------------------------------- end device sessions


def _on_uploads(event: S3Event, context: LambdaContext) -> dict[str, Any]:
    service = container().enrolments
    outcomes = []
    for record in event.records:
        # S3 URL-encodes keys in event notifications.
        job = service.on_upload(unquote_plus(record.s3.get_object.key), request_id=context.aws_request_id)
        outcomes.append(job.status if job else "ignored")
    return {"processed": len(outcomes), "outcomes": outcomes}


@lambda_entry(idempotency)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if event.get("Records") and event["Records"][0].get("eventSource") == "aws:s3":
        return _on_uploads(S3Event(event), context)
    return app.resolve(event, context)

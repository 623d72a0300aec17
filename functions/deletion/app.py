"""Deletion function: erasure requests over HTTP, erasure jobs from SQS (own requests and
ConsentWithdrawn events from EventBridge), the scheduled retention sweep, and the compliance report.

Thin adapter: parse and validate, call the deletion service, map the result to a response.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from facegate.api.docs import returns
from facegate.api.handler import lambda_entry
from facegate.api.resolver import caller, create_resolver
from facegate.core.config import get_settings
from facegate.core.observability import logger
from facegate.deletion.api import DeletionJobResponse
from facegate.deletion.entities import DeletionJob
from facegate.wiring import container

SubjectId = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:@\-]+$")]
DeletionId = Annotated[str, Path(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9\-]+$")]

settings = get_settings()
app = create_resolver(settings.max_json_body_bytes)
# Always answer with batchItemFailures (never raise): SQS retries exactly the failed records.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def _job(job: DeletionJob) -> dict[str, Any]:
    body: dict[str, Any] = {
        "deletion_id": job.deletion_id,
        "status": job.status,
        "scope": job.scope,
        "requested_at": job.requested_at,
    }
    if job.purposes:
        body["purposes"] = job.purposes
    if job.status == "completed":
        body.update(completed_at=job.completed_at, removed=job.counts, receipt=job.receipt)
    return body


@app.delete("/v1/subjects/<subject_id>", responses=returns(DeletionJobResponse, 202))
def erase_subject(subject_id: SubjectId) -> Response[dict[str, Any]]:
    who = caller(app, container().tenant_for_client)
    job = container().deletions.request_subject_erasure(who, container().subject(who, subject_id))
    return Response(status_code=202, content_type="application/json", body=_job(job))


@app.get("/v1/deletions/<deletion_id>", responses=returns(DeletionJobResponse))
def get_deletion(deletion_id: DeletionId) -> dict[str, Any]:
    who = caller(app, container().tenant_for_client)
    return _job(container().deletions.status(who, deletion_id))


@app.get("/v1/compliance/report")
def compliance_report() -> dict[str, Any]:
    who = caller(app, container().tenant_for_client)
    purposes = [
        {"purpose": p.name, "assessment_id": p.identification_assessment_id}
        for p in container().tenants.purposes(who.tenant_id)
        if p.identification_enabled
    ]
    return container().deletions.report(who, purposes, settings.audit_table)


def _erase(record: SQSRecord) -> None:
    message = json.loads(record.body)
    service = container().deletions
    try:
        if message.get("detail-type") == "ConsentWithdrawn":
            service.on_consent_withdrawn(message["detail"])
        else:
            service.run(message["tenant_id"], message["deletion_id"])
    except Exception:
        # Retry with backoff: the message comes back later each time, then goes to the dead-letter queue.
        receive_count = int(record.attributes.approximate_receive_count or 1)
        try:
            container().retry_later(settings.deletion_queue_url, record.receipt_handle, receive_count)
        except Exception:  # without the backoff SQS still redelivers after the visibility timeout
            logger.warning("erasure backoff not applied")
        raise


@lambda_entry()
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if event.get("Records"):
        return process_partial_response(event=event, record_handler=_erase, processor=processor, context=context)
    if "rawPath" in event:
        return app.resolve(event, context)
    return {"swept": container().deletions.sweep()}

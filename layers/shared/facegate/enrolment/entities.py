"""Enrolment's entities: the enrolment job (pending → completed | failed with a reason code; no biometric
data) and where a presigned upload lands.

A pending job is in one of two phases, each with a deadline: `upload` (a presigned upload is awaited)
and `processing` (an image is being enrolled). Past its deadline nothing can still be working on it, so
it can be ended (see EnrolmentService): a crash never leaves a job pending for good.
"""

from __future__ import annotations

from dataclasses import dataclass

from facegate.core.uploads import PRESIGN_SECONDS, PresignedUpload

JOB_RECORD_DAYS = 30
UPLOAD_PREFIX = "enrolments/"
# Deadlines of a pending job. A processing run lives inside one invocation of the embedding function, so it
# ends (or is killed) within the function's Timeout (30 s); the margin covers clocks of other instances.
PROCESSING_SECONDS = 120
# S3's event for an upload made just before the presigned URL expired reaches the function within this.
UPLOAD_GRACE_SECONDS = 120
UPLOAD_SECONDS = PRESIGN_SECONDS + UPLOAD_GRACE_SECONDS
TEMPLATE_CAP = 5  # templates per subject and purpose
CONSISTENCY_LEVEL = "high"  # a further enrolment must match the existing ones at this level


@dataclass(frozen=True)
class Enrolment:
    enrolment_id: str
    tenant_id: str
    subject_ref: str
    purpose: str
    status: str
    actor: str
    created_at: str
    updated_at: str
    expires_at: int
    reason: str | None = None
    detail: str | None = None
    template_id: str | None = None
    model_id: str | None = None
    model_version: str | None = None
    template_expires_at: int | None = None
    subject_sealed: bytes | None = None
    phase: str | None = None
    deadline: int | None = None
    consent_epoch: str | None = None
    replace: bool = False


@dataclass(frozen=True)
class EnrolmentStarted:
    job: Enrolment
    upload: PresignedUpload | None = None


def upload_key(tenant_id: str, subject_ref: str, enrolment_id: str) -> str:
    """Object keys carry the tenant, the subject's keyed hash (so erasure finds pending uploads) and a
    random id; never the subject id."""
    return f"{UPLOAD_PREFIX}{tenant_id}/{subject_ref}/{enrolment_id}"


def parse_upload_key(key: str) -> tuple[str, str, str] | None:
    parts = key.split("/")
    if len(parts) != 4 or parts[0] + "/" != UPLOAD_PREFIX or not all(parts[1:]):
        return None
    return parts[1], parts[2], parts[3]

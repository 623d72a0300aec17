"""Contracts of the embedding function (enrolment)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from facegate.consent.api import PurposeName
from facegate.liveness.api import LivenessBurst

ContentType = Literal["image/jpeg", "image/png", "image/webp"]


class StartEnrolmentRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    purpose: PurposeName
    image: str | None = Field(
        None, description="Inline image, base64 (at most 5 MB decoded). Omit to get a presigned upload."
    )
    content_type: ContentType = Field("image/jpeg", description="Content type of the upload to come")
    liveness: LivenessBurst | None = Field(
        None,
        description="A burst answering a liveness session's challenge, instead of image: the template is made from "
        "its best frontal frame if it is judged live (else 422 liveness_failed). Without it (a single image or an "
        "upload) only a purpose whose liveness policy is optional enrols (else 403 liveness_required)",
    )
    replace: bool = Field(
        False,
        description=(
            "Replace the subject's templates for this purpose with this face (audited). Without it, a "
            "further enrolment must match the existing ones at the high level (else 409 "
            "enrolment_mismatch), and at most 5 are kept (else 409 too_many_templates)."
        ),
    )


class UploadInstructions(BaseModel):
    url: str
    fields: dict[str, str]
    expires_in: int
    max_bytes: int
    content_type: str


class TemplateSummary(BaseModel):
    template_id: str
    model_id: str
    model_version: str
    expires_at: int


class EnrolmentResponse(BaseModel):
    enrolment_id: str
    subject_id: str
    purpose: str
    status: Literal["pending", "completed", "failed"]
    reason: str | None = Field(
        None,
        description="Why it failed: the error code (e.g. no_face), upload_not_received (no upload before the "
        "URL expired) or processing_interrupted (processing ended without an outcome). A pending enrolment "
        "always ends: at most 2 minutes after an inline start, 9 minutes after a presigned one",
    )
    detail: str | None = None
    created_at: str
    updated_at: str
    template: TemplateSummary | None = Field(None, description="Metadata only; templates never leave")
    upload: UploadInstructions | None = None

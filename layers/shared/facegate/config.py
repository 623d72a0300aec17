"""Configuration parsed once per cold start from the environment the SAM template sets."""

from __future__ import annotations

import os
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field


class Settings(BaseModel):
    """Every environment variable a function reads, validated in one place."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    stage: str = Field("dev", alias="STAGE")
    region: str = Field("us-east-1", alias="AWS_REGION")
    tenants_table: str = Field(alias="TENANTS_TABLE")
    consents_table: str = Field(alias="CONSENTS_TABLE")
    templates_table: str = Field("", alias="TEMPLATES_TABLE")
    challenges_table: str = Field("", alias="CHALLENGES_TABLE")
    sessions_table: str = Field("", alias="SESSIONS_TABLE")
    audit_table: str = Field(alias="AUDIT_TABLE")
    idempotency_table: str = Field(alias="IDEMPOTENCY_TABLE")
    jobs_table: str = Field("", alias="JOBS_TABLE")
    uploads_bucket: str = Field("", alias="UPLOADS_BUCKET")
    galleries_bucket: str = Field("", alias="GALLERIES_BUCKET")
    data_key_id: str = Field("", alias="DATA_KEY_ID")
    signing_key_id: str = Field(alias="SIGNING_KEY_ID")
    pepper_secret_arn: str = Field(alias="PEPPER_SECRET_ARN")
    event_bus_name: str = Field(alias="EVENT_BUS_NAME")
    deletion_queue_url: str = Field("", alias="DELETION_QUEUE_URL")
    review_queue_url: str = Field("", alias="REVIEW_QUEUE_URL")
    max_json_body_bytes: int = Field(64 * 1024, alias="MAX_JSON_BODY_BYTES")
    max_image_bytes: int = Field(5 * 1024 * 1024, alias="MAX_IMAGE_BYTES")
    gallery_cache_bytes: int = Field(1024 * 1024 * 1024, alias="GALLERY_CACHE_BYTES")
    audit_retention_days: int = Field(1200, alias="AUDIT_RETENTION_DAYS")
    issuer: str = Field("facegate", alias="RESULT_ISSUER")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings from the process environment; cached so a warm Lambda parses them once."""
    return Settings.model_validate(dict(os.environ))

"""Configuration parsed once per cold start from the environment the SAM template sets."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_BACKOFF_SECONDS = 20  # botocore's standard retry mode: full-jitter backoff capped at 20 s


@dataclass(frozen=True)
class ClientLimits:
    """Connect and read timeouts and the attempt budget of every AWS client a function makes.

    Without them botocore waits 60 s per read and PynamoDB 30 s, four times over: a frozen dependency
    then outlasts the function's own timeout instead of failing fast with an answer.
    """

    connect_timeout: float = 1.0
    read_timeout: float = 3.0
    max_attempts: int = 2  # in all, the first attempt included

    @property
    def worst_case_seconds(self) -> float:
        """The longest one AWS call can take: every attempt timing out, plus the backoff between them
        (standard mode waits at most 2**i seconds before retry i+1, throttling included)."""
        backoff = sum(min(2**i, MAX_BACKOFF_SECONDS) for i in range(self.max_attempts - 1))
        return self.max_attempts * (self.connect_timeout + self.read_timeout) + backoff

    def botocore_config(self) -> Any:
        """The botocore Config of boto3 clients (`total_max_attempts` counts the first attempt too)."""
        from botocore.config import Config

        return Config(
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            retries={"total_max_attempts": self.max_attempts, "mode": "standard"},
        )


class FallbackSettings(BaseModel):
    """The fallback function's own settings (part of Settings, read from the same environment at once)."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    email_sender: str = Field("no-reply@facegate.example", alias="EMAIL_SENDER")
    sms_sender_id: str | None = Field(None, alias="SMS_SENDER_ID")
    subject_limit_per_minute: int = Field(10, alias="FALLBACK_SUBJECT_LIMIT_PER_MINUTE", ge=1)
    tenant_limit_per_minute: int = Field(600, alias="FALLBACK_TENANT_LIMIT_PER_MINUTE", ge=1)
    destination_limit_per_minute: int = Field(5, alias="FALLBACK_DESTINATION_LIMIT_PER_MINUTE", ge=1)
    otp_guesses_per_day: int = Field(10, alias="FALLBACK_OTP_GUESSES_PER_DAY", ge=1)


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
    proctoring_table: str = Field("", alias="PROCTORING_TABLE")
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
    # Per function in template.yaml: (connect + read) x attempts plus backoff stays below its Timeout.
    client_connect_timeout: float = Field(ClientLimits.connect_timeout, alias="CLIENT_CONNECT_TIMEOUT_SECONDS", gt=0)
    client_read_timeout: float = Field(ClientLimits.read_timeout, alias="CLIENT_READ_TIMEOUT_SECONDS", gt=0)
    client_max_attempts: int = Field(ClientLimits.max_attempts, alias="CLIENT_MAX_ATTEMPTS", ge=1, le=10)

    # -- webhooks (issue 15): endpoints and delivery log, the queue of deliveries, the local cloud's http receiver
    webhooks_table: str = Field("", alias="WEBHOOKS_TABLE")
    webhook_queue_url: str = Field("", alias="WEBHOOK_QUEUE_URL")
    webhook_allow_local_http: bool = Field(False, alias="WEBHOOK_ALLOW_LOCAL_HTTP")
    # Seconds to wait after each failed attempt, comma-separated (empty: facegate.webhooks.entities.RETRY_SECONDS).
    webhook_retry_seconds: str = Field("", alias="WEBHOOK_RETRY_SECONDS", pattern=r"^(\d+(,\d+)*)?$")
    # -- end webhooks

    fallback: FallbackSettings = Field(default_factory=lambda: FallbackSettings.model_validate({}))

    @model_validator(mode="before")
    @classmethod
    def _fallback_from_the_same_environment(cls, data: Any) -> Any:
        if isinstance(data, dict) and "fallback" not in data:
            return {**data, "fallback": data}
        return data

    @property
    def client_limits(self) -> ClientLimits:
        return ClientLimits(self.client_connect_timeout, self.client_read_timeout, self.client_max_attempts)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings from the process environment; cached so a warm Lambda parses them once."""
    return Settings.model_validate(dict(os.environ))

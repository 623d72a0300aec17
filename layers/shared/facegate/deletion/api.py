"""Contracts of the deletion function (erasure jobs)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class DeletionJobResponse(BaseModel):
    deletion_id: str
    status: str = Field(description="queued until the erasure job has run, then completed")
    scope: str = Field(description="subject: every purpose; purpose: the purposes listed")
    requested_at: str
    purposes: list[str] | None = None
    completed_at: str | None = None
    removed: dict[str, int] | None = Field(None, description="Items removed per store, once completed")
    receipt: str | None = Field(None, description="ES256 JWT receipt of the erasure; verify with /v1/keys")

"""Consent's entities: purposes and their versioned notices, consent records (an append-only, hash-chained
history per subject) and the current state per purpose.

A purpose's state also names its *consent epoch*: the record id of the grant that began the current
uninterrupted granted period. Face data is stamped with the epoch it was enrolled under and is usable
only while the state is granted with that same epoch (facegate.matching.entities.usable_templates).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from facegate.core.hashing import canonical_sha256

GENESIS_HASH = "0" * 64
ACTIVE = "granted"


@dataclass(frozen=True)
class Purpose:
    name: str
    display_name: str
    retention_days: int
    assessment_id: str | None = None
    identification_enabled: bool = False
    identification_assessment_id: str | None = None
    expose_scores: bool = False  # verification/identification answers carry raw scores (audited)


@dataclass(frozen=True)
class Notice:
    purpose: str
    locale: str
    version: int
    sha256: str
    content: dict[str, Any] = field(default_factory=dict)
    created_at: str = ""


@dataclass(frozen=True)
class ConsentRecord:
    record_id: str
    tenant_id: str
    subject_ref: str
    purpose: str
    action: str
    notice_version: int
    notice_sha256: str
    locale: str
    channel: str
    age_band: str
    guardian: dict[str, Any] | None
    created_at: str
    prev_hash: str
    record_hash: str = ""
    receipt: str = ""
    request_id: str | None = None


@dataclass(frozen=True)
class ConsentState:
    purpose: str
    status: str
    record_id: str
    notice_version: int
    notice_sha256: str
    age_band: str
    updated_at: str
    epoch: str | None = None  # the record id of the grant that began the current granted period
    epoch_started_at: str | None = None  # that grant's created_at

    @property
    def active(self) -> bool:
        return self.status == "granted" and self.epoch is not None


def notice_sha256(purpose: str, locale: str, version: int, content: dict[str, Any]) -> str:
    """What a consent record points at: the exact text shown, its purpose, locale and version."""
    return canonical_sha256({"purpose": purpose, "locale": locale, "version": version, "content": content})


def record_hash(record: ConsentRecord) -> str:
    """Hash of everything in the record but the hash and receipt themselves (chained by prev_hash)."""
    body = asdict(record)
    body.pop("record_hash")
    body.pop("receipt")
    body.pop("request_id")
    return canonical_sha256(body)

"""Deletion's entities: erasure jobs (queued → running → completed, with per-store counts and a receipt), the
subject-scoped stores they erase, and the filing thresholds of the compliance report.

While a job runs it holds the subject's keyed hash; when it completes that attribute is removed, so
the finished job names no subject.
"""

from __future__ import annotations

from dataclasses import dataclass, field

FILING_THRESHOLD = 100_000  # CAC measures art. 15: file with the regulator above this many individuals
WARNING_THRESHOLD = 80_000


@dataclass
class DeletionJob:
    deletion_id: str
    tenant_id: str
    scope: str
    requested_at: str
    status: str = "queued"
    subject_ref: str | None = None
    purposes: list[str] | None = None
    ended_epoch: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    receipt: str | None = None
    completed_at: str | None = None
    seconds: float | None = None


@dataclass(frozen=True)
class TableStore:
    """One table's share of a subject: its partition, optionally narrowed to sort keys of a purpose."""

    name: str
    table: str
    partition: str  # the partition key attribute name
    sort: str  # the sort key attribute name


@dataclass(frozen=True)
class Stores:
    """The subject-scoped stores, named after their tables in template.yaml."""

    templates: TableStore
    jobs: TableStore
    sessions: TableStore
    challenges: TableStore
    idempotency: TableStore
    consents: TableStore
    uploads_bucket: str
    idempotency_seconds: int = 24 * 3600  # how long facegate.api.idempotency keeps a record

    def face_data(self) -> list[TableStore]:
        return [self.templates, self.jobs, self.sessions, self.challenges]


def filing_warnings(individuals: int) -> list[str]:
    """CAC measures art. 15: processors holding face data of 100,000+ people file within 30 working days."""
    if individuals >= FILING_THRESHOLD:
        return [
            "face data of 100,000 or more individuals is stored: file with the cyberspace administration "
            "within 30 working days (CAC measures art. 15)"
        ]
    if individuals >= WARNING_THRESHOLD:
        return ["face data of 80,000 or more individuals is stored: prepare the filing due at 100,000"]
    return []

"""In-memory fakes of facegate's OWN storage ports (facegate.*.ports), for unit tests of the services.

They keep the conditions the real repositories enforce (a lost race is a ConflictError), so the services'
retry and race logic runs here too. AWS itself is never faked: the moto integration tests cover the
PynamoDB/S3 implementations of these ports.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from facegate.consent.entities import GENESIS_HASH, ConsentRecord, ConsentState, Notice, Purpose
from facegate.core.audit import AuditEvent
from facegate.core.errors import ConflictError
from facegate.core.uploads import PresignedUpload
from facegate.matching.entities import Reservation, StoredTemplate


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class InMemoryAuditLog:
    events: list[AuditEvent] = field(default_factory=list)

    def append(self, event: AuditEvent) -> None:
        self.events.append(event)

    def actions(self) -> list[str]:
        return [e.action for e in self.events]


class RecordingSigner:
    """Signs nothing: returns the claims it was given, so a test can read what would have been signed."""

    def sign(self, claims: dict[str, Any], typ: str = "JWT") -> str:
        return "unsigned." + json.dumps(claims, sort_keys=True)


@dataclass
class RecordingPublisher:
    published: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def publish(self, detail_type: str, detail: dict[str, Any]) -> None:
        self.published.append((detail_type, detail))


@dataclass
class InMemoryTenants:
    clients: dict[str, str] = field(default_factory=dict)
    purpose_by_key: dict[tuple[str, str], Purpose] = field(default_factory=dict)
    notices: dict[tuple[str, str, str], list[Notice]] = field(default_factory=dict)

    def tenant_for_client(self, client_id: str) -> str | None:
        return self.clients.get(client_id)

    def register_client(self, client_id: str, tenant_id: str) -> None:
        self.clients[client_id] = tenant_id

    def get_purpose(self, tenant_id: str, purpose: str) -> Purpose | None:
        return self.purpose_by_key.get((tenant_id, purpose))

    def put_purpose(self, tenant_id: str, purpose: Purpose) -> None:
        self.purpose_by_key[(tenant_id, purpose.name)] = purpose

    def purposes(self, tenant_id: str) -> list[Purpose]:
        return [p for (t, _), p in self.purpose_by_key.items() if t == tenant_id]

    def latest_notice(self, tenant_id: str, purpose: str, locale: str) -> Notice | None:
        versions = self.notices.get((tenant_id, purpose, locale), [])
        return versions[-1] if versions else None

    def get_notice(self, tenant_id: str, purpose: str, locale: str, version: int) -> Notice | None:
        return next((n for n in self.notices.get((tenant_id, purpose, locale), []) if n.version == version), None)

    def add_notice(self, tenant_id: str, notice: Notice, created_by: str) -> None:
        versions = self.notices.setdefault((tenant_id, notice.purpose, notice.locale), [])
        if any(n.version == notice.version for n in versions):
            raise ConflictError()
        versions.append(notice)


@dataclass
class InMemoryConsents:
    """The consent chain with the repository's conditions: the head and the purpose's state must be unchanged."""

    heads: dict[tuple[str, str], str] = field(default_factory=dict)
    records: dict[tuple[str, str], list[ConsentRecord]] = field(default_factory=dict)
    state_by_key: dict[tuple[str, str, str], ConsentState] = field(default_factory=dict)
    lose_next_appends: int = 0  # a concurrent writer wins the next N appends

    def head(self, tenant_id: str, subject_ref: str) -> str:
        return self.heads.get((tenant_id, subject_ref), GENESIS_HASH)

    def append(
        self,
        record: ConsentRecord,
        status: str,
        epoch: str | None = None,
        epoch_started_at: str | None = None,
        previous_record_id: str | None = None,
    ) -> None:
        key = (record.tenant_id, record.subject_ref)
        current = self.state_by_key.get((*key, record.purpose))
        if self.lose_next_appends:
            self.lose_next_appends -= 1
            raise ConflictError()
        if self.head(*key) != record.prev_hash or (current.record_id if current else None) != previous_record_id:
            raise ConflictError()
        self.heads[key] = record.record_hash
        self.records.setdefault(key, []).append(record)
        self.state_by_key[(*key, record.purpose)] = ConsentState(
            purpose=record.purpose,
            status=status,
            record_id=record.record_id,
            notice_version=record.notice_version,
            notice_sha256=record.notice_sha256,
            age_band=record.age_band,
            updated_at=record.created_at,
            epoch=epoch,
            epoch_started_at=epoch_started_at,
        )

    def states(self, tenant_id: str, subject_ref: str) -> list[ConsentState]:
        return [s for (t, r, _), s in self.state_by_key.items() if (t, r) == (tenant_id, subject_ref)]

    def state(self, tenant_id: str, subject_ref: str, purpose: str) -> ConsentState | None:
        return self.state_by_key.get((tenant_id, subject_ref, purpose))

    def history(self, tenant_id: str, subject_ref: str) -> list[ConsentRecord]:
        return list(self.records.get((tenant_id, subject_ref), []))


@dataclass
class InMemoryTemplates:
    items: list[StoredTemplate] = field(default_factory=list)

    def put(self, template: StoredTemplate) -> None:
        if any(
            (t.tenant_id, t.subject_ref, t.purpose, t.seq)
            == (template.tenant_id, template.subject_ref, template.purpose, template.seq)
            for t in self.items
        ):
            raise ConflictError()
        self.items.append(template)

    def delete(self, template: StoredTemplate) -> bool:
        before = len(self.items)
        self.items = [t for t in self.items if t.template_id != template.template_id]
        return len(self.items) < before

    def for_subject(
        self, tenant_id: str, subject_ref: str, purpose: str, consistent: bool = False
    ) -> list[StoredTemplate]:
        return [t for t in self.items if (t.tenant_id, t.subject_ref, t.purpose) == (tenant_id, subject_ref, purpose)]

    def all_for_purpose(self, tenant_id: str, purpose: str) -> list[StoredTemplate]:
        return [t for t in self.items if (t.tenant_id, t.purpose) == (tenant_id, purpose)]


@dataclass
class InMemoryAttempts:
    """A fixed window per subject and purpose, reserved atomically (one process: trivially)."""

    windows: dict[tuple[str, str, str], tuple[datetime, int, str]] = field(default_factory=dict)

    def reserve(
        self, tenant_id: str, subject_ref: str, purpose: str, at: datetime, limit: int, window: timedelta
    ) -> Reservation | None:
        key = (tenant_id, subject_ref, purpose)
        start, count, window_id = self.windows.get(key, (at - 2 * window, 0, ""))
        if start <= at - window:
            start, count, window_id = at, 0, f"w{len(self.windows)}-{at.timestamp()}"
        if count >= limit:
            return None
        self.windows[key] = (start, count + 1, window_id)
        return Reservation(tenant_id, subject_ref, purpose, window_id)

    def release(self, reservation: Reservation) -> None:
        key = (reservation.tenant_id, reservation.subject_ref, reservation.purpose)
        if key in self.windows and self.windows[key][2] == reservation.window_id:
            start, count, window_id = self.windows[key]
            self.windows[key] = (start, max(0, count - 1), window_id)

    def recent_failures(self, tenant_id: str, subject_ref: str, purpose: str, since: datetime) -> int:
        start, count, _ = self.windows.get((tenant_id, subject_ref, purpose), (since, 0, ""))
        return count if start > since else 0

    def clear(self, tenant_id: str, subject_ref: str, purpose: str) -> None:
        self.windows.pop((tenant_id, subject_ref, purpose), None)


@dataclass
class InMemoryUploads:
    max_bytes: int = 5 * 1024 * 1024
    objects: dict[str, bytes] = field(default_factory=dict)
    deleted: list[str] = field(default_factory=list)

    def presign(self, key: str, content_type: str) -> PresignedUpload:
        return PresignedUpload(f"memory://{key}", {"key": key}, 300, self.max_bytes, content_type)

    def fetch(self, key: str) -> bytes:
        return self.objects[key]

    def delete(self, key: str) -> None:
        self.objects.pop(key, None)
        self.deleted.append(key)


def stored(template: StoredTemplate, **changes: Any) -> StoredTemplate:
    return replace(template, **changes)

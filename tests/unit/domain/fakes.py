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
from facegate.core.envelope import Sealed
from facegate.core.errors import ConflictError
from facegate.core.uploads import PresignedUpload
from facegate.deletion.entities import DeletionJob, TableStore
from facegate.enrolment.entities import Enrolment
from facegate.fallback.entities import VerificationSession
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


class ContextCipher:
    """Our Cipher port without KMS: 'seals' in the clear but binds the encryption context, and refuses to open
    under another context (what KMS does), so a test sees a context mix-up."""

    def seal(self, plaintext: bytes, context: dict[str, str]) -> Sealed:
        return Sealed(plaintext, json.dumps(context, sort_keys=True).encode(), b"")

    def open(self, sealed: Sealed, context: dict[str, str]) -> bytes:
        if sealed.encrypted_key != json.dumps(context, sort_keys=True).encode():
            raise ValueError("encryption context mismatch")
        return sealed.ciphertext


# ---------------------------------------------------------------- enrolment


@dataclass
class InMemoryEnrolmentJobs:
    jobs: dict[tuple[str, str, str], Enrolment] = field(default_factory=dict)

    def create(self, job: Enrolment) -> None:
        self.jobs[(job.tenant_id, job.subject_ref, job.enrolment_id)] = replace(job)

    def get(self, tenant_id: str, subject_ref: str, enrolment_id: str) -> Enrolment | None:
        job = self.jobs.get((tenant_id, subject_ref, enrolment_id))
        return replace(job) if job else None

    def claim(self, job: Enrolment, now: int, deadline: int) -> bool:
        current = self.jobs.get((job.tenant_id, job.subject_ref, job.enrolment_id))
        if current is None or current.status != "pending" or current.phase not in (None, "upload"):
            return False
        if current.deadline is not None and current.deadline < now:
            return False
        current.phase, current.deadline = "processing", deadline
        return True

    def overdue(self, now: int) -> list[Enrolment]:
        return [replace(j) for j in self.jobs.values() if j.status == "pending" and j.deadline and j.deadline < now]

    def finish(self, job: Enrolment, overdue_at: int | None = None) -> None:
        key = (job.tenant_id, job.subject_ref, job.enrolment_id)
        current = self.jobs.get(key)
        if current is None or current.status != "pending":
            raise ConflictError()
        if overdue_at is not None and (current.deadline is None or current.deadline >= overdue_at):
            raise ConflictError()
        self.jobs[key] = replace(job)


# ---------------------------------------------------------------- deletion


@dataclass
class InMemoryTables:
    """Every subject-scoped table as lists of plain items (the ErasureStore port), with the repository's
    conditional delete: an item is deleted only if its `guard` attribute is still the one that was read."""

    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # Called with (store, item) just before each delete: lets a test write in between (a lost race).
    before_delete: Any = None

    def add(self, table: str, **item: Any) -> dict[str, Any]:
        self.tables.setdefault(table, []).append(item)
        return item

    def items(self, store: TableStore, pk: str) -> list[dict[str, Any]]:
        return [dict(i) for i in self.tables.get(store.table, []) if i.get(store.partition) == pk]

    def _find(self, store: TableStore, item: dict[str, Any]) -> int | None:
        rows = self.tables.get(store.table, [])
        key = (item[store.partition], item[store.sort])
        return next((n for n, r in enumerate(rows) if (r.get(store.partition), r.get(store.sort)) == key), None)

    def delete(
        self, store: TableStore, items: list[dict[str, Any]], guard: str | None = "created_at"
    ) -> list[dict[str, Any]]:
        deleted = []
        for item in items:
            if self.before_delete is not None:
                self.before_delete(store, item)
            at = self._find(store, item)
            guarded = guard is not None and guard in item
            if guarded and (at is None or self.tables[store.table][at].get(guard) != item[guard]):
                continue  # replaced since it was read: not ours to erase
            if at is not None:
                del self.tables[store.table][at]
            deleted.append(item)
        return deleted

    def put(self, table: str, item: dict[str, Any]) -> None:
        self.tables.setdefault(table, []).append(dict(item))

    def expired(self, store: TableStore, now: int) -> list[dict[str, Any]]:
        return [dict(i) for i in self.tables.get(store.table, []) if int(i.get("expires_at", now)) < now]

    def partitions(self, table: str, prefix: str) -> set[str]:
        return {str(i["pk"]) for i in self.tables.get(table, []) if str(i.get("pk", "")).startswith(prefix)}

    def audit_actions(self, audit_table: str, tenant_id: str, prefixes: tuple[str, ...]) -> list[str]:
        return []


@dataclass
class InMemoryBucket:
    """The ObjectStore port: keys with their upload time (epoch seconds)."""

    objects: dict[str, float] = field(default_factory=dict)

    def delete_objects(self, bucket: str, prefix: str) -> int:
        doomed = [k for k in self.objects if k.startswith(prefix)]
        for key in doomed:
            del self.objects[key]
        return len(doomed)

    def old_objects(self, bucket: str, prefix: str, before_epoch: float) -> list[str]:
        return [k for k, at in self.objects.items() if k.startswith(prefix) and at < before_epoch]


@dataclass
class InMemoryDeletions:
    jobs: dict[tuple[str, str], DeletionJob] = field(default_factory=dict)

    def create(self, job: DeletionJob) -> bool:
        key = (job.tenant_id, job.deletion_id)
        if key in self.jobs:
            return False
        self.jobs[key] = replace(job, counts=dict(job.counts))
        return True

    def get(self, tenant_id: str, deletion_id: str) -> DeletionJob | None:
        job = self.jobs.get((tenant_id, deletion_id))
        return replace(job, counts=dict(job.counts)) if job else None

    def mark_running(self, job: DeletionJob) -> None:
        self.jobs[(job.tenant_id, job.deletion_id)].status = "running"

    def save_counts(self, job: DeletionJob, counts: dict[str, int]) -> None:
        self.jobs[(job.tenant_id, job.deletion_id)].counts = dict(counts)

    def complete(self, job: DeletionJob) -> None:
        self.jobs[(job.tenant_id, job.deletion_id)] = replace(job, status="completed", subject_ref=None)

    def all_for_tenant(self, tenant_id: str) -> list[DeletionJob]:
        return [j for (t, _), j in self.jobs.items() if t == tenant_id]


@dataclass
class RecordingQueue:
    sent: list[dict[str, str]] = field(default_factory=list)

    def send(self, message: dict[str, str]) -> None:
        self.sent.append(message)


# ---------------------------------------------------------------- fallback


@dataclass
class InMemorySessions:
    sessions: dict[tuple[str, str], VerificationSession] = field(default_factory=dict)

    def create(self, session: VerificationSession) -> None:
        self.sessions[(session.tenant_id, session.session_id)] = replace(session)

    def find(self, tenant_id: str, session_id: str) -> VerificationSession | None:
        session = self.sessions.get((tenant_id, session_id))
        return replace(session) if session else None

    def mark_sent(self, session: VerificationSession, method: str, at: int, not_since: int) -> bool:
        key = (session.tenant_id, session.session_id)
        current = self.sessions[key]
        last = current.sent_at.get(method)
        if last is not None and last >= not_since:
            return False
        self.sessions[key] = replace(current, sent_at={**current.sent_at, method: at}, sends=current.sends + 1)
        return True

    def mark_verified(
        self, session: VerificationSession, verification_id: str, method: str, at: int, keep_until: int
    ) -> bool:
        key = (session.tenant_id, session.session_id)
        current = self.sessions[key]
        if current.status != "open":
            return False
        self.sessions[key] = replace(
            current,
            status="verified",
            verification_id=verification_id,
            verified_method=method,
            verified_at=at,
            expires_at=keep_until,
        )
        return True

    def keep_until(self, session: VerificationSession, expires_at: int) -> None:
        key = (session.tenant_id, session.session_id)
        self.sessions[key] = replace(self.sessions[key], expires_at=expires_at)


@dataclass
class InMemoryRateCounters:
    counts: dict[tuple[str, str, int], int] = field(default_factory=dict)

    def hit(self, pk: str, name: str, window_start: int, expires_at: int) -> int:
        key = (pk, name, window_start)
        self.counts[key] = self.counts.get(key, 0) + 1
        return self.counts[key]


@dataclass
class InMemoryOtpGuesses:
    """The subject's guesses (token → second), reserved only while fewer than `limit` are live."""

    guesses_by_subject: dict[tuple[str, str], dict[str, int]] = field(default_factory=dict)

    def guesses(self, tenant_id: str, subject_ref: str) -> list[int]:
        return list(self.guesses_by_subject.get((tenant_id, subject_ref), {}).values())

    def reserve(
        self, tenant_id: str, subject_ref: str, token: str, at: int, since: int, limit: int, keep_until: int
    ) -> tuple[bool, list[int]]:
        mine = self.guesses_by_subject.setdefault((tenant_id, subject_ref), {})
        live = [t for t in mine.values() if t >= since]
        if len(live) >= limit:
            return False, live
        mine[token] = at
        return True, [*live, at]

    def release(self, tenant_id: str, subject_ref: str, token: str) -> None:
        self.guesses_by_subject.get((tenant_id, subject_ref), {}).pop(token, None)


@dataclass
class InMemoryTotp:
    secrets: dict[tuple[str, str], Sealed] = field(default_factory=dict)
    proofs: set[tuple[str, str, str]] = field(default_factory=set)
    steps: set[tuple[str, str, int]] = field(default_factory=set)

    def create(self, tenant_id: str, subject_ref: str, sealed: Sealed, created_at: str) -> bool:
        if (tenant_id, subject_ref) in self.secrets:
            return False
        self.secrets[(tenant_id, subject_ref)] = sealed
        return True

    def replace(self, tenant_id: str, subject_ref: str, sealed: Sealed, created_at: str) -> None:
        self.secrets[(tenant_id, subject_ref)] = sealed

    def use_proof(self, tenant_id: str, subject_ref: str, verification_id: str, at: int, expires_at: int) -> bool:
        key = (tenant_id, subject_ref, verification_id)
        if key in self.proofs:
            return False
        self.proofs.add(key)
        return True

    def get(self, tenant_id: str, subject_ref: str) -> tuple[Sealed, int] | None:
        sealed = self.secrets.get((tenant_id, subject_ref))
        return (sealed, 0) if sealed else None

    def exists(self, tenant_id: str, subject_ref: str) -> bool:
        return (tenant_id, subject_ref) in self.secrets

    def use_step(self, tenant_id: str, subject_ref: str, step: int) -> bool:
        key = (tenant_id, subject_ref, step)
        if key in self.steps:
            return False
        self.steps.add(key)
        return True

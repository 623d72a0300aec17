"""What the deletion service needs of storage: its jobs (facegate.deletion.dynamo.DeletionRepository), every
subject-scoped table by key (ErasureRepository), the uploads bucket by prefix (facegate.deletion.s3) and
the erasure queue (facegate.deletion.sqs)."""

from __future__ import annotations

from typing import Any, Protocol

from facegate.deletion.entities import DeletionJob, TableStore


class DeletionStore(Protocol):
    def create(self, job: DeletionJob) -> bool: ...
    def get(self, tenant_id: str, deletion_id: str) -> DeletionJob | None: ...
    def mark_running(self, job: DeletionJob) -> None: ...
    def save_counts(self, job: DeletionJob, counts: dict[str, int]) -> None: ...
    def complete(self, job: DeletionJob) -> None: ...
    def all_for_tenant(self, tenant_id: str) -> list[DeletionJob]: ...


class ErasureStore(Protocol):
    """Items of a subject's partition in any table, as plain dicts; deletes conditional on a guard attribute."""

    def items(self, store: TableStore, pk: str) -> list[dict[str, Any]]: ...
    def delete(
        self, store: TableStore, items: list[dict[str, Any]], guard: str | None = "created_at"
    ) -> list[dict[str, Any]]: ...
    def put(self, table: str, item: dict[str, Any]) -> None: ...
    def expired(self, store: TableStore, now: int) -> list[dict[str, Any]]: ...
    def partitions(self, table: str, prefix: str) -> set[str]: ...
    def audit_actions(self, audit_table: str, tenant_id: str, prefixes: tuple[str, ...]) -> list[str]: ...


class ObjectStore(Protocol):
    def delete_objects(self, bucket: str, prefix: str) -> int: ...
    def old_objects(self, bucket: str, prefix: str, before_epoch: float) -> list[str]: ...


class JobQueue(Protocol):
    def send(self, message: dict[str, str]) -> None: ...


class SubjectData(Protocol):
    """A capability's own store of a subject's data that erasure and the retention sweep reach through its
    repository (e.g. facegate.proctoring.dynamo.DynamoProctoringSessions): `store_name` names it in receipts."""

    store_name: str

    def erase_subject(
        self, tenant_id: str, subject_ref: str, purposes: list[str] | None, cutoff: str, ended_epoch: str | None
    ) -> int:
        """Erase what the subject had before `cutoff` (of `purposes`, or all); the count erased."""
        ...

    def sweep(self, now: int) -> int:
        """Erase what is past its retention; the count erased."""
        ...

"""What the proctoring service needs of storage, of the face engine and of the event bus (implemented in
dynamo.py, engine.py and facegate.core.eventbridge)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from facegate.matching.entities import EngineTemplate
from facegate.proctoring.entities import IncidentRecord, ProctorBatchResult, ProctoringSession


class ProctoringSessions(Protocol):
    def create(self, session: ProctoringSession) -> None: ...

    def get(self, tenant_id: str, session_id: str) -> ProctoringSession | None:
        """Strongly consistent: the state a batch is applied to."""
        ...

    def incidents(self, tenant_id: str, session_id: str) -> list[IncidentRecord]: ...

    def apply_batch(
        self, session: ProctoringSession, applied: ProctoringSession, incidents: Sequence[IncidentRecord]
    ) -> bool:
        """Write `applied` (the session after the batch), the batch's incidents and its answer (`applied.last_answer`
        under `applied.last_digest`, for retries) in one transaction, only if the stored session is still active at
        `session.next_sequence`; False if another batch won."""
        ...

    def batch_answer(self, tenant_id: str, session_id: str, sequence: int) -> tuple[str, dict[str, Any]] | None:
        """The digest and answer of an applied batch."""
        ...

    def end(self, session: ProctoringSession, ended: ProctoringSession, incidents: Sequence[IncidentRecord]) -> bool:
        """Store the report and the closed incidents, only if the session is still active at its sequence."""
        ...

    def review(self, tenant_id: str, session_id: str, incident: IncidentRecord) -> bool:
        """Store an incident's review fields (never its engine fields); False if there is no such incident."""
        ...


class ProctorEngine(Protocol):
    @property
    def model_id(self) -> str: ...

    @property
    def model_version(self) -> str: ...

    def process(
        self,
        state: dict[str, Any] | None,
        frames: Sequence[bytes],
        timestamps_ms: Sequence[float],
        template: EngineTemplate,
    ) -> ProctorBatchResult:
        """Track a batch in memory (the frames are never kept). Raises the decoding's domain errors."""
        ...

    def finish(self, state: dict[str, Any]) -> list[IncidentRecord]:
        """Close the incidents still open at the end of the session."""
        ...


class Events(Protocol):
    def publish(self, detail_type: str, detail: dict[str, Any]) -> None: ...

"""What the enrolment service needs of storage (facegate.enrolment.dynamo) and of the 1:N gallery."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from facegate.enrolment.entities import Enrolment
from facegate.matching.entities import EngineTemplate


class EnrolmentJobs(Protocol):
    def create(self, job: Enrolment) -> None: ...
    def get(self, tenant_id: str, subject_ref: str, enrolment_id: str) -> Enrolment | None: ...
    def claim(self, job: Enrolment, now: int, deadline: int) -> bool: ...
    def overdue(self, now: int) -> list[Enrolment]: ...
    def finish(self, job: Enrolment, overdue_at: int | None = None) -> None: ...


# Keep a purpose's 1:N gallery in step with enrolment (the composition root binds them to the GalleryStore).
GalleryHook = Callable[[str, str, str, str, EngineTemplate], None]  # tenant, purpose, ref, template_id, template
GalleryRemoveHook = Callable[[str, str, str, str], None]  # tenant, purpose, subject_ref, template_id

"""1:N identification: off by default (GB/T 41819-2022 prefers 1:1), enabled per purpose by a tenant
admin with an impact-assessment id. A gallery row names its subject only while the template it was
made from exists and is usable under the subject's current consent (facegate.services.face_data)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

from facegate.adapters.envelope import EnvelopeCipher, Sealed, unpack_sealed
from facegate.adapters.uploads import UploadStore
from facegate.biometrics import EngineTemplate
from facegate.errors import IdentificationDisabledError, InvalidRequestError
from facegate.observability import count, logger
from facegate.repositories.consents import ConsentRepository
from facegate.repositories.templates import StoredTemplate, TemplateRepository
from facegate.repositories.tenants import Purpose, TenantRepository
from facegate.services.audit import Auditor
from facegate.services.consent import NoticeService
from facegate.services.enrolment import subject_id_context, template_context
from facegate.services.face_data import usable_templates
from facegate.services.gallery import GalleryStore, gallery_id, parse_row
from facegate.services.verification import probe_key, refuse_image_and_probe, take_probe
from facegate.tenancy import CallerContext

CALIBRATED_FARS = (1e-2, 1e-3, 1e-4)
TARGET_FALSE_CANDIDATE_RATE = 1e-2


class Engine(Protocol):
    @property
    def model_id(self) -> str: ...
    @property
    def model_version(self) -> str: ...
    def enrol(self, image: bytes) -> EngineTemplate: ...
    def vector(self, template: EngineTemplate) -> Any: ...
    def search_threshold(self, far: float) -> float: ...


@dataclass(frozen=True)
class Identification:
    candidates: list[tuple[str, float | None]]  # scores only where the purpose exposes them
    threshold: float | None
    far: float
    gallery_size: int
    model_id: str
    model_version: str


def far_for_gallery(size: int) -> float:
    """The loosest calibrated per-comparison FAR that keeps size × FAR within the target; the
    strictest calibrated one beyond that (the answer then reports the higher expected rate)."""
    for far in CALIBRATED_FARS:
        if max(size, 1) * far <= TARGET_FALSE_CANDIDATE_RATE:
            return far
    return CALIBRATED_FARS[-1]


class IdentificationService:
    def __init__(
        self,
        notices: NoticeService,
        tenants: TenantRepository,
        consents: ConsentRepository,
        templates: TemplateRepository,
        cipher: EnvelopeCipher,
        uploads: UploadStore,
        gallery: Callable[[], GalleryStore],
        engine: Callable[[], Engine],
        auditor: Auditor,
    ) -> None:
        self._notices = notices
        self._tenants = tenants
        self._consents = consents
        self._templates = templates
        self._cipher = cipher
        self._uploads = uploads
        self._gallery = gallery
        self._engine = engine
        self._auditor = auditor

    def configure(
        self,
        caller: CallerContext,
        purpose_name: str,
        enabled: bool | None,
        assessment_id: str | None,
        retention_days: int | None,
        expose_scores: bool | None = None,
    ) -> tuple[Purpose, int | None]:
        """Enabling needs an assessment id and builds the gallery from the purpose's templates.
        A setting left out (None) keeps its value; exposing raw scores is audited like the rest."""
        purpose = self._notices.purpose(caller.tenant_id, purpose_name)
        if enabled and not assessment_id:
            raise InvalidRequestError("enabling 1:N identification needs the impact assessment's id")
        updated = replace(
            purpose,
            identification_enabled=purpose.identification_enabled if enabled is None else enabled,
            identification_assessment_id=assessment_id if enabled else purpose.identification_assessment_id,
            retention_days=retention_days or purpose.retention_days,
            expose_scores=purpose.expose_scores if expose_scores is None else expose_scores,
        )
        self._tenants.put_purpose(caller.tenant_id, updated)
        self._auditor.record(
            caller,
            "purpose.configured",
            "ok",
            None,
            purpose_name,
            identification=updated.identification_enabled,
            assessment=assessment_id,
            expose_scores=updated.expose_scores,
        )
        size = self._build_gallery(caller, purpose_name) if enabled and not purpose.identification_enabled else None
        return updated, size

    def _build_gallery(self, caller: CallerContext, purpose: str) -> int:
        """One row per subject: the newest template usable under the subject's current consent."""
        engine = self._engine()
        model = (engine.model_id, engine.model_version)
        store = self._gallery()
        gallery = gallery_id(caller.tenant_id, purpose, *model)
        by_subject: dict[str, list[StoredTemplate]] = {}
        for template in self._templates.all_for_purpose(caller.tenant_id, purpose):
            by_subject.setdefault(template.subject_ref, []).append(template)
        added = 0
        for ref, templates in by_subject.items():
            state = self._consents.state(caller.tenant_id, ref, purpose)
            usable = [t for t in usable_templates(templates, state) if (t.model_id, t.model_version) == model]
            if not usable:
                continue
            newest = usable[-1]
            store.add(gallery, ref, newest.template_id, engine.vector(self._open(caller, newest)), model)
            added += 1
        logger.info("gallery built", purpose=purpose, templates=added)
        return added

    def _open(self, caller: CallerContext, template: StoredTemplate) -> EngineTemplate:
        self._auditor.record(
            caller, "template.decrypted", "ok", template.subject_ref, template.purpose, template_id=template.template_id
        )
        data = self._cipher.open(
            Sealed(template.ciphertext, template.encrypted_key, template.nonce),
            template_context(caller.tenant_id, template.subject_ref, template.purpose),
        )
        return EngineTemplate(template.model_id, template.model_version, data)

    def identify(
        self, caller: CallerContext, purpose_name: str, top_k: int, image: bytes | None, probe_id: str | None
    ) -> Identification:
        if image is not None and probe_id is not None:
            raise refuse_image_and_probe(self._uploads, probe_key(caller.tenant_id, probe_id))
        if image is None:
            image = take_probe(self._uploads, caller.tenant_id, probe_id)
        purpose = self._notices.purpose(caller.tenant_id, purpose_name)
        if not purpose.identification_enabled:
            raise IdentificationDisabledError(
                "a tenant admin enables 1:N per purpose with an impact assessment (PUT /v1/purposes/{purpose})"
            )
        engine = self._engine()
        probe = engine.vector(engine.enrol(image))
        del image
        gallery = gallery_id(caller.tenant_id, purpose_name, engine.model_id, engine.model_version)
        store = self._gallery()
        matches, size, threshold = store.search(
            gallery, probe, k=top_k, threshold_for=lambda n: engine.search_threshold(far_for_gallery(n))
        )
        far = far_for_gallery(size)
        candidates: list[tuple[str, float | None]] = []
        exposed = purpose.expose_scores
        for match in matches:
            subject_id = self._subject_id(caller, match.id, purpose_name)
            if subject_id is not None:
                candidates.append((subject_id, round(float(match.score), 4) if exposed else None))
        self._auditor.record(
            caller, "face.identified", "ok", None, purpose_name, gallery_size=size, candidates=len(candidates)
        )
        if exposed:
            self._auditor.record(caller, "face.scores_exposed", "ok", None, purpose_name, candidates=len(candidates))
        count("FaceIdentified" if candidates else "FaceNotIdentified")
        return Identification(
            candidates,
            round(threshold, 4) if exposed else None,
            far,
            size,
            engine.model_id,
            engine.model_version,
        )

    def _subject_id(self, caller: CallerContext, row: str, purpose: str) -> str | None:
        """The tenant's subject id for a gallery row, or None if the row must not be named: its template
        is gone, replaced, or was enrolled under a consent that has ended (its erasure is on its way)."""
        ref, template_id = parse_row(row)
        state = self._consents.state(caller.tenant_id, ref, purpose)
        usable = usable_templates(self._templates.for_subject(caller.tenant_id, ref, purpose), state)
        if template_id is not None:  # a row written before rows named their template: any usable one
            usable = [t for t in usable if t.template_id == template_id]
        for template in usable:
            if template.subject_sealed:
                self._auditor.record(caller, "subject.revealed", "ok", ref, purpose, reason="identification")
                sealed = unpack_sealed(template.subject_sealed)
                return self._cipher.open(sealed, subject_id_context(caller.tenant_id, ref)).decode()
        return None

"""1:N identification: off by default (GB/T 41819-2022 prefers 1:1), enabled per purpose by a tenant
admin with an impact-assessment id. A gallery row names its subject only while the template it was
made from exists and is usable under the subject's current consent (facegate.matching.entities.usable_templates)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from facegate.consent.entities import Purpose
from facegate.consent.ports import ConsentStates, Purposes, TenantStore
from facegate.core.audit import Auditor
from facegate.core.errors import IdentificationDisabledError, InvalidRequestError
from facegate.core.observability import count, logger
from facegate.core.ports import Uploads
from facegate.core.tenancy import CallerContext
from facegate.matching.entities import (
    Identification,
    StoredTemplate,
    far_for_gallery,
    gallery_id,
    parse_row,
    probe_key,
    usable_templates,
)
from facegate.matching.gallery import GalleryStore
from facegate.matching.ports import Biometrics, TemplateStore
from facegate.matching.templates import TemplateOpener
from facegate.matching.verification import refuse_image_and_probe, take_probe


class IdentificationService:
    def __init__(
        self,
        notices: Purposes,
        tenants: TenantStore,
        consents: ConsentStates,
        templates: TemplateStore,
        opener: TemplateOpener,
        uploads: Uploads,
        gallery: Callable[[], GalleryStore],
        engine: Callable[[], Biometrics],
        auditor: Auditor,
    ) -> None:
        self._notices = notices
        self._tenants = tenants
        self._consents = consents
        self._templates = templates
        self._opener = opener
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
            store.add(gallery, ref, newest.template_id, engine.vector(self._opener.open(caller, newest)), model)
            added += 1
        logger.info("gallery built", purpose=purpose, templates=added)
        return added

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
                return self._opener.reveal_subject(caller, template, purpose, reason="identification")
        return None

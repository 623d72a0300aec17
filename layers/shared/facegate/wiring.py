"""Composition root: builds repositories, adapters and services once per cold start."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING, Any

import boto3

from facegate.adapters.envelope import EnvelopeCipher
from facegate.adapters.events import EventPublisher
from facegate.adapters.kms_signer import KmsSigner
from facegate.adapters.secrets import load_pepper
from facegate.adapters.uploads import UploadStore
from facegate.config import Settings, get_settings
from facegate.hashing import SubjectHasher
from facegate.repositories.audit import AuditRepository
from facegate.repositories.base import use_client_limits, utcnow
from facegate.repositories.consents import ConsentRepository
from facegate.repositories.enrolments import EnrolmentRepository
from facegate.repositories.templates import TemplateRepository
from facegate.repositories.tenants import TenantRepository
from facegate.services.audit import Auditor
from facegate.services.consent import ConsentService, NoticeService

if TYPE_CHECKING:
    from facegate.biometrics import EngineTemplate, FaceBiometrics
    from facegate.services.deletion import DeletionService
    from facegate.services.enrolment import EnrolmentService
    from facegate.services.gallery import GalleryStore
    from facegate.services.identification import IdentificationService
    from facegate.services.verification import VerificationService

TENANT_CACHE_SECONDS = 300


@dataclass
class Container:
    settings: Settings
    # Services that keep time read it through here, so that tests can move the clock of the running handler.
    clock: Callable[[], datetime] = utcnow

    def __post_init__(self) -> None:
        # Before any repository binds its item class: PynamoDB reads the limits from the class.
        use_client_limits(self.settings.client_limits)

    def now(self) -> datetime:
        return self.clock()

    @cached_property
    def session(self) -> boto3.session.Session:
        return boto3.session.Session(region_name=self.settings.region)

    def client(self, service: str) -> Any:
        """A boto3 client with the function's timeouts and attempt budget (never botocore's defaults)."""
        return self.session.client(service, config=self.settings.client_limits.botocore_config())

    @cached_property
    def secrets(self) -> Any:
        from aws_lambda_powertools.utilities.parameters import SecretsProvider

        return SecretsProvider(boto3_client=self.client("secretsmanager"))

    @cached_property
    def pepper(self) -> bytes:
        return load_pepper(self.secrets, self.settings.pepper_secret_arn)

    @cached_property
    def tenants(self) -> TenantRepository:
        return TenantRepository(self.settings.tenants_table, self.settings.region)

    @cached_property
    def auditor(self) -> Auditor:
        s = self.settings
        return Auditor(AuditRepository(s.audit_table, s.region, s.audit_retention_days))

    @cached_property
    def hasher(self) -> SubjectHasher:
        return SubjectHasher(self.pepper)

    @cached_property
    def signer(self) -> KmsSigner:
        return KmsSigner(self.client("kms"), self.settings.signing_key_id)

    @cached_property
    def notices(self) -> NoticeService:
        return NoticeService(self.tenants, self.auditor)

    @cached_property
    def consents(self) -> ConsentService:
        s = self.settings
        return ConsentService(
            notices=self.notices,
            consents=self.consent_records,
            hasher=self.hasher,
            signer=self.signer,
            publisher=EventPublisher(self.client("events"), s.event_bus_name, "facegate.consent"),
            auditor=self.auditor,
            issuer=s.issuer,
        )

    @cached_property
    def cipher(self) -> EnvelopeCipher:
        return EnvelopeCipher(self.client("kms"), self.settings.data_key_id)

    @cached_property
    def templates(self) -> TemplateRepository:
        return TemplateRepository(self.settings.templates_table, self.settings.region)

    @cached_property
    def consent_records(self) -> ConsentRepository:
        return ConsentRepository(self.settings.consents_table, self.settings.region)

    @cached_property
    def biometrics(self) -> FaceBiometrics:
        """The face engine; built on first use so that functions without the model layer never load it."""
        from facegate.biometrics import FaceBiometrics

        return FaceBiometrics()

    @cached_property
    def uploads(self) -> UploadStore:
        s = self.settings
        return UploadStore(self.client("s3"), s.uploads_bucket, s.max_image_bytes)

    @cached_property
    def enrolments(self) -> EnrolmentService:
        from facegate.services.enrolment import EnrolmentService

        s = self.settings
        return EnrolmentService(
            notices=self.notices,
            consents=self.consent_records,
            hasher=self.hasher,
            jobs=EnrolmentRepository(s.jobs_table, s.region),
            templates=self.templates,
            cipher=self.cipher,
            uploads=self.uploads,
            engine=lambda: self.biometrics,
            auditor=self.auditor,
            gallery_add=self._gallery_add,
            gallery_remove=self._gallery_remove,
            clock=self.now,
        )

    def _gallery_add(self, tenant_id: str, purpose: str, ref: str, template_id: str, template: EngineTemplate) -> None:
        from facegate.services.gallery import gallery_id

        gallery = gallery_id(tenant_id, purpose, template.model_id, template.model_version)
        model = (template.model_id, template.model_version)
        self.gallery.add(gallery, ref, template_id, self.biometrics.vector(template), model)

    def _gallery_remove(self, tenant_id: str, purpose: str, ref: str, template_id: str) -> None:
        from facegate.services.gallery import gallery_id

        engine = self.biometrics
        gallery = gallery_id(tenant_id, purpose, engine.model_id, engine.model_version)
        self.gallery.discard(gallery, ref, lambda row_template: row_template == template_id)

    def gallery_store(self, dim: int) -> GalleryStore:
        from facegate.repositories.galleries import GalleryRepository
        from facegate.services.gallery import GalleryStore
        from facesearch import ShardCache

        s = self.settings
        return GalleryStore(
            s3=self.client("s3"),
            bucket=s.galleries_bucket,
            cipher=self.cipher,
            pointers=GalleryRepository(s.jobs_table, s.region),
            cache=ShardCache(s.gallery_cache_bytes),
            dim=dim,
        )

    @cached_property
    def gallery_remover(self) -> GalleryStore:
        """The gallery as erasure uses it: it only removes rows, so it needs no engine (dimension 0)."""
        return self.gallery_store(0)

    @cached_property
    def gallery(self) -> GalleryStore:
        """The gallery as matching and enrolment use it (with the engine's dimension)."""
        return self.gallery_store(self.biometrics.dimension)

    @cached_property
    def identifications(self) -> IdentificationService:
        from facegate.services.identification import IdentificationService

        return IdentificationService(
            notices=self.notices,
            tenants=self.tenants,
            consents=self.consent_records,
            templates=self.templates,
            cipher=self.cipher,
            uploads=self.uploads,
            gallery=lambda: self.gallery,
            engine=lambda: self.biometrics,
            auditor=self.auditor,
        )

    @cached_property
    def verifications(self) -> VerificationService:
        from facegate.repositories.attempts import AttemptRepository
        from facegate.services.results import ResultIssuer
        from facegate.services.verification import VerificationService

        s = self.settings
        return VerificationService(
            notices=self.notices,
            consents=self.consent_records,
            hasher=self.hasher,
            templates=self.templates,
            attempts=AttemptRepository(s.sessions_table, s.region),
            cipher=self.cipher,
            uploads=self.uploads,
            engine=lambda: self.biometrics,
            results=ResultIssuer(self.signer, s.issuer),
            auditor=self.auditor,
        )

    @cached_property
    def deletions(self) -> DeletionService:
        from facegate.repositories.deletions import DeletionRepository
        from facegate.repositories.erasure import ErasureRepository, TableStore
        from facegate.services.deletion import DeletionService, Stores, sqs_sender

        s = self.settings

        def store(name: str, table: str, partition: str = "pk", sort: str = "sk") -> TableStore:
            return TableStore(name, table, partition, sort)

        return DeletionService(
            stores=Stores(
                templates=store("templates", s.templates_table),
                jobs=store("enrolment_jobs", s.jobs_table),
                sessions=store("sessions", s.sessions_table),
                challenges=store("challenges", s.challenges_table),
                idempotency=store("idempotency", s.idempotency_table, "id", "sk"),
                consents=store("consents", s.consents_table),
                uploads_bucket=s.uploads_bucket,
            ),
            erasure=ErasureRepository(self.client("dynamodb"), self.client("s3")),
            deletions=DeletionRepository(s.jobs_table, s.region),
            hasher=self.hasher,
            signer=self.signer,
            enqueue=sqs_sender(self.sqs, s.deletion_queue_url),
            auditor=self.auditor,
            issuer=s.issuer,
            gallery_discard=lambda tenant, ref, purposes, doomed: self.gallery_remover.discard_everywhere(
                tenant, ref, purposes, doomed
            ),
            end_consents=self.consents.withdraw_all,
            end_overdue_enrolments=lambda: self.enrolments.end_overdue(),
            clock=self.now,
        )

    def retry_later(self, queue_url: str, receipt_handle: str, receive_count: int) -> None:
        from facegate.adapters import queue

        queue.delay_redelivery(self.sqs, queue_url, receipt_handle, receive_count)

    @cached_property
    def sqs(self) -> Any:
        return self.client("sqs")

    @cached_property
    def _tenant_cache(self) -> dict[str, tuple[float, str | None]]:
        return {}

    def tenant_for_client(self, client_id: str) -> str | None:
        """client_id → tenant, cached for a few minutes per warm container."""
        hit = self._tenant_cache.get(client_id)
        if hit and time.monotonic() - hit[0] < TENANT_CACHE_SECONDS:
            return hit[1]
        tenant = self.tenants.tenant_for_client(client_id)
        self._tenant_cache[client_id] = (time.monotonic(), tenant)
        return tenant


@lru_cache(maxsize=1)
def container() -> Container:
    return Container(get_settings())


def reset() -> None:
    """Forget everything built (tests and the local cloud call this after changing the environment)."""
    get_settings.cache_clear()
    container.cache_clear()

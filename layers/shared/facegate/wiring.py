"""Composition root: builds repositories, adapters and services once per cold start (the one place that
reads settings and makes AWS clients; every function's handler asks it for its services)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING, Any

import boto3

from facegate.consent.dynamo import ConsentRepository, TenantRepository
from facegate.consent.service import ConsentService, NoticeService
from facegate.core.audit import Auditor
from facegate.core.clock import utcnow
from facegate.core.config import FallbackSettings, Settings, get_settings
from facegate.core.dynamo import AuditRepository, use_client_limits
from facegate.core.eventbridge import EventPublisher, QueueEventPublisher
from facegate.core.events import DomainEvents, FailoverPublisher
from facegate.core.hashing import Subject, SubjectHasher
from facegate.core.kms import EnvelopeCipher, KmsSigner
from facegate.core.s3 import UploadStore
from facegate.core.secrets import load_pepper
from facegate.core.tenancy import CallerContext
from facegate.enrolment.dynamo import EnrolmentRepository
from facegate.matching.dynamo import TemplateRepository

if TYPE_CHECKING:
    from facegate.deletion.service import DeletionService
    from facegate.devices.service import DeviceSessionService
    from facegate.enrolment.service import EnrolmentService
    from facegate.fallback.budget import OtpGuessBudget, RateLimiter
    from facegate.fallback.challenges import ChallengeService
    from facegate.fallback.dynamo import ChallengeRepository, SessionRepository, TotpRepository
    from facegate.fallback.reviews import ReviewService
    from facegate.fallback.sessions import SessionService
    from facegate.fallback.totp import TotpService
    from facegate.liveness.service import LivenessService
    from facegate.matching.biometrics import FaceBiometrics
    from facegate.matching.entities import EngineTemplate
    from facegate.matching.gallery import GalleryStore
    from facegate.matching.identification import IdentificationService
    from facegate.matching.templates import TemplateOpener
    from facegate.matching.verification import VerificationService
    from facegate.proctoring.dynamo import DynamoProctoringSessions
    from facegate.proctoring.service import ProctoringService
    from facegate.webhooks.service import WebhookService

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
        from facegate.core.dynamo import botocore_session

        return boto3.session.Session(region_name=self.settings.region, botocore_session=botocore_session())

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

    def subject(self, caller: CallerContext, subject_id: str) -> Subject:
        """The request's subject: its id hashed once, for the handler's idempotency record and the service."""
        return self.hasher.subject(caller.tenant_id, subject_id)

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
            signer=self.signer,
            # A withdrawal starts an erasure: if the bus fails, the event goes straight to the deletion queue.
            publisher=FailoverPublisher(
                EventPublisher(self.client("events"), s.event_bus_name, "facegate.consent"),
                QueueEventPublisher(self.client("sqs"), s.deletion_queue_url, "facegate.consent"),
            ),
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
        from facegate.matching.biometrics import FaceBiometrics

        return FaceBiometrics()

    @cached_property
    def opener(self) -> TemplateOpener:
        """The one audited decryption of stored templates, for every reader of templates."""
        from facegate.matching.templates import TemplateOpener

        return TemplateOpener(self.cipher, self.auditor, lambda: self.biometrics)

    @cached_property
    def uploads(self) -> UploadStore:
        s = self.settings
        return UploadStore(self.client("s3"), s.uploads_bucket, s.max_image_bytes)

    @cached_property
    def enrolments(self) -> EnrolmentService:
        from facegate.enrolment.service import EnrolmentService

        s = self.settings
        return EnrolmentService(
            notices=self.notices,
            consents=self.consent_records,
            jobs=EnrolmentRepository(s.jobs_table, s.region),
            templates=self.templates,
            cipher=self.cipher,
            opener=self.opener,
            uploads=self.uploads,
            engine=lambda: self.biometrics,
            auditor=self.auditor,
            gallery_add=self._gallery_add,
            gallery_remove=self._gallery_remove,
            clock=self.now,
            liveness=self.liveness,
        )

    def _gallery_add(self, tenant_id: str, purpose: str, ref: str, template_id: str, template: EngineTemplate) -> None:
        from facegate.matching.entities import gallery_id

        gallery = gallery_id(tenant_id, purpose, template.model_id, template.model_version)
        model = (template.model_id, template.model_version)
        self.gallery.add(gallery, ref, template_id, self.biometrics.vector(template), model)

    def _gallery_remove(self, tenant_id: str, purpose: str, ref: str, template_id: str) -> None:
        from facegate.matching.entities import gallery_id

        engine = self.biometrics
        gallery = gallery_id(tenant_id, purpose, engine.model_id, engine.model_version)
        self.gallery.discard(gallery, ref, lambda row_template: row_template == template_id)

    def gallery_store(self, dim: int) -> GalleryStore:
        from facegate.matching.dynamo import GalleryRepository
        from facegate.matching.gallery import GalleryStore
        from facegate.matching.s3 import S3ShardObjects
        from facesearch import ShardCache

        s = self.settings
        return GalleryStore(
            objects=S3ShardObjects(self.client("s3"), s.galleries_bucket),
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
        from facegate.matching.identification import IdentificationService

        return IdentificationService(
            notices=self.notices,
            tenants=self.tenants,
            consents=self.consent_records,
            templates=self.templates,
            opener=self.opener,
            uploads=self.uploads,
            gallery=lambda: self.gallery,
            engine=lambda: self.biometrics,
            auditor=self.auditor,
        )

    @cached_property
    def verifications(self) -> VerificationService:
        from facegate.core.results import ResultIssuer
        from facegate.matching.verification import VerificationService

        s = self.settings
        return VerificationService(
            notices=self.notices,
            consents=self.consent_records,
            templates=self.templates,
            attempts=self.attempts,
            opener=self.opener,
            uploads=self.uploads,
            engine=lambda: self.biometrics,
            results=ResultIssuer(self.signer, s.issuer),
            auditor=self.auditor,
            liveness=self.liveness,
            events=self.domain_events("facegate.matching"),
        )

    # ---------------------------------------------------------------- liveness (facegate.liveness)
    @cached_property
    def liveness(self) -> LivenessService:
        from facegate.liveness.dynamo import DynamoLivenessPolicies, DynamoLivenessSessions
        from facegate.liveness.service import LivenessService

        s = self.settings

        def engine() -> Any:
            from facegate.liveness.engine import EngineLiveness

            return EngineLiveness(self.biometrics)

        return LivenessService(
            sessions=DynamoLivenessSessions(s.sessions_table, s.region),
            policies=DynamoLivenessPolicies(s.tenants_table, s.region),
            notices=self.notices,
            hasher=self.hasher,
            auditor=self.auditor,
            engine=engine,
            clock=self.now,
            events=self.domain_events("facegate.liveness"),
        )

    # ---------------------------------------------------------------- end liveness

    # ---------------------------------------------------------------- proctoring (facegate.proctoring)
    @cached_property
    def proctoring_sessions(self) -> DynamoProctoringSessions:
        from facegate.proctoring.dynamo import DynamoProctoringSessions

        return DynamoProctoringSessions(self.settings.proctoring_table, self.settings.region)

    @cached_property
    def proctoring(self) -> ProctoringService:
        from facegate.proctoring.service import ProctoringService

        s = self.settings

        def engine() -> Any:
            from facegate.proctoring.engine import EngineProctor

            return EngineProctor(self.biometrics)

        return ProctoringService(
            sessions=self.proctoring_sessions,
            notices=self.notices,
            consents=self.consent_records,
            templates=self.templates,
            opener=self.opener,
            verify=self.verifications.verify,
            engine=engine,
            signer=self.signer,
            events=self.webhook_events("facegate.proctoring"),
            auditor=self.auditor,
            issuer=s.issuer,
            clock=self.now,
        )

    # ---------------------------------------------------------------- end proctoring

    # ---------------------------------------------------------------- device sessions (facegate.devices)
    @cached_property
    def devices(self) -> DeviceSessionService:
        from facegate.devices.dynamo import DynamoDeviceSessions
        from facegate.devices.service import DeviceSessionService
        from facegate.fallback.proofs import ResultTokenReader

        s = self.settings
        return DeviceSessionService(
            sessions=DynamoDeviceSessions(s.sessions_table, s.region),
            signer=self.signer,
            reader=ResultTokenReader(self.signer.jwks).claims,
            notices=self.notices,
            hasher=self.hasher,
            auditor=self.auditor,
            issuer=s.issuer,
            clock=self.now,
        )

    # ---------------------------------------------------------------- end device sessions

    @cached_property
    def attempts(self) -> Any:
        from facegate.matching.dynamo import AttemptRepository

        return AttemptRepository(self.settings.sessions_table, self.settings.region)

    @cached_property
    def deletions(self) -> DeletionService:
        from facegate.deletion.dynamo import DeletionRepository, ErasureRepository
        from facegate.deletion.entities import Stores, TableStore
        from facegate.deletion.s3 import ObjectErasure
        from facegate.deletion.service import DeletionService
        from facegate.deletion.sqs import SqsJobQueue

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
            erasure=ErasureRepository(self.client("dynamodb")),
            objects=ObjectErasure(self.client("s3")),
            deletions=DeletionRepository(s.jobs_table, s.region),
            signer=self.signer,
            queue=SqsJobQueue(self.sqs, s.deletion_queue_url),
            auditor=self.auditor,
            issuer=s.issuer,
            gallery_discard=lambda tenant, ref, purposes, doomed: self.gallery_remover.discard_everywhere(
                tenant, ref, purposes, doomed
            ),
            end_consents=self.consents.withdraw_all,
            end_overdue_enrolments=lambda: self.enrolments.end_overdue(),
            clock=self.now,
            more=[self.proctoring_sessions],  # proctoring sessions and incidents (facegate.proctoring)
            events=self.domain_events("facegate.deletion"),
        )

    def retry_later(self, queue_url: str, receipt_handle: str, receive_count: int) -> None:
        from facegate.deletion import sqs as queue

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

    @cached_property
    def fallback(self) -> Fallback:
        return Fallback(self, self.settings.fallback)

    # ---------------------------------------------------------------- webhooks (facegate.webhooks)
    def domain_events(self, source: str) -> DomainEvents:
        """Announcements of one source onto the bus (webhooks' events; best effort, see facegate.core.events)."""
        return DomainEvents(self.webhook_events(source))

    def webhook_events(self, source: str) -> EventPublisher | FailoverPublisher:
        """The bus; when it fails, straight onto the webhook queue (its rule's target) in the rule's envelope."""
        s = self.settings
        bus = EventPublisher(self.events_client, s.event_bus_name, source)
        if not s.webhook_queue_url:
            return bus
        return FailoverPublisher(bus, QueueEventPublisher(self.client("sqs"), s.webhook_queue_url, source))

    @cached_property
    def events_client(self) -> Any:
        return self.client("events")

    @cached_property
    def webhooks(self) -> WebhookService:
        from facegate.webhooks.dynamo import WebhookDeliveryLog, WebhookEndpointRepository
        from facegate.webhooks.sender import HttpSender
        from facegate.webhooks.service import WebhookService
        from facegate.webhooks.sqs import SqsDeliveryQueue
        from facegate.webhooks.urls import PublicUrlPolicy

        s = self.settings
        return WebhookService(
            endpoints=WebhookEndpointRepository(s.webhooks_table, s.region),
            log=WebhookDeliveryLog(s.webhooks_table, s.region),
            queue=SqsDeliveryQueue(self.sqs, s.webhook_queue_url),
            sender=HttpSender(),
            urls=PublicUrlPolicy(allow_local=s.webhook_allow_local_http),
            cipher=self.cipher,
            auditor=self.auditor,
            clock=self.now,
        )

    def webhook_retry_later(self, receipt_handle: str, attempt: int) -> int:
        """Bring a failed delivery back after the backoff of its attempt (WEBHOOK_RETRY_SECONDS overrides it)."""
        from facegate.webhooks import sqs as queue
        from facegate.webhooks.entities import RETRY_SECONDS

        text = self.settings.webhook_retry_seconds
        schedule = tuple(int(x) for x in text.split(",")) if text else RETRY_SECONDS
        return queue.delay_redelivery(self.sqs, self.settings.webhook_queue_url, receipt_handle, attempt, schedule)

    # ---------------------------------------------------------------- end webhooks


@dataclass
class Fallback:
    """The fallback function's services, from the shared container's pieces and the fallback settings."""

    shared: Container
    settings: FallbackSettings
    # Every service reads time through here, so that tests can move the clock of the running handler.
    clock: Callable[[], datetime] = utcnow

    def now(self) -> datetime:
        return self.clock()

    @property
    def cipher(self) -> EnvelopeCipher:
        return self.shared.cipher

    @cached_property
    def session_records(self) -> SessionRepository:
        from facegate.fallback.dynamo import SessionRepository

        return SessionRepository(self.shared.settings.sessions_table, self.shared.settings.region)

    @cached_property
    def totp_records(self) -> TotpRepository:
        from facegate.fallback.dynamo import TotpRepository

        return TotpRepository(self.shared.settings.challenges_table, self.shared.settings.region)

    @cached_property
    def limiter(self) -> RateLimiter:
        from facegate.fallback.budget import RateLimiter
        from facegate.fallback.dynamo import RateLimitRepository
        from facegate.fallback.entities import Limits

        s = self.settings
        limits = Limits(s.subject_limit_per_minute, s.tenant_limit_per_minute, s.destination_limit_per_minute)
        counters = RateLimitRepository(self.shared.settings.sessions_table, self.shared.settings.region)
        return RateLimiter(counters, limits, self.now)

    @cached_property
    def budget(self) -> OtpGuessBudget:
        from facegate.fallback.budget import OtpGuessBudget
        from facegate.fallback.dynamo import OtpGuessRepository

        guesses = OtpGuessRepository(self.shared.settings.sessions_table, self.shared.settings.region)
        return OtpGuessBudget(guesses, limit=self.settings.otp_guesses_per_day, clock=self.now)

    @cached_property
    def sessions(self) -> SessionService:
        from facegate.fallback.sessions import SessionService
        from facegate.matching.dynamo import AttemptRepository

        s = self.shared.settings
        return SessionService(
            notices=self.shared.notices,
            consents=self.shared.consent_records,
            templates=self.shared.templates,
            attempts=AttemptRepository(s.sessions_table, s.region),
            sessions=self.session_records,
            totp=self.totp_records,
            limiter=self.limiter,
            budget=self.budget,
            cipher=self.cipher,
            auditor=self.shared.auditor,
            clock=self.now,
        )

    @cached_property
    def challenge_records(self) -> ChallengeRepository:
        from facegate.fallback.dynamo import ChallengeRepository

        return ChallengeRepository(self.shared.settings.challenges_table, self.shared.settings.region)

    @cached_property
    def challenges(self) -> ChallengeService:
        from facegate.core.results import ResultIssuer
        from facegate.fallback.challenges import ChallengeService
        from facegate.fallback.messaging import EmailSender, ReviewQueue, SmsSender
        from facegate.fallback.rules import CodeHasher

        s = self.shared.settings
        client = self.shared.client
        return ChallengeService(
            sessions=self.session_records,
            challenges=self.challenge_records,
            totp=self.totp_records,
            limiter=self.limiter,
            budget=self.budget,
            cipher=self.cipher,
            codes=CodeHasher(self.shared.pepper),
            email=EmailSender(client("sesv2"), self.settings.email_sender),
            sms=SmsSender(client("sns"), self.settings.sms_sender_id),
            reviews=ReviewQueue(client("sqs"), s.review_queue_url),
            results=ResultIssuer(self.shared.signer, s.issuer, self.now),
            auditor=self.shared.auditor,
            clock=self.now,
            events=self.shared.domain_events("facegate.fallback"),
        )

    @cached_property
    def reviews(self) -> ReviewService:
        from facegate.fallback.reviews import ReviewService

        return ReviewService(self.challenge_records, self.shared.auditor, self.now)

    @cached_property
    def totp(self) -> TotpService:
        from facegate.fallback.proofs import ResultTokenReader
        from facegate.fallback.totp import TotpService

        return TotpService(
            totp=self.totp_records,
            sessions=self.session_records,
            results=ResultTokenReader(self.shared.signer.jwks),
            issuer=self.shared.settings.issuer,
            limiter=self.limiter,
            cipher=self.cipher,
            auditor=self.shared.auditor,
            clock=self.now,
        )


@lru_cache(maxsize=1)
def container() -> Container:
    return Container(get_settings())


def reset() -> None:
    """Forget everything built (tests and the local cloud call this after changing the environment)."""
    get_settings.cache_clear()
    container.cache_clear()


def fallback() -> Fallback:
    """The fallback services of the current container (rebuilt when `reset()` made a new one)."""
    return container().fallback

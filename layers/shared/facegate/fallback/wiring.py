"""Builds the fallback services from the shared container's pieces, once per container (cold start)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property

from pydantic import BaseModel, ConfigDict, Field

from facegate.adapters.envelope import EnvelopeCipher
from facegate.fallback.adapters import EmailSender, ReviewQueue, SmsSender
from facegate.fallback.proofs import ResultTokenReader
from facegate.fallback.repositories import (
    ChallengeRepository,
    OtpGuessRepository,
    RateLimitRepository,
    SessionRepository,
    TotpRepository,
)
from facegate.fallback.services import (
    ChallengeService,
    CodeHasher,
    Limits,
    OtpGuessBudget,
    RateLimiter,
    SessionService,
    TotpService,
)
from facegate.repositories.attempts import AttemptRepository
from facegate.repositories.base import utcnow
from facegate.services.results import ResultIssuer
from facegate.wiring import Container, container


class FallbackSettings(BaseModel):
    """The fallback function's own environment (the shared Settings hold the tables and queues)."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    email_sender: str = Field("no-reply@facegate.example", alias="EMAIL_SENDER")
    sms_sender_id: str | None = Field(None, alias="SMS_SENDER_ID")
    subject_limit_per_minute: int = Field(10, alias="FALLBACK_SUBJECT_LIMIT_PER_MINUTE", ge=1)
    tenant_limit_per_minute: int = Field(600, alias="FALLBACK_TENANT_LIMIT_PER_MINUTE", ge=1)
    destination_limit_per_minute: int = Field(5, alias="FALLBACK_DESTINATION_LIMIT_PER_MINUTE", ge=1)
    otp_guesses_per_day: int = Field(10, alias="FALLBACK_OTP_GUESSES_PER_DAY", ge=1)

    @classmethod
    def from_env(cls) -> FallbackSettings:
        return cls.model_validate(dict(os.environ))


@dataclass
class Fallback:
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
        return SessionRepository(self.shared.settings.sessions_table, self.shared.settings.region)

    @cached_property
    def totp_records(self) -> TotpRepository:
        return TotpRepository(self.shared.settings.challenges_table, self.shared.settings.region)

    @cached_property
    def limiter(self) -> RateLimiter:
        s = self.settings
        limits = Limits(s.subject_limit_per_minute, s.tenant_limit_per_minute, s.destination_limit_per_minute)
        counters = RateLimitRepository(self.shared.settings.sessions_table, self.shared.settings.region)
        return RateLimiter(counters, limits, self.now)

    @cached_property
    def budget(self) -> OtpGuessBudget:
        guesses = OtpGuessRepository(self.shared.settings.sessions_table, self.shared.settings.region)
        return OtpGuessBudget(guesses, limit=self.settings.otp_guesses_per_day, clock=self.now)

    @cached_property
    def sessions(self) -> SessionService:
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
            hasher=self.shared.hasher,
            auditor=self.shared.auditor,
            clock=self.now,
        )

    @cached_property
    def challenges(self) -> ChallengeService:
        s = self.shared.settings
        client = self.shared.client
        return ChallengeService(
            sessions=self.session_records,
            challenges=ChallengeRepository(s.challenges_table, s.region),
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
        )

    @cached_property
    def totp(self) -> TotpService:
        return TotpService(
            totp=self.totp_records,
            sessions=self.session_records,
            results=ResultTokenReader(self.shared.signer.jwks),
            issuer=self.shared.settings.issuer,
            limiter=self.limiter,
            cipher=self.cipher,
            hasher=self.shared.hasher,
            auditor=self.shared.auditor,
            clock=self.now,
        )


_built: Fallback | None = None


def fallback() -> Fallback:
    """The fallback services of the current container (rebuilt when `facegate.wiring.reset()` made a new one)."""
    global _built
    shared = container()
    if _built is None or _built.shared is not shared:
        _built = Fallback(shared, FallbackSettings.from_env())
    return _built

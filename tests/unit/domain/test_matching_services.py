"""Verification's checks before the engine runs, and the rule on which templates may be used, on in-memory
fakes of the storage ports. No test here asserts a match: the engine is never called (its factory fails)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from facegate.consent.entities import ConsentState, Notice, Purpose
from facegate.core.audit import Auditor
from facegate.core.errors import ConsentRequiredError, FallbackRequiredError, NotEnrolledError, ReenrolmentRequiredError
from facegate.core.hashing import SubjectHasher
from facegate.core.results import ResultIssuer
from facegate.core.tenancy import CallerContext
from facegate.matching.entities import LOCKOUT_FAILURES, LOCKOUT_WINDOW, StoredTemplate, usable_templates
from facegate.matching.templates import TemplateOpener
from facegate.matching.verification import VerificationService
from tests.unit.domain.fakes import (
    Clock,
    InMemoryAttempts,
    InMemoryAuditLog,
    InMemoryConsents,
    InMemoryTemplates,
    InMemoryUploads,
    RecordingSigner,
    stored,
)

pytestmark = pytest.mark.unit
CALLER = CallerContext("demo", "client-1", frozenset({"verify"}), "req-1")
HASHER = SubjectHasher(b"p" * 32)
ALICE = HASHER.subject("demo", "alice")
REF = ALICE.ref
GRANTED = ConsentState(
    "checkout", "granted", "r2", 1, "s", "adult", "2026-03-01T00:00:00.000000Z", "r1", "2026-02-01T00:00:00.000000Z"
)
TEMPLATE = StoredTemplate(
    "demo",
    REF,
    "checkout",
    "t1",
    "e1",
    "mobilefacenet",
    "2.0.0",
    b"c",
    b"k",
    b"n",
    "2026-02-02T00:00:00.000000Z",
    0,
    consent_epoch="r1",
    seq=1,
)


class Purposes:
    def purpose(self, tenant_id: str, purpose: str) -> Purpose:
        return Purpose(purpose, purpose, 365)

    def current(self, tenant_id: str, purpose: str, locale: str) -> Notice:
        return Notice(purpose, locale, 1, "s", {"alternatives": ["email_otp", "totp"]})


class EngineModel:
    """Stands for the engine only where the service reads which model is loaded; any biometric call fails."""

    model_id, model_version = "mobilefacenet", "2.0.0"

    def __getattr__(self, name: str) -> None:
        raise AssertionError(f"the engine must not be asked to {name} here")


def service(
    consent: ConsentState | None, templates: list[StoredTemplate], attempts: InMemoryAttempts
) -> VerificationService:
    consents = InMemoryConsents()
    if consent is not None:
        consents.state_by_key[("demo", REF, "checkout")] = consent
    clock = Clock(datetime(2026, 3, 1, 12, 0, tzinfo=UTC))
    auditor = Auditor(InMemoryAuditLog())
    return VerificationService(
        Purposes(),
        consents,
        InMemoryTemplates(list(templates)),
        attempts,
        TemplateOpener(cipher=None, auditor=auditor, engine=EngineModel),  # type: ignore[arg-type]
        InMemoryUploads(),
        EngineModel,
        ResultIssuer(RecordingSigner(), "facegate", clock),
        auditor,
        clock,
    )


def test_without_consent_nothing_is_read_and_no_attempt_is_counted() -> None:
    attempts = InMemoryAttempts()
    with pytest.raises(ConsentRequiredError):
        service(None, [TEMPLATE], attempts).verify(CALLER, ALICE, "checkout", "high", image=b"jpeg")
    assert attempts.windows == {}


def test_a_subject_without_usable_templates_is_not_enrolled() -> None:
    withdrawn_period = stored(TEMPLATE, consent_epoch="r0")
    with pytest.raises(NotEnrolledError):
        service(GRANTED, [withdrawn_period], InMemoryAttempts()).verify(CALLER, ALICE, "checkout", "high", image=b"x")


def test_templates_of_another_model_need_reenrolment() -> None:
    old = stored(TEMPLATE, model_version="1.2.0")
    with pytest.raises(ReenrolmentRequiredError):
        service(GRANTED, [old], InMemoryAttempts()).verify(CALLER, ALICE, "checkout", "high", image=b"x")


def test_a_locked_subject_is_sent_to_the_purposes_non_face_methods_before_the_engine_runs() -> None:
    attempts = InMemoryAttempts()
    at = datetime(2026, 3, 1, 11, 59, tzinfo=UTC)
    for _ in range(LOCKOUT_FAILURES):
        assert attempts.reserve("demo", REF, "checkout", at, LOCKOUT_FAILURES, LOCKOUT_WINDOW) is not None
    with pytest.raises(FallbackRequiredError) as locked:
        service(GRANTED, [TEMPLATE], attempts).verify(CALLER, ALICE, "checkout", "high", image=b"x")
    assert locked.value.extra["methods"] == ["email_otp", "totp"]


def test_only_templates_of_the_current_consent_period_are_usable() -> None:
    legacy_after = stored(
        TEMPLATE, template_id="t2", consent_epoch=None, seq=0, created_at="2026-02-03T00:00:00.000000Z"
    )
    legacy_before = stored(
        TEMPLATE, template_id="t3", consent_epoch=None, seq=0, created_at="2026-01-03T00:00:00.000000Z"
    )
    other_period = stored(TEMPLATE, template_id="t4", consent_epoch="r0")
    usable = usable_templates([TEMPLATE, legacy_after, legacy_before, other_period], GRANTED)
    # (a template from before epochs counts if made in the current period; legacy rows are number 0, oldest first)
    assert [t.template_id for t in usable] == ["t2", "t1"]
    assert usable_templates([TEMPLATE], None) == []


def test_a_replacement_voids_the_templates_before_it() -> None:
    replacement = stored(TEMPLATE, template_id="t2", seq=2, replacement=True)
    later = stored(TEMPLATE, template_id="t3", seq=3)
    assert [t.template_id for t in usable_templates([TEMPLATE, replacement, later], GRANTED)] == ["t2", "t3"]

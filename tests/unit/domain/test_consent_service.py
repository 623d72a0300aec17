"""ConsentService and NoticeService on in-memory fakes of their storage ports: the consent chain, epochs,
withdrawal announcements and the retry after a lost race, without moto."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from facegate.consent.api import RecordConsentRequest
from facegate.consent.entities import GENESIS_HASH, Notice, Purpose, notice_sha256, record_hash
from facegate.consent.service import ConsentService, NoticeService
from facegate.core.audit import Auditor
from facegate.core.errors import ConflictError, EventPublishError, NoticeOutdatedError, PurposeNotFoundError
from facegate.core.hashing import SubjectHasher
from facegate.core.tenancy import CallerContext
from tests.unit.domain.fakes import (
    Clock,
    InMemoryAuditLog,
    InMemoryConsents,
    InMemoryTenants,
    RecordingPublisher,
    RecordingSigner,
)

pytestmark = pytest.mark.unit

CALLER = CallerContext("demo", "client-1", frozenset({"consent"}), "req-1")
ALICE = SubjectHasher(b"p" * 32).subject("demo", "alice")
CONTENT = {"title": "Face check at checkout", "alternatives": ["email_otp"]}


@pytest.fixture
def world() -> dict:
    # Given a tenant with the purpose `checkout` and its notice in English, and empty consent storage
    tenants = InMemoryTenants()
    tenants.put_purpose("demo", Purpose("checkout", "Checkout", 365))
    sha = notice_sha256("checkout", "en", 1, CONTENT)
    tenants.add_notice("demo", Notice("checkout", "en", 1, sha, CONTENT, "2026-01-01T00:00:00.000000Z"), "seed")
    consents, audit, publisher = InMemoryConsents(), InMemoryAuditLog(), RecordingPublisher()
    clock = Clock(datetime(2026, 3, 1, 12, 0, tzinfo=UTC))
    auditor = Auditor(audit)
    notices = NoticeService(tenants, auditor, clock)
    service = ConsentService(notices, consents, RecordingSigner(), publisher, auditor, "facegate", clock)
    return {
        "service": service,
        "consents": consents,
        "audit": audit,
        "publisher": publisher,
        "clock": clock,
        "sha": sha,
    }


def request(world: dict, decision: str = "granted", **changes: object) -> RecordConsentRequest:
    body = {
        "purpose": "checkout",
        "notice_version": 1,
        "notice_sha256": world["sha"],
        "decision": decision,
        "channel": "web",
        "locale": "en",
        "age_band": "adult",
        **changes,
    }
    return RecordConsentRequest.model_validate(body)


def test_a_grant_starts_the_chain_and_a_consent_period(world: dict) -> None:
    # When alice grants consent
    record = world["service"].record(CALLER, ALICE, request(world))
    # Then the record is the first link of her chain, hashed over its content, with a receipt
    assert record.prev_hash == GENESIS_HASH
    assert record.record_hash == record_hash(record)
    assert '"typ": "consent-receipt"' in record.receipt
    # and her state is granted, in the period that this grant began
    (state,) = world["service"].states(CALLER, ALICE)
    assert state.active and state.epoch == record.record_id
    assert world["audit"].actions() == ["consent.granted"]


def test_a_second_grant_links_to_the_first_and_keeps_the_period(world: dict) -> None:
    first = world["service"].record(CALLER, ALICE, request(world))
    world["clock"].advance(minutes=1)
    second = world["service"].record(CALLER, ALICE, request(world))
    assert second.prev_hash == first.record_hash
    (state,) = world["service"].states(CALLER, ALICE)
    assert state.epoch == first.record_id


def test_withdrawal_announces_the_period_it_ended_and_a_second_withdrawal_changes_nothing(world: dict) -> None:
    grant = world["service"].record(CALLER, ALICE, request(world))
    withdrawn = world["service"].withdraw(CALLER, ALICE, "checkout")
    assert withdrawn.action == "withdrawn"
    ((kind, detail),) = world["publisher"].published
    assert kind == "ConsentWithdrawn" and detail["epoch"] == grant.record_id
    assert detail["record_id"] == withdrawn.record_id and "alice" not in str(detail)  # only the keyed hash
    again = world["service"].withdraw(CALLER, ALICE, "checkout")
    # A second withdrawal stores nothing new; it announces the same period again (the same record, so the same
    # erasure job), in case the first announcement was lost
    assert again.record_id == withdrawn.record_id
    assert [d for _, d in world["publisher"].published] == [detail, detail]
    assert world["consents"].history("demo", ALICE.ref)[-1].record_id == withdrawn.record_id
    assert world["audit"].actions().count("consent.withdrawn") == 1
    assert not world["service"].is_active("demo", ALICE, "checkout")


class FailingPublisher(RecordingPublisher):
    """The bus and its fallback queue both down until `up` is set."""

    up: bool = False

    def publish(self, detail_type: str, detail: dict) -> None:
        if not self.up:
            raise EventPublishError()
        super().publish(detail_type, detail)


@pytest.mark.parametrize("how", ["withdraw", "refuse"])
def test_a_withdrawal_whose_announcement_failed_is_announced_when_retried(world: dict, how: str) -> None:
    # Given alice's grant, and a withdrawal (or a refusal) while nothing can be published
    grant = world["service"].record(CALLER, ALICE, request(world))
    publisher = FailingPublisher()
    world["service"]._publisher = publisher

    def end() -> object:
        if how == "withdraw":
            return world["service"].withdraw(CALLER, ALICE, "checkout")
        return world["service"].record(CALLER, ALICE, request(world, "refused"))

    with pytest.raises(EventPublishError):
        end()
    # Then the withdrawal is stored and audited (it stands), and nothing was announced
    assert not world["service"].is_active("demo", ALICE, "checkout")
    ending = next(r for r in world["consents"].history("demo", ALICE.ref) if r.action != "granted")
    assert world["audit"].actions()[-1] == ("consent.withdrawn" if how == "withdraw" else "consent.refused")
    assert publisher.published == []
    # When the person's request is retried once publishing works again
    publisher.up = True
    end()
    # Then the period that ended is announced: the first ending record and the grant's epoch
    ((kind, detail),) = publisher.published
    assert kind == "ConsentWithdrawn"
    assert (detail["record_id"], detail["epoch"]) == (ending.record_id, grant.record_id)


def test_a_repeated_refusal_with_no_grant_before_it_announces_nothing(world: dict) -> None:
    world["service"].record(CALLER, ALICE, request(world, "refused"))
    world["service"].record(CALLER, ALICE, request(world, "refused"))
    world["service"].withdraw(CALLER, ALICE, "checkout")
    assert world["publisher"].published == []


def test_a_grant_after_a_withdrawal_begins_a_new_period(world: dict) -> None:
    first = world["service"].record(CALLER, ALICE, request(world))
    world["service"].withdraw(CALLER, ALICE, "checkout")
    again = world["service"].record(CALLER, ALICE, request(world))
    (state,) = world["service"].states(CALLER, ALICE)
    assert state.epoch == again.record_id != first.record_id


def test_a_refusal_of_a_granted_purpose_ends_its_period_like_a_withdrawal(world: dict) -> None:
    grant = world["service"].record(CALLER, ALICE, request(world))
    world["service"].record(CALLER, ALICE, request(world, "refused"))
    ((kind, detail),) = world["publisher"].published
    assert kind == "ConsentWithdrawn" and detail["epoch"] == grant.record_id


def test_a_lost_race_is_retried_against_the_new_head(world: dict) -> None:
    world["consents"].lose_next_appends = 2
    record = world["service"].record(CALLER, ALICE, request(world))
    assert world["consents"].history("demo", record.subject_ref) == [record]


def test_three_lost_races_give_up_with_a_conflict(world: dict) -> None:
    world["consents"].lose_next_appends = 3
    with pytest.raises(ConflictError):
        world["service"].record(CALLER, ALICE, request(world))


def test_consent_to_an_outdated_notice_is_refused(world: dict) -> None:
    with pytest.raises(NoticeOutdatedError) as refused:
        world["service"].record(CALLER, ALICE, request(world, notice_sha256="0" * 64))
    assert refused.value.extra["current_version"] == 1


def test_an_unknown_purpose_is_not_found(world: dict) -> None:
    with pytest.raises(PurposeNotFoundError):
        world["service"].withdraw(CALLER, ALICE, "exam_proctoring")

"""The subject id is hashed once per request (issue 12): the handler builds the request's Subject (id and
keyed ref) and hands it both to the idempotency record and to the service, which never hashes it again."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from facegate.core.hashing import SubjectHasher
from tests.integration.conftest import Api, Reply
from tests.integration.test_consent_api import consent_body, current_notice
from tests.integration.test_enrolment_api import grant

pytestmark = pytest.mark.integration


@pytest.fixture
def hashes(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Callable[[], Reply]], tuple[Reply, int]]]:
    """`hashes(request)`: the request's reply and how many times it computed a subject ref."""
    calls: list[tuple[str, str]] = []
    ref = SubjectHasher.ref

    def counted(self: SubjectHasher, tenant_id: str, subject_id: str) -> str:
        calls.append((tenant_id, subject_id))
        return ref(self, tenant_id, subject_id)

    monkeypatch.setattr(SubjectHasher, "ref", counted)

    def run(request: Callable[[], Reply]) -> tuple[Reply, int]:
        calls.clear()
        reply = request()
        return reply, len(calls)

    yield run


KEY = {"Idempotency-Key": "hashed-once-0001"}


def test_recording_consent_hashes_the_subject_once(api: Api, subject_id: str, hashes: Any) -> None:
    body = consent_body(current_notice(api))
    reply, count = hashes(lambda: api.call("POST", f"/v1/subjects/{subject_id}/consents", body, headers=KEY))
    assert reply.status == 201, reply.body
    assert count == 1


def test_starting_an_enrolment_hashes_the_subject_once(api: Api, subject_id: str, hashes: Any) -> None:
    grant(api, subject_id)
    body = {"purpose": "checkout", "content_type": "image/jpeg"}
    reply, count = hashes(lambda: api.call("POST", f"/v1/subjects/{subject_id}/enrolments", body, headers=KEY))
    assert reply.status == 202, reply.body
    assert count == 1


def test_a_verification_hashes_the_subject_once(api: Api, subject_id: str, hashes: Any) -> None:
    # Consent but no enrolment: the service answers after it has used the ref (the engine never runs)
    grant(api, subject_id)
    body = {"subject_id": subject_id, "purpose": "checkout", "image": "aGVsbG8="}
    reply, count = hashes(lambda: api.call("POST", "/v1/verifications", body, headers=KEY))
    assert reply.status == 409 and reply.json["code"] == "not_enrolled", reply.body
    assert count == 1


def test_starting_a_verification_session_hashes_the_subject_once(api: Api, subject_id: str, hashes: Any) -> None:
    body = {"subject_id": subject_id, "purpose": "checkout", "email": "a@example.com"}
    reply, count = hashes(lambda: api.call("POST", "/v1/verification-sessions", body, headers=KEY))
    assert reply.status == 201, reply.body
    assert count == 1


def test_an_erasure_request_hashes_the_subject_once(api: Api, subject_id: str, hashes: Any) -> None:
    # Its consents are withdrawn at once and its job is queued: both use the one ref
    grant(api, subject_id)
    reply, count = hashes(lambda: api.call("DELETE", f"/v1/subjects/{subject_id}"))
    assert reply.status == 202, reply.body
    assert count == 1

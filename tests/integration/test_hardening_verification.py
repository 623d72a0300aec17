"""Hardening items 5 and 8 (issue 10), with the real engine on real photos and AWS emulated by moto in-process:
the face lockout under parallel attempts, probes (image and probe_id together, probes bound to a subject and
erased with it), decoding limits answered with their documented codes, and scores kept out of answers."""

from __future__ import annotations

import base64
import io
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from PIL import Image

from facegate.api.problems import problem
from facegate.core.clock import utcnow
from facegate.core.errors import FacegateError
from facegate.core.tenancy import CallerContext
from facegate.matching.biometrics import FaceBiometrics
from facegate.matching.dynamo import AttemptRepository
from facegate.matching.entities import LOCKOUT_FAILURES, LOCKOUT_WINDOW, EngineTemplate
from facegate.wiring import container
from tests.integration.conftest import Api, all_items
from tests.integration.test_deletion_api import erase, ref
from tests.integration.test_enrolment_api import uploads_bucket_keys
from tests.integration.test_identification_api import PURPOSE, enable, identify
from tests.integration.test_identification_api import enrol as enrol_for_identification
from tests.integration.test_verification_api import b64, check_token, enrol, verify

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def people(enrollable_people: list[list[Path]]) -> tuple[list[Path], list[Path]]:
    return enrollable_people[0], enrollable_people[1]


def attempts_counted(subject_id: str) -> int:
    settings = container().settings
    repository = AttemptRepository(settings.sessions_table, settings.region)
    return repository.recent_failures("demo", ref(subject_id), "checkout", utcnow() - LOCKOUT_WINDOW)


# -- item 5: the lockout holds under parallel attempts


class EngineGate:
    """Holds each attempt that reaches the face engine until every one of the N requests has either reached
    it or been answered without it, so all N are in flight together whatever the thread scheduling.

    Under a read-then-write lockout all N reach the engine (each read 0 failures) and all N are evaluated;
    with a reservation before the engine, only those that won a reservation ever get here. The engine itself
    is the real one: the gate only delays it."""

    def __init__(self, total: int) -> None:
        self._total = total
        self._ready = 0
        self._condition = threading.Condition()
        self._mine = threading.local()
        self.evaluated = 0

    def wrap(self, enrol: Callable[[FaceBiometrics, bytes], EngineTemplate]) -> Callable[..., EngineTemplate]:
        def gated(biometrics: FaceBiometrics, image: bytes) -> EngineTemplate:
            self._mine.reached = True
            with self._condition:
                self._ready += 1
                self.evaluated += 1
                self._condition.notify_all()
                if not self._condition.wait_for(lambda: self._ready >= self._total, timeout=120):
                    raise AssertionError("the other requests neither reached the engine nor were answered")
            return enrol(biometrics, image)

        return gated

    def answered(self) -> None:
        """Called by each request when it has its answer; counts those that never reached the engine."""
        if getattr(self._mine, "reached", False):
            return
        with self._condition:
            self._ready += 1
            self._condition.notify_all()


def test_parallel_impostor_attempts_are_evaluated_at_most_five_times(
    api: Api,
    subject_id: str,
    people: tuple[list[Path], list[Path]],
    monkeypatch: pytest.MonkeyPatch,
    atomic_dynamodb: None,
) -> None:
    """15 impostor verifications of one subject start together (a barrier) and are all in flight at once (the
    engine gate); each thread plays one Lambda instance of the matching function calling its service, as the
    handler does (the local gateway runs one invocation per function at a time, which would hide the race).

    What this proves and on what: DynamoDB applies each conditional UpdateItem atomically, and the reservation
    relies on that alone (single-item conditional updates, no transaction). moto's in-process backend does not
    lock between checking a condition and writing, so the test gives it DynamoDB's atomicity (the
    `atomic_dynamodb` fixture: one DynamoDB request at a time, as in the emulator of `make run`)."""
    a, b = people
    enrol(api, subject_id, a[0])
    total = 15
    gate = EngineGate(total)
    monkeypatch.setattr(FaceBiometrics, "enrol", gate.wrap(FaceBiometrics.enrol))
    service = container().verifications
    who = CallerContext("demo", "parallel-impostor", frozenset({"verify"}))
    impostor = b[1].read_bytes()
    subject = container().subject(who, subject_id)
    barrier = threading.Barrier(total)
    answers: list[tuple[int, str]] = []
    lock = threading.Lock()

    def attempt() -> None:
        barrier.wait()
        try:
            result = service.verify(who, subject, "checkout", "very_high", image=impostor)
            answer = (200, result.decision)
        except FacegateError as error:
            answer = (problem(error).status_code, error.code)
        finally:
            gate.answered()
        with lock:
            answers.append(answer)

    threads = [threading.Thread(target=attempt) for _ in range(total)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert Counter(answers) == {(200, "no_match"): LOCKOUT_FAILURES, (423, "fallback_required"): total - 5}, answers
    assert gate.evaluated == LOCKOUT_FAILURES
    assert attempts_counted(subject_id) == LOCKOUT_FAILURES
    # And the subject's own face is now refused too, with the non-face methods, until the window ends
    status, result = verify(api, subject_id, a[1])
    assert status == 423 and result["code"] == "fallback_required" and result["methods"], result


def test_attempts_that_end_before_a_decision_do_not_count(
    api: Api, subject_id: str, people: tuple[list[Path], list[Path]], faces_misc_dir: Path
) -> None:
    """Decision (documented): no_face, invalid_image, unsupported or too large images give their reservation
    back, since no comparison was made and nothing was learnt; only a no_match counts as a failure."""
    a, b = people
    enrol(api, subject_id, a[0])
    for _ in range(LOCKOUT_FAILURES + 1):
        status, result = verify(api, subject_id, faces_misc_dir / "noface_skimage_coffee.png")
        assert status == 422 and result["code"] == "no_face", result
    assert attempts_counted(subject_id) == 0
    status, result = verify(api, subject_id, b[1], "very_high")
    assert status == 200 and result["decision"] == "no_match"
    assert attempts_counted(subject_id) == 1
    status, result = verify(api, subject_id, a[1])
    assert status == 200 and result["decision"] == "match"
    assert attempts_counted(subject_id) == 0  # a match ends the window


# -- item 8: probes


def upload_probe(api: Api, subject_id: str | None, photo: Path) -> str:
    body: dict[str, Any] = {"content_type": "image/jpeg"}
    if subject_id is not None:
        body["subject_id"] = subject_id
    reply = api.call("POST", "/v1/probes", body)
    assert reply.status == 201, reply.body
    form = reply.json["upload"]
    posted = requests.post(form["url"], data=form["fields"], files={"file": ("p", photo.read_bytes())}, timeout=30)
    assert posted.status_code in (200, 204), posted.text
    return str(reply.json["probe_id"])


def test_image_and_probe_id_together_are_refused_and_the_probe_deleted(
    api: Api, aws: boto3.session.Session, subject_id: str, people: tuple[list[Path], list[Path]]
) -> None:
    a, _ = people
    enrol(api, subject_id, a[0])
    for image in (b64(a[1]), "*** not base64 ***"):
        # Given an uploaded probe
        probe_id = upload_probe(api, subject_id, a[2])
        assert len(uploads_bucket_keys(aws, api)) == 1
        # When a verification sends it together with an inline image
        body = {"subject_id": subject_id, "purpose": "checkout", "image": image, "probe_id": probe_id}
        reply = api.call("POST", "/v1/verifications", body)
        # Then it is refused with a stable code, and the unused probe is gone all the same
        assert reply.status == 422 and reply.json["code"] == "invalid_request", reply.body
        assert reply.headers["content-type"] == "application/problem+json"
        assert reply.json["errors"][0]["type"] == "image_and_probe_id"
        assert uploads_bucket_keys(aws, api) == []
        # And the probe cannot be used later
        alone = api.call(
            "POST", "/v1/verifications", {"subject_id": subject_id, "purpose": "checkout", "probe_id": probe_id}
        )
        assert alone.status == 404 and alone.json["code"] == "probe_not_found"
    assert attempts_counted(subject_id) == 0

    # The same holds for identification (its probes carry no subject)
    probe_id = upload_probe(api, None, a[2])
    reply = api.call("POST", "/v1/identifications", {"purpose": "checkout", "image": b64(a[1]), "probe_id": probe_id})
    assert reply.status == 422 and reply.json["code"] == "invalid_request", reply.body
    assert uploads_bucket_keys(aws, api) == []


def test_a_probe_serves_only_its_subject_and_erasure_removes_it(
    api: Api, aws: boto3.session.Session, subject_id: str, people: tuple[list[Path], list[Path]]
) -> None:
    a, _ = people
    enrol(api, subject_id, a[0])
    other = f"{subject_id}-other"
    enrol(api, other, a[0])
    # Given a probe uploaded for the subject: its key carries the subject's keyed hash, never the raw id
    probe_id = upload_probe(api, subject_id, a[1])
    (key,) = uploads_bucket_keys(aws, api)
    assert key == f"probes/demo/{ref(subject_id)}/{probe_id}" and subject_id not in key
    # When another subject's verification names it, Then it is not found (and not used)
    reply = api.call("POST", "/v1/verifications", {"subject_id": other, "purpose": "checkout", "probe_id": probe_id})
    assert reply.status == 404 and reply.json["code"] == "probe_not_found"
    assert uploads_bucket_keys(aws, api) == [key]
    # When the subject is erased with the probe abandoned, Then the erasure removes it
    done = erase(api, subject_id)
    assert done["status"] == "completed" and done["removed"]["uploads"] == 1, done
    assert uploads_bucket_keys(aws, api) == []


# -- item 8: decoding limits, answered with the documented codes end to end


def _saved(image: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt)
    return buf.getvalue()


def _small() -> Image.Image:
    return Image.new("RGB", (64, 64), (120, 90, 60))


MEDIA: dict[str, tuple[Callable[[], bytes], int, str]] = {
    "gif": (lambda: _saved(_small(), "GIF"), 415, "unsupported_media_type"),
    "bmp": (lambda: _saved(_small(), "BMP"), 415, "unsupported_media_type"),
    "tiff": (lambda: _saved(_small(), "TIFF"), 415, "unsupported_media_type"),
    "svg": (
        lambda: b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"></svg>',
        415,
        "unsupported_media_type",
    ),
    # The file: one colour, 8000 x 5000 (40 Mpx), about 50 KB as PNG
    "png_bomb_40_mpx": (lambda: _saved(Image.new("L", (8000, 5000), 200), "PNG"), 413, "image_too_large"),
}


@pytest.mark.parametrize("kind", sorted(MEDIA))
def test_other_formats_and_bombs_get_their_documented_codes(
    api: Api, aws: boto3.session.Session, subject_id: str, people: tuple[list[Path], list[Path]], kind: str
) -> None:
    make, status, code = MEDIA[kind]
    data = base64.b64encode(make()).decode()
    enrol(api, subject_id, people[0][0])
    # Verification
    reply = api.call("POST", "/v1/verifications", {"subject_id": subject_id, "purpose": "checkout", "image": data})
    assert (reply.status, reply.json["code"]) == (status, code), reply.body
    assert reply.headers["content-type"] == "application/problem+json"
    assert attempts_counted(subject_id) == 0
    # Enrolment (inline)
    reply = api.call("POST", f"/v1/subjects/{subject_id}/enrolments", {"purpose": "checkout", "image": data})
    assert (reply.status, reply.json["code"]) == (status, code), reply.body
    assert uploads_bucket_keys(aws, api) == []


# -- item 8: no score oracle


def _audit(aws: boto3.session.Session, api: Api, action: str) -> list[dict[str, Any]]:
    return [i for i in all_items(aws, api.cloud)["AuditTable"] if i["action"]["S"] == action]


def test_scores_are_hidden_unless_the_purpose_exposes_them_and_never_signed(
    api: Api, aws: boto3.session.Session, subject_id: str, people: tuple[list[Path], list[Path]]
) -> None:
    a, _ = people
    enrol(api, subject_id, a[0])
    # By default: the decision and the level, no score, no threshold, in the answer or in the token
    status, result = verify(api, subject_id, a[1])
    assert status == 200 and result["decision"] == "match" and result["security_level"] == "high", result
    assert "score" not in result and "threshold" not in result
    claims = check_token(api, result["result_token"])
    assert "score" not in claims and "threshold" not in claims
    # Only an admin may expose them
    verifier = api.cloud.token("demo", scopes=("verify",))
    assert api.call("PUT", "/v1/purposes/checkout", {"expose_scores": True}, token=verifier).status == 403
    try:
        reply = api.call("PUT", "/v1/purposes/checkout", {"expose_scores": True})
        assert reply.status == 200 and reply.json["expose_scores"] is True, reply.body
        configured = [i for i in _audit(aws, api, "purpose.configured") if '"expose_scores": true' in i["details"]["S"]]
        assert configured
        status, result = verify(api, subject_id, a[1])
        assert status == 200 and result["score"] >= result["threshold"] > 0, result
        claims = check_token(api, result["result_token"])
        assert "score" not in claims and "threshold" not in claims  # never in the signed result
        exposed = [
            i for i in _audit(aws, api, "face.scores_exposed") if i.get("subject_ref", {}).get("S") == ref(subject_id)
        ]
        assert len(exposed) == 1 and exposed[0]["outcome"]["S"] == "match"
    finally:
        assert api.call("PUT", "/v1/purposes/checkout", {"expose_scores": False}).status == 200
    status, result = verify(api, subject_id, a[1])
    assert status == 200 and "score" not in result


def test_identification_names_candidates_without_scores_by_default(
    api: Api, subject_id: str, enrollable_people: list[list[Path]]
) -> None:
    # In the tenant "other", so that the demo tenant's 1:N stays off for the tests that expect it off
    tenant = "other"
    person = enrollable_people[6]
    try:
        enable(api, tenant=tenant)
        enrol_for_identification(api, subject_id, person[0], tenant=tenant)
        status, body = identify(api, person[1], tenant=tenant)
        # (other tests may have enrolled the same person in this tenant under other subject ids)
        assert status == 200 and subject_id in [c["subject_id"] for c in body["candidates"]], body
        assert "threshold" not in body and all("score" not in c for c in body["candidates"])
        # Exposing scores leaves the 1:N switch as it is (no assessment id needed to change another setting)
        reply = api.call("PUT", f"/v1/purposes/{PURPOSE}", {"expose_scores": True}, tenant=tenant)
        assert reply.status == 200 and reply.json["identification_enabled"] is True, reply.body
        status, body = identify(api, person[1], tenant=tenant)
        assert body["candidates"][0]["score"] >= body["threshold"] > 0, body
    finally:
        off = {"expose_scores": False, "identification_enabled": False}
        assert api.call("PUT", f"/v1/purposes/{PURPOSE}", off, tenant=tenant).status == 200

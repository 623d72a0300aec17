"""A device sends its own proctoring frames (issues 14 + 15): the candidate's browser holds a device token with the
operation `proctoring` for the purpose exam_proctoring; the device routes call the same ProctoringService methods as
the tenant routes, on real frames (../shared/clips) with the real engine; another subject's sitting is not found,
a token without the operation, of another purpose, or revoked is refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from localcloud.gateway import build_event, to_http
from tests.integration.conftest import Api, Reply
from tests.integration.proctoring_frames import clean_session, clip, timestamps
from tests.integration.test_device_sessions_api import context_of, device, mint
from tests.integration.test_liveness_api import TURNS, burst_body, bursts, turns_burst
from tests.integration.test_proctoring_api import PURPOSE, enrol, frames_body, start, verified

pytestmark = pytest.mark.integration
__all__ = ["bursts"]  # the module-scoped fixture of the liveness tests: the candidate's challenge bursts

END = "POST /v1/device/proctoring/sessions/{session_id}/end"
EXAM_OPS = ["notice", "consent", "liveness", "proctoring"]


def exam_token(api: Api, subject_id: str, operations: list[str] | None = None) -> dict[str, Any]:
    return mint(api, subject_id, operations or EXAM_OPS, purpose=PURPOSE)


def device_start(api: Api, token: str, bursts: dict[str, Any], **more: Any) -> Reply:
    """The device's liveness challenge (retried until it is one the clips can answer), then the start."""
    for _ in range(200):
        challenge = device(api, "POST", "/v1/device/liveness/sessions", token, {})
        assert challenge.status == 201, challenge.body
        actions = tuple(challenge.json["challenge"]["actions"])
        if actions in TURNS:
            break
    else:
        raise AssertionError("no turn challenge in 200 tries")
    frames = turns_burst(bursts, actions, 4)
    body = {"exam_id": "exam-2026-01", "liveness": burst_body(challenge.json["session_id"], frames), **more}
    return device(api, "POST", "/v1/device/proctoring/sessions", token, body)


def end_directly(api: Api, session_id: str, context: dict[str, Any]) -> Reply:
    """POST /v1/device/proctoring/sessions/{id}/end invoked with the authorizer context of our choosing."""
    route = next(r for r in api.cloud.gateway.routes if r.route_key == END)
    path = f"/v1/device/proctoring/sessions/{session_id}/end"
    event = build_event(
        route, {"session_id": session_id}, "POST", path, "", {"content-type": "application/json"}, b"", None
    )
    event["requestContext"]["authorizer"] = {"lambda": context}
    answer = to_http(api.cloud.gateway.invoke("MatchingFunction", event))
    return Reply(answer.status, answer.headers, answer.body)


@pytest.fixture
def candidate(api: Api, subject_id: str, shared_dir: Path) -> str:
    enrol(api, subject_id, shared_dir)
    return subject_id


def test_a_device_runs_its_own_sitting_with_the_same_signed_report_as_the_tenant_route(
    api: Api, candidate: str, shared_dir: Path, bursts: dict[str, Any]
) -> None:
    token = exam_token(api, candidate)["token"]
    started = device_start(api, token, bursts, locale="zh-CN")
    assert started.status == 201, started.body
    s = started.json
    assert s["subject_id"] == candidate and s["purpose"] == PURPOSE and s["status"] == "active"
    assert s["liveness"]["decision"] == "live" and s["capture"]["stored"] is False
    assert s["notice"]["locale"] == "zh-CN"
    assert started.headers["cache-control"] == "no-store"
    sid = s["session_id"]

    frames, times = clean_session(shared_dir, 10), timestamps(10)
    first = device(
        api, "POST", f"/v1/device/proctoring/sessions/{sid}/frames", token, frames_body(0, frames[:5], times[:5])
    )
    assert first.status == 200 and first.json["next_sequence"] == 1 and first.json["replayed"] is False, first.body
    # A retried batch (the answer was lost) is answered from the stored answer, not applied twice
    retried = device(
        api, "POST", f"/v1/device/proctoring/sessions/{sid}/frames", token, frames_body(0, frames[:5], times[:5])
    )
    assert retried.status == 200 and retried.json["replayed"] is True
    assert {k: v for k, v in retried.json.items() if k != "replayed"} == {
        k: v for k, v in first.json.items() if k != "replayed"
    }
    # After a reload (or once its 10-minute token nears its end) the page gets a new device session from the
    # platform, reads its sitting and goes on from there
    token = exam_token(api, candidate)["token"]
    resumed = device(api, "GET", f"/v1/device/proctoring/sessions/{sid}", token)
    assert resumed.status == 200, resumed.body
    assert (resumed.json["status"], resumed.json["next_sequence"]) == ("active", 1)
    second = device(
        api, "POST", f"/v1/device/proctoring/sessions/{sid}/frames", token, frames_body(1, frames[5:], times[5:])
    )
    assert second.status == 200 and second.json["next_sequence"] == 2, second.body
    assert [i for i in second.json["incidents"] if not i["technical"]] == []

    ended = device(api, "POST", f"/v1/device/proctoring/sessions/{sid}/end", token)
    assert ended.status == 200, ended.body
    claims = verified(api, ended.json["report_token"])
    assert claims["session_id"] == sid and claims["capture"]["frames"] == 10 and claims["capture"]["batches"] == 2
    assert claims["summary"]["counted_against_candidate"] == 0
    # The tenant sees the same sitting and report
    assert api.call("GET", f"/v1/proctoring/sessions/{sid}").json["report_token"] == ended.json["report_token"]


def test_another_person_spliced_into_the_device_frames_is_an_incident(
    api: Api, candidate: str, shared_dir: Path, bursts: dict[str, Any]
) -> None:
    token = exam_token(api, candidate)["token"]
    sid = device_start(api, token, bursts).json["session_id"]
    frames = (
        clean_session(shared_dir, 4) + clip(shared_dir, "talk_a", [0, 10, 20, 30, 40]) + clean_session(shared_dir, 3)
    )
    times = timestamps(len(frames))
    answers = [
        device(
            api,
            "POST",
            f"/v1/device/proctoring/sessions/{sid}/frames",
            token,
            frames_body(n, frames[k : k + 6], times[k : k + 6]),
        )
        for n, k in enumerate(range(0, len(frames), 6))
    ]
    assert all(a.status == 200 for a in answers), [a.body for a in answers]
    report = device(api, "POST", f"/v1/device/proctoring/sessions/{sid}/end", token).json["report"]
    assert [i["type"] for i in report["timeline"]] == ["different_person"], report["timeline"]


def test_a_token_without_the_proctoring_operation_is_refused(
    api: Api, candidate: str, shared_dir: Path, bursts: dict[str, Any]
) -> None:
    token = exam_token(api, candidate, ["notice", "consent", "liveness", "verify"])["token"]
    refused = device_start(api, token, bursts)
    # (the gateway's authorizer refuses: a plain 403 as API Gateway answers; the handler's own check is below)
    assert refused.status == 403, refused.body
    sid = start(api, candidate, bursts).json["session_id"]  # a sitting of the same candidate, by the tenant
    body = frames_body(0, clean_session(shared_dir, 1), [0.0])
    for path, payload in [
        (f"/v1/device/proctoring/sessions/{sid}/frames", body),
        (f"/v1/device/proctoring/sessions/{sid}/end", None),
    ]:
        reply = device(api, "POST", path, token, payload)
        assert reply.status == 403, (path, reply.body)
    assert device(api, "GET", f"/v1/device/proctoring/sessions/{sid}", token).status == 403
    assert api.call("GET", f"/v1/proctoring/sessions/{sid}").json["next_sequence"] == 0


def test_a_device_session_of_another_purpose_cannot_start_a_sitting(api: Api, subject_id: str) -> None:
    token = mint(api, subject_id, ["proctoring"])["token"]  # purpose checkout
    reply = device(api, "POST", "/v1/device/proctoring/sessions", token, {"exam_id": "e-1", "mode": "human_proctor"})
    assert reply.status == 403 and reply.json["code"] == "operation_not_allowed", reply.body


def test_another_subjects_sitting_is_not_found(
    api: Api, candidate: str, shared_dir: Path, bursts: dict[str, Any]
) -> None:
    # Given the candidate's sitting, started by the tenant
    sid = start(api, candidate, bursts).json["session_id"]
    # When another person's device (same tenant, same purpose, all operations) names it
    other = exam_token(api, f"{candidate}-other")["token"]
    body = frames_body(0, clean_session(shared_dir, 1), [0.0])
    frames = device(api, "POST", f"/v1/device/proctoring/sessions/{sid}/frames", other, body)
    ended = device(api, "POST", f"/v1/device/proctoring/sessions/{sid}/end", other)
    read = device(api, "GET", f"/v1/device/proctoring/sessions/{sid}", other)
    # Then it is not found, as another tenant's would be, and the sitting is untouched
    for reply in (frames, ended, read):
        assert reply.status == 404 and reply.json["code"] == "proctoring_session_not_found", reply.body
    view = api.call("GET", f"/v1/proctoring/sessions/{sid}").json
    assert view["status"] == "active" and view["next_sequence"] == 0
    # And the candidate's own device may send to it
    own = exam_token(api, candidate)["token"]
    reply = device(api, "POST", f"/v1/device/proctoring/sessions/{sid}/frames", own, body)
    assert reply.status == 200 and reply.json["next_sequence"] == 1, reply.body


def test_a_revoked_token_sends_no_more_frames(
    api: Api, candidate: str, shared_dir: Path, bursts: dict[str, Any]
) -> None:
    minted = exam_token(api, candidate)
    token = minted["token"]
    sid = device_start(api, token, bursts).json["session_id"]
    frames, times = clean_session(shared_dir, 2), timestamps(2)
    path = f"/v1/device/proctoring/sessions/{sid}/frames"
    assert device(api, "POST", path, token, frames_body(0, frames[:1], times[:1])).status == 200

    assert api.call("DELETE", f"/v1/device-sessions/{minted['device_session_id']}").status == 204

    late = device(api, "POST", path, token, frames_body(1, frames[1:], times[1:]))
    assert late.status == 403, late.body
    assert device(api, "POST", f"/v1/device/proctoring/sessions/{sid}/end", token).status == 403
    assert api.call("GET", f"/v1/proctoring/sessions/{sid}").json["next_sequence"] == 1


def test_the_handlers_refuse_another_subjects_sitting_even_past_the_authorizer(
    api: Api, candidate: str, shared_dir: Path, bursts: dict[str, Any]
) -> None:
    """Defence in depth: a context the authorizer let through (a valid token of another subject) still reaches only
    that subject's sittings; a context without the operation is refused by the handler itself."""
    sid = start(api, candidate, bursts).json["session_id"]
    other = exam_token(api, f"{candidate}-other")
    found = end_directly(api, sid, context_of(other))
    assert found.status == 404, found.body
    narrow = end_directly(api, sid, context_of(exam_token(api, candidate), operations="notice liveness"))
    assert narrow.status == 403 and narrow.json["code"] == "operation_not_allowed", narrow.body

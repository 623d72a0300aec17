"""The demo exam (/demo/?view=exam, the TypeScript SDK's proctoring) in headless Chromium with a fake camera playing
real frames from ../shared/clips, against a local cloud of its own: the candidate (the man of turns_a, enrolled by
the exam platform beforehand) consents, answers the liveness challenge the service chose (turns, as the checkout
test does), which starts the sitting; then the camera shows him facing the exam, with a few seconds of another man
(talk_a) spliced in; the page sends a frame every 2 s in batches of 3, is reloaded once mid-sitting (it goes on with
the same sitting under a new device session), and "End exam" shows the signed report."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

from localcloud.process import RunningCloud
from tests.browser.fakecam import write_y4m
from tests.browser.test_demo_checkout import ARTIFACTS, STEP_MS, Run, browser, camera_file, cloud
from tests.integration.proctoring_frames import CLEAN
from tests.integration.test_liveness_api import TURNS, burst_body, bursts, turns_burst

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
# The checkout test's module fixtures (Chromium, a local cloud) and the liveness tests' (the candidate's bursts)
__all__ = ["browser", "bursts", "camera_file", "cloud"]

PURPOSE = "exam_proctoring"
EXAM_FPS = 5  # the file's rate; each picture is held for a second (EXAM_FPS frames)


def call(cloud: RunningCloud, token: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """The exam platform's backend calling the API with its tenant token."""
    request = urllib.request.Request(
        cloud.base + path, data=None if body is None else json.dumps(body).encode(), method=method
    )
    request.add_header("authorization", f"Bearer {token}")
    request.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=120) as response:  # the local cloud only
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def enrol_candidate(cloud: RunningCloud, subject: str, bursts: dict[str, Any]) -> None:
    """At registration, before the exam: consent, then a live enrolment (the purpose requires liveness) from one
    of the candidate's genuine challenge bursts."""
    token = cloud.token()
    status, notice = call(cloud, token, "GET", f"/v1/notices/{PURPOSE}?locale=en")
    assert status == 200, notice
    consent = {
        "purpose": PURPOSE,
        "notice_version": notice["version"],
        "notice_sha256": notice["sha256"],
        "decision": "granted",
        "channel": "web",
        "locale": "en",
        "age_band": "adult",
    }
    status, body = call(cloud, token, "POST", f"/v1/subjects/{subject}/consents", consent)
    assert status == 201, body
    for _ in range(200):  # until the random challenge is one the clips perform (2 of 12)
        status, live = call(cloud, token, "POST", "/v1/liveness/sessions", {"subject_id": subject, "purpose": PURPOSE})
        assert status == 201, live
        if tuple(live["challenge"]["actions"]) in TURNS:
            break
    frames = turns_burst(bursts, tuple(live["challenge"]["actions"]), 0)
    enrolment = {"purpose": PURPOSE, "liveness": burst_body(live["session_id"], frames)}
    status, body = call(cloud, token, "POST", f"/v1/subjects/{subject}/enrolments", enrolment)
    assert status == 201 and body["status"] == "completed", body


def exam_frames(shared: Path) -> list[Path]:
    """10 s of the candidate facing the screen, 6 s of another man, 8 s of the candidate; one picture a second."""
    me = sorted((shared / "clips" / "turns_a").glob("*.jpg"))
    other = sorted((shared / "clips" / "talk_a").glob("*.jpg"))
    seconds = [me[i] for i in CLEAN[:10]] + [other[i] for i in (0, 10, 20, 30, 40, 50)] + [me[i] for i in CLEAN[:8]]
    return [path for path in seconds for _ in range(EXAM_FPS)]


def test_exam_starts_live_sends_batches_and_ends_with_a_signed_report(
    cloud: RunningCloud, browser: Any, camera_file: Path, shared_dir: Path, bursts: dict[str, Any]
) -> None:
    subject = f"candidate-{uuid.uuid4().hex[:10]}"
    enrol_candidate(cloud, subject, bursts)
    run = Run(browser, "exam")
    try:
        page = run.page
        page.goto(f"{cloud.base}/demo/?view=exam&lang=en&subject={subject}&interval=2&batch=3")
        run.screen("notice")
        assert page.is_visible("[data-fg=refuse]")  # a sitting without face processing is as easy to choose
        run.shot("notice")
        page.click("[data-fg=agree]")
        run.perform_challenge(camera_file, shared_dir, "turns_a", "exam")
        run.screen("started", timeout=STEP_MS)
        started = page.locator("[data-fg=started]")
        session_id = started.get_attribute("data-session")
        assert session_id and started.get_attribute("data-liveness") == "live", page.inner_text("main")
        run.shot("started")

        # The exam: the camera (opened again when the exam begins) shows the candidate, then another man
        write_y4m(camera_file, exam_frames(shared_dir), fps=EXAM_FPS)
        began = time.monotonic()
        page.click("[data-fg=begin]")
        run.screen("exam")
        page.wait_for_selector("[data-fg=batches]:not([data-applied='0'])", timeout=60_000)
        run.shot("exam-first-batch")
        # A reload in the middle of the sitting: the page gets a new device session from the platform, reads the
        # sitting's next_sequence and goes on with it (no new consent, challenge or sitting)
        before = int(str(page.get_attribute("[data-fg=batches]", "data-applied")))
        page.reload()
        run.screen("exam", timeout=STEP_MS)
        page.wait_for_function(
            f"() => Number(document.querySelector('[data-fg=batches]')?.dataset.applied) > {before}", timeout=60_000
        )
        run.shot("exam-after-reload")
        page.wait_for_function(
            "() => Number(document.querySelector('[data-fg=batches]')?.dataset.applied) >= 4", timeout=90_000
        )
        run.shot("exam-batches")
        applied = int(str(page.get_attribute("[data-fg=batches]", "data-applied")))
        assert applied >= 4 and not page.inner_text("[data-fg=send-problem]"), page.inner_text("main")
        page.click("[data-fg=end]")
        run.screen("report", timeout=STEP_MS)
        run.shot("report")
        assert page.get_attribute("[data-fg=signature]", "data-valid") == "true"  # checked with /v1/keys
        assert page.get_attribute("[data-fg=report-status]", "data-status") == "ended"
        claims = run.claims()
        assert claims["typ"] == "proctoring-report" and claims["session_id"] == session_id, claims
        assert claims["capture"]["batches"] >= applied and claims["capture"]["frames"] >= 3 * applied, claims
        # What the spliced seconds of another man made of the sitting (for a person to review, never a verdict) is
        # kept with the screenshots; the frames the page grabbed depend on the machine's timing
        record = {"seconds": round(time.monotonic() - began, 1), "timeline": claims.get("timeline")}
        (ARTIFACTS / "exam-timeline.json").write_text(json.dumps(record, indent=2), encoding="utf-8")
    finally:
        run.close()

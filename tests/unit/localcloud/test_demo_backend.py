"""The demo page's server side (localcloud.demo): its files, and the checks of its tiny tenant backend that need
no running API (the whole flow over HTTP is tests/browser)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from localcloud import demo
from localcloud.demo import DemoBackend

pytestmark = pytest.mark.unit


def backend() -> DemoBackend:
    def no_api() -> str:
        raise AssertionError("the API must not be called")

    return DemoBackend("http://127.0.0.1:1", no_api, lambda: [])


@pytest.fixture
def dist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    site = tmp_path / "dist" / "demo"
    (site / "assets").mkdir(parents=True)
    (site / "index.html").write_text("<!doctype html><title>demo</title>")
    (site / "assets" / "app.js").write_text("console.log(1)")
    (tmp_path / "secret.txt").write_text("not for the web")
    monkeypatch.setattr(demo, "DIST", site)
    return site


def test_serves_the_built_page_under_demo(dist: Path) -> None:
    b = backend()
    assert b.handles("/demo/") and b.handles("/demo") and not b.handles("/v1/health") and not b.handles("/demos")
    assert b.handle("GET", "/demo", b"").headers["location"] == "/demo/"
    page = b.handle("GET", "/demo/", b"")
    assert page.status == 200 and page.headers["content-type"] == "text/html" and b"<title>demo" in page.body
    script = b.handle("GET", "/demo/assets/app.js", b"")
    assert script.status == 200 and "javascript" in script.headers["content-type"]


def test_never_serves_a_file_outside_the_build(dist: Path) -> None:
    for path in ("/demo/../secret.txt", "/demo/assets/../../secret.txt", "/demo/%2e%2e/secret.txt", "/demo/nope.js"):
        reply = backend().handle("GET", path, b"")
        assert reply.status == 404 and b"not for the web" not in reply.body, path


def test_says_how_to_build_the_page_when_it_is_not_built(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(demo, "DIST", tmp_path / "missing")
    reply = backend().handle("GET", "/demo/", b"")
    assert reply.status == 503 and b"make sdk-js" in reply.body


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("POST", "/demo/backend/device-session", b"{not json", 400),
        ("POST", "/demo/backend/device-session", b"[1]", 400),
        ("POST", "/demo/backend/device-session", b'{"subject_id": "no spaces allowed"}', 400),
        ("POST", "/demo/backend/exam-session", b'{"subject_id": "no spaces allowed"}', 400),
        ("POST", "/demo/backend/exam-session", b"[1]", 400),
        ("POST", "/demo/backend/result", b'{"result_token": 5}', 400),
        ("POST", "/demo/backend/other", b"{}", 404),
        ("POST", "/demo/index.html", b"", 405),
    ],
)
def test_refuses_bad_requests_before_calling_the_api(method: str, path: str, body: bytes, status: int) -> None:
    reply = backend().handle(method, path, body)
    assert reply.status == status
    assert json.loads(reply.body)["code"]


def test_the_exam_session_is_a_narrow_device_session_for_the_candidates_sitting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The exam view's backend mints for exam_proctoring with the operations an exam needs, never verify or enrol."""
    calls: list[tuple[str, str, object]] = []

    def api(method: str, path: str, body: object = None) -> tuple[int, object]:
        calls.append((method, path, body))
        return 201, {"token": "t", "device_session_id": "d"}

    b = backend()
    monkeypatch.setattr(b, "_call", api)
    reply = b.handle("POST", "/demo/backend/exam-session", b'{"subject_id": "cand-1"}')
    assert reply.status == 201 and reply.headers["cache-control"] == "no-store"
    assert json.loads(reply.body)["exam_id"] == demo.EXAM_ID
    assert calls == [
        (
            "POST",
            "/v1/device-sessions",
            {
                "subject_id": "cand-1",
                "purpose": "exam_proctoring",
                "operations": ["notice", "consent", "liveness", "proctoring"],
                "ttl_seconds": 600,
            },
        )
    ]

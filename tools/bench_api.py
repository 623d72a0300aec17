"""End-to-end latency of the main operations through the real handlers, warm, with AWS emulated by moto
in-process (so it measures our code, the models and the emulator, not AWS's network latency).

    python tools/bench_api.py [--runs 30] [--shared ../shared] [--liveness-only]

Single-photo operations run on `checkout`, whose liveness policy is made optional for them; "POST verification
(liveness, 30 frames)" runs on `exam_proctoring` (liveness required): a 30-frame genuine challenge burst composed from
../shared/clips/turns_a (as tools/evaluate_liveness.py composes it), judged and verified in one call, timed alone
(the session it answers is started before the clock starts).

Prints a table of p50 / p95 milliseconds per operation and, as its last line, one JSON object.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tools"), str(REPO / "layers" / "shared"), str(REPO / "layers" / "model")]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--shared", default=str(REPO.parent / "shared"))
    parser.add_argument("--liveness-only", action="store_true", help="only the liveness verification")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")  # Powertools notes every write sent without an Idempotency-Key

    import boto3
    from moto import mock_aws

    from localcloud.cloud import LOCAL_ENVIRONMENT, REGION, start

    os.environ.update(LOCAL_ENVIRONMENT)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"
    os.environ["POWERTOOLS_LOG_LEVEL"] = "WARNING"
    faces = sorted(p for p in (Path(args.shared) / "faces").iterdir() if p.is_dir() and len(list(p.iterdir())) >= 4)
    alice, bob = sorted(faces[0].iterdir()), sorted(faces[1].iterdir())

    with mock_aws():
        cloud = start(boto3.session.Session(region_name=REGION))
        token = cloud.token("demo")

        def call(method: str, path: str, body: Any = None) -> tuple[int, Any]:
            path, _, query = path.partition("?")
            headers = {"content-type": "application/json", "authorization": f"Bearer {token}"}
            raw = json.dumps(body).encode() if body is not None else b""
            reply = cloud.gateway.handle(method, path, query, headers, raw)
            return reply.status, json.loads(reply.body or b"null")

        single = {"liveness": "optional", "liveness_reason": "benchmark of single-photo operations"}
        assert call("PUT", "/v1/purposes/checkout", single)[0] == 200
        _, notice = call("GET", "/v1/notices/checkout?locale=en")
        consent = {
            "purpose": "checkout",
            "notice_version": notice["version"],
            "notice_sha256": notice["sha256"],
            "decision": "granted",
            "channel": "web",
            "locale": "en",
            "age_band": "adult",
        }

        def b64(path: Path) -> str:
            return base64.b64encode(path.read_bytes()).decode()

        counter = {"n": 0}

        def fresh_subject() -> str:
            counter["n"] += 1
            return f"bench-{counter['n']}"

        def record_consent() -> None:
            assert call("POST", f"/v1/subjects/{fresh_subject()}/consents", consent)[0] == 201

        def enrol() -> None:
            subject = fresh_subject()
            call("POST", f"/v1/subjects/{subject}/consents", consent)
            status, body = call(
                "POST", f"/v1/subjects/{subject}/enrolments", {"purpose": "checkout", "image": b64(alice[0])}
            )
            assert status == 201, body

        call("POST", "/v1/subjects/alice/consents", consent)
        assert call("POST", "/v1/subjects/alice/enrolments", {"purpose": "checkout", "image": b64(alice[0])})[0] == 201
        probe = {"subject_id": "alice", "purpose": "checkout", "image": b64(alice[1])}
        impostor = {"subject_id": "alice", "purpose": "checkout", "image": b64(bob[0])}

        def verify() -> None:
            assert call("POST", "/v1/verifications", probe)[1]["decision"] == "match"

        def verify_impostor() -> None:
            # Clear the lockout counter's effect by verifying the genuine probe right after.
            assert call("POST", "/v1/verifications", impostor)[1]["decision"] == "no_match"
            call("POST", "/v1/verifications", probe)

        call("PUT", "/v1/purposes/checkout", {"identification_enabled": True, "assessment_id": "PIA-BENCH"})

        def identify() -> None:
            status, body = call("POST", "/v1/identifications", {"purpose": "checkout", "image": b64(alice[2])})
            assert status == 200, body

        live_verify = liveness_operation(call, Path(args.shared))
        operations: list[tuple[str, Callable[[], Any]]] = [
            ("GET notice", lambda: call("GET", "/v1/notices/checkout?locale=en") and None),
            ("POST consent", record_consent),
            ("POST enrolment (inline image)", enrol),
            ("POST verification (match)", verify),
            ("POST verification (no_match + match)", verify_impostor),
            ("POST identification", identify),
            ("POST verification (liveness, 30 frames)", live_verify),
        ]
        if args.liveness_only:
            operations = operations[-1:]
        results = {}
        print(f"{'operation':40} {'p50 ms':>8} {'p95 ms':>8}   (warm, {args.runs} runs, moto in-process)")
        for name, operation in operations:
            operation()  # warm
            times = []
            for _ in range(args.runs):
                started = time.perf_counter()
                timed = operation()
                times.append(timed if isinstance(timed, float) else (time.perf_counter() - started) * 1000)
            results[name] = {"p50_ms": round(statistics.median(times), 1), "p95_ms": round(percentile(times, 0.95), 1)}
            print(f"{name:40} {results[name]['p50_ms']:>8} {results[name]['p95_ms']:>8}")
    print(json.dumps({**results, "machine": machine()}))


def machine() -> dict[str, Any]:
    import platform

    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "load": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
    }


def liveness_operation(call: Callable[..., tuple[int, Any]], shared: Path) -> Callable[[], Any]:
    """Enrol `carol` (the turns_a person) from a live burst on exam_proctoring (liveness required), then one timed
    verification per call: returns the milliseconds of the POST /v1/verifications alone."""
    from evaluate_liveness import genuine_bursts

    notes = json.loads((REPO / "tests" / "fixtures" / "clips.json").read_text())["clips"]
    turns = {name: frames for name, frames, _ in genuine_bursts(shared, notes) if "turns_a" in name}
    _, notice = call("GET", "/v1/notices/exam_proctoring?locale=en")
    consent = {
        "purpose": "exam_proctoring",
        "notice_version": notice["version"],
        "notice_sha256": notice["sha256"],
        "decision": "granted",
        "channel": "web",
        "locale": "en",
        "age_band": "adult",
    }
    assert call("POST", "/v1/subjects/carol/consents", consent)[0] == 201

    def burst(shift: int) -> dict[str, Any]:
        for _ in range(200):
            status, s = call("POST", "/v1/liveness/sessions", {"subject_id": "carol", "purpose": "exam_proctoring"})
            assert status == 201, s
            actions = tuple(s["challenge"]["actions"])
            if set(actions) == {"turn_left", "turn_right"}:
                order = "L>R" if actions[0] == "turn_left" else "R>L"
                frames = turns[f"turns_a {order} +{shift}"]
                return {
                    "session_id": s["session_id"],
                    "frames": [base64.b64encode(f).decode() for f in frames],
                    "timestamps_ms": [k * 100.0 for k in range(len(frames))],
                }
        raise AssertionError("no turn challenge in 200 sessions")

    status, enrolled = call(
        "POST", "/v1/subjects/carol/enrolments", {"purpose": "exam_proctoring", "liveness": burst(0)}
    )
    assert status == 201, enrolled

    def verify_live() -> float:
        body = {"subject_id": "carol", "purpose": "exam_proctoring", "liveness": burst(4)}
        started = time.perf_counter()
        status, result = call("POST", "/v1/verifications", body)
        elapsed = (time.perf_counter() - started) * 1000
        assert status == 200 and result["decision"] == "match", result
        assert len(body["liveness"]["frames"]) == 30
        return elapsed

    return verify_live


if __name__ == "__main__":
    main()

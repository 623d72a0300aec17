"""Cold start of each function: a fresh Python process imports functions/<name>/app.py and serves a first
request (a real API Gateway v2 event through the real handler), with AWS emulated by a moto server that
this benchmark starts once and provisions from template.yaml as the local cloud does.

    python tools/bench_coldstart.py [--runs 5] [--shared ../shared] [--tracing] [--no-bytecode-cache]

The fresh process gets what Lambda would give it: the function's template environment (Globals merged),
the runtime's own variables (LAMBDA_TASK_ROOT, AWS_LAMBDA_FUNCTION_NAME, ...), and AWS_ENDPOINT_URL pointing
at the emulator. Per function and run it measures, in wall time and in its own CPU time:
  interpreter  the parent's spawn → the child's first statement (exec, interpreter and site start)
  import       loading app.py by path, as the local cloud's workers do (module-level wiring included)
  engine       embedding and matching only: `container().biometrics` (import of faceengine and onnxruntime,
               the ONNX sessions), which the first request would otherwise do lazily
  1st request  the handler on the first event (AWS clients, the pepper, KMS, DynamoDB, ... on first use)
  total        the sum of the above (reading the event from disk, the runtime's part, is left out)
  warm         a second request in the same process, for contrast
The requests: GET a notice (consent), an inline enrolment of a real photo from ../shared (embedding), a
genuine 1:1 verification (matching), a verification session (fallback), a subject erasure (deletion); each
answer is checked. Runs alternate functions (the order rotates each run) after one discarded warm-up round,
so that the page cache and the .pyc files are as warm for every function. `--no-bytecode-cache` compiles
every module in every process instead (the worst case of a package shipped without .pyc); `--tracing`
enables Powertools' Tracer as Tracing: Active does on AWS (segments go to a daemon address nobody serves).

Then one more process per function for the reports: for consent, fallback and deletion under
`python -X importtime` (the top 10 cumulative and self imports of the handler, self time per package, and
the import chain of any of faceengine / onnxruntime / numpy / PIL loaded at import or during the first
request); for every function the first request under cProfile (botocore sessions and clients it makes).

Prints the tables, then as its last line one JSON object.
"""

from __future__ import annotations

import argparse
import base64
import importlib.metadata
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
LAYERS = [REPO / "layers" / "shared", REPO / "layers" / "model"]

FUNCTIONS = ("consent", "embedding", "matching", "fallback", "deletion")
FACE_FUNCTIONS = ("embedding", "matching")
LIGHT_FUNCTIONS = ("consent", "fallback", "deletion")  # the issue: free of the model layer, < 1 s
HEAVY_MODULES = ("faceengine", "onnxruntime", "numpy", "PIL")
PHASES = ("interpreter", "import", "engine", "first_request", "total", "warm_request")
TARGET_MS = 1000.0
TRACE_HEADER = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
IMPORTING_MARKER = "bench_coldstart: importing the handler"
IMPORTED_MARKER = "bench_coldstart: handler imported"

# The fresh process. Only `time` is imported before the first stamp, and only `importlib.util` and `sys`
# before the handler (as a runtime would), so that the handler's import counts everything it pulls in.
# A stamp is [CLOCK_MONOTONIC ns (one clock for every process), this process's CPU time ns (all threads)].
CHILD = r"""
import time


def now():
    return [time.clock_gettime_ns(time.CLOCK_MONOTONIC), time.process_time_ns()]


started = now()
import importlib.util
import sys

code_path, module_name, events_path, result_path, load_engine, profile_path, trace_header = sys.argv[1:8]
print("bench_coldstart: importing the handler", file=sys.stderr, flush=True)
spec = importlib.util.spec_from_file_location(module_name, code_path)
module = importlib.util.module_from_spec(spec)
sys.modules[module_name] = module
spec.loader.exec_module(module)
imported = now()
print("bench_coldstart: handler imported", file=sys.stderr, flush=True)
HEAVY = ("faceengine", "onnxruntime", "numpy", "PIL")
heavy_after_import = [name for name in HEAVY if name in sys.modules]

import json
import os
import uuid

with open(events_path, encoding="utf-8") as handle:
    events = json.load(handle)


class Context:
    def __init__(self, name):
        self.function_name = name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
        self.invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:" + name
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = "/aws/lambda/" + name
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + 30

    def get_remaining_time_in_millis(self):
        return max(0, int((self._deadline - time.monotonic()) * 1000))


engine = None
if load_engine == "1":
    engine_started = now()
    from facegate.wiring import container

    container().biometrics
    engine = [engine_started, now()]
profiler = None
if profile_path != "-":  # the first request under cProfile (its times then mean little)
    import cProfile

    profiler = cProfile.Profile()
stamps, answers = [], []
for index, event in enumerate(events):
    context = Context(module_name)
    if trace_header != "-":  # as the Lambda runtime sets it for each invocation
        os.environ["_X_AMZN_TRACE_ID"] = trace_header
    if profiler is not None and index == 0:
        profiler.enable()
    before = now()
    answer = module.lambda_handler(event, context)
    stamps.append([before, now()])
    if profiler is not None and index == 0:
        profiler.disable()
        profiler.dump_stats(profile_path)
    answers.append({"statusCode": answer.get("statusCode"), "body": str(answer.get("body", ""))[:2000]})
result = {
    "started": started,
    "imported": imported,
    "engine": engine,
    "requests": stamps,
    "answers": answers,
    "heavy_after_import": heavy_after_import,
    "heavy_after_requests": [name for name in HEAVY if name in sys.modules],
}
with open(result_path, "w", encoding="utf-8") as handle:
    json.dump(result, handle)
"""


# -- pure parts (tests/unit/test_bench_coldstart.py)


WALL, CPU = 0, 1  # the two clocks of a stamp


def phases_ms(spawned_ns: int, result: dict[str, Any], clock: int = WALL) -> dict[str, float | None]:
    """The phases of one cold start in ms. WALL: from the parent's spawn time (CLOCK_MONOTONIC, one clock
    for every process of the machine) and the child's stamps. CPU: the child's own CPU time (pass 0 as the
    spawn: a process starts at 0), which other processes on a busy machine inflate far less than wall time."""

    def ms(start: list[int], end: list[int]) -> float:
        return (end[clock] - start[clock]) / 1e6

    spawned = [spawned_ns, spawned_ns]
    (first_start, first_end), *rest = result["requests"]
    out: dict[str, float | None] = {
        "interpreter": ms(spawned, result["started"]),
        "import": ms(result["started"], result["imported"]),
        "engine": ms(*result["engine"]) if result.get("engine") else None,
        "first_request": ms(first_start, first_end),
        "warm_request": ms(*rest[0]) if rest else None,
    }
    out["total"] = sum(out[p] or 0.0 for p in ("interpreter", "import", "engine", "first_request"))
    return out


def summarise(samples: Sequence[dict[str, float | None]]) -> dict[str, dict[str, float] | None]:
    """p50 and max per phase over the runs (None for a phase the function does not have)."""
    out: dict[str, dict[str, float] | None] = {}
    for phase in PHASES:
        values = [v for s in samples if (v := s.get(phase)) is not None]
        out[phase] = (
            {"p50_ms": round(statistics.median(values), 1), "max_ms": round(max(values), 1)} if values else None
        )
    return out


def rotated(items: Sequence[str], run: int) -> list[str]:
    """The order of run `run`: each function takes every position in turn across runs."""
    shift = run % len(items)
    return [*items[shift:], *items[:shift]]


@dataclass(frozen=True)
class ImportRow:
    module: str
    self_us: int
    cumulative_us: int
    depth: int  # 0: imported by the code run (here the handler module); n: by the row's parent


def parse_importtime(stderr: str) -> list[ImportRow]:
    """The rows of `python -X importtime` output, in the order printed (a module after its children)."""
    rows = []
    for line in stderr.splitlines():
        if not line.startswith("import time:"):
            continue
        parts = line[len("import time:") :].split("|", 2)
        if len(parts) != 3 or not parts[0].strip().isdigit():
            continue  # the header line
        name = parts[2][1:]  # one space after the bar, then two per level
        depth = (len(name) - len(name.lstrip(" "))) // 2
        rows.append(ImportRow(name.strip(), int(parts[0]), int(parts[1]), depth))
    return rows


def split_phases(stderr: str) -> tuple[str, str, str]:
    """The child's stderr in three: the interpreter's start, the handler's import, and the requests."""
    startup, found, rest = stderr.partition(IMPORTING_MARKER)
    if not found:
        raise ValueError("the process never started importing the handler")
    handler, found, requests = rest.partition(IMPORTED_MARKER)
    if not found:
        raise ValueError("the process never finished importing the handler")
    return startup, handler, requests


def import_chain(rows: Sequence[ImportRow], module: str) -> list[str] | None:
    """Who pulled `module` in: the chain from a top-level import down to it, or None if it was not
    imported. importtime prints a module after its children, so a row's parent is the next row printed
    with a smaller depth. An import run inside a function (a lazy import) starts its own chain at depth 0:
    the chain then names what that import statement loaded, not the function that ran it."""
    for index, row in enumerate(rows):
        if row.module != module:
            continue
        chain = [row.module]
        depth = row.depth
        for later in rows[index + 1 :]:
            if later.depth < depth:
                chain.append(later.module)
                depth = later.depth
                if depth == 0:
                    break
        return chain[::-1]
    return None


def top_cumulative(rows: Iterable[ImportRow], n: int = 10) -> list[ImportRow]:
    return sorted(rows, key=lambda r: r.cumulative_us, reverse=True)[:n]


def top_self(rows: Iterable[ImportRow], n: int = 10) -> list[ImportRow]:
    """The modules whose own body is slowest to run (pydantic models, clients built at import, ...)."""
    return sorted(rows, key=lambda r: r.self_us, reverse=True)[:n]


def per_package(rows: Iterable[ImportRow], n: int = 10) -> list[tuple[str, int]]:
    """Self time summed per top-level package (boto3 and botocore apart, etc.): where the time goes,
    without the double counting of cumulative figures."""
    totals: dict[str, int] = {}
    for row in rows:
        root = row.module.split(".")[0]
        totals[root] = totals.get(root, 0) + row.self_us
    return sorted(totals.items(), key=lambda kv: kv[1], reverse=True)[:n]


ProfileKey = tuple[str, int, str]  # cProfile's (file, line, function)


def profile_summary(stats: dict[ProfileKey, tuple[Any, ...]], own: str = "/facegate/", n: int = 8) -> dict[str, Any]:
    """What a first request spends on making AWS clients, from cProfile's table (pstats.Stats.stats:
    key -> (primitive calls, calls, self s, cumulative s, callers)), and its own heaviest functions."""

    def calls(file_suffix: str, function: str) -> tuple[int, float]:
        found = [v for (file, _, name), v in stats.items() if file.endswith(file_suffix) and name == function]
        return sum(v[1] for v in found), sum(v[3] for v in found)

    total = max((v[3] for v in stats.values()), default=0.0)
    sessions, _ = calls("botocore/session.py", "_register_components")  # once per botocore Session
    clients, clients_s = calls("botocore/session.py", "create_client")
    models, models_s = calls("botocore/loaders.py", "load_service_model")
    mine = sorted(
        (
            (f"{Path(file).parent.name}/{Path(file).name}:{name}", v[3])
            for (file, _, name), v in stats.items()
            if own in file
        ),
        key=lambda kv: kv[1],
        reverse=True,
    )[:n]
    return {
        "total_ms": round(total * 1000, 1),
        "botocore_sessions": sessions,
        "clients_created": clients,
        "clients_ms": round(clients_s * 1000, 1),
        "service_models_loaded": models,
        "service_models_ms": round(models_s * 1000, 1),
        "own_top_cumulative": [{"function": name, "cumulative_ms": round(s * 1000, 1)} for name, s in mine],
    }


def cell(summary: dict[str, float] | None) -> str:
    return "-" if summary is None else f"{summary['p50_ms']:.0f} / {summary['max_ms']:.0f}"


def format_table(results: dict[str, dict[str, dict[str, float] | None]]) -> str:
    headers = ("function", "interpreter", "import", "engine", "1st request", "total", "warm request")
    lines = [
        "| " + " | ".join(headers) + " |",
        "|---|" + "---:|" * (len(headers) - 1),
    ]
    for function, summary in results.items():
        cells = [cell(summary[p]) for p in PHASES]
        lines.append(f"| {function} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# -- the machine


def machine() -> dict[str, Any]:
    model = platform.processor() or platform.machine()
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        model = next(line.split(":", 1)[1].strip() for line in lscpu.splitlines() if line.startswith("Model name"))
    except (OSError, subprocess.CalledProcessError, StopIteration):
        pass

    def version(package: str) -> str | None:
        try:
            return importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            return None

    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "arch": platform.machine(),
        "python": platform.python_version(),
        "onnxruntime": version("onnxruntime"),
        "numpy": version("numpy"),
        "aws-lambda-powertools": version("aws-lambda-powertools"),
        "boto3": version("boto3"),
        "moto": version("moto"),
    }


# -- the benchmark


class Bench:
    """The emulator, the provisioned stack, a token, and the in-process gateway used to set data up."""

    def __init__(self, shared: Path, bytecode_cache: bool = True, tracing: bool = False) -> None:
        import boto3

        from localcloud.cloud import LOCAL_ENVIRONMENT, REGION, start
        from localcloud.emulator import AtomicMotoServer
        from localcloud.process import free_port

        self.bytecode_cache = bytecode_cache
        self.tracing = tracing
        self.endpoint = f"http://127.0.0.1:{free_port()}"
        port = int(self.endpoint.rsplit(":", 1)[1])
        self.emulator = AtomicMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        self.emulator.start()
        os.environ.update(LOCAL_ENVIRONMENT)
        os.environ["AWS_ENDPOINT_URL"] = self.endpoint
        self.local_environment = {**LOCAL_ENVIRONMENT, "AWS_ENDPOINT_URL": self.endpoint}
        self.cloud = start(boto3.session.Session(region_name=REGION), emulator_endpoint=self.endpoint)
        self.token = self.cloud.token("demo")
        self.logical = {
            Path(resource["Properties"]["CodeUri"]).name: logical
            for logical, resource in self.cloud.stack.template["Resources"].items()
            if resource["Type"] == "AWS::Serverless::Function"
        }
        self.work = Path(tempfile.mkdtemp(prefix="bench-coldstart-"))
        people = sorted(p for p in (shared / "faces").iterdir() if p.is_dir() and len(list(p.iterdir())) >= 4)
        photos = sorted(people[0].iterdir())
        self.enrol_photo, self.probe_photo = _b64(photos[0]), _b64(photos[1])
        _, notice = self.call("GET", "/v1/notices/checkout?locale=en")
        self.consent = {
            "purpose": "checkout",
            "notice_version": notice["version"],
            "notice_sha256": notice["sha256"],
            "decision": "granted",
            "channel": "web",
            "locale": "en",
            "age_band": "adult",
        }
        self.enrolled = self.consented_subject()
        status, body = self.call(
            "POST", f"/v1/subjects/{self.enrolled}/enrolments", {"purpose": "checkout", "image": self.enrol_photo}
        )
        if status != 201:
            raise RuntimeError(f"setting up the enrolled subject failed: {status} {body}")

    def close(self) -> None:
        self.cloud.gateway.close()
        self.emulator.stop()
        shutil.rmtree(self.work, ignore_errors=True)

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """A request through the in-process gateway (setup only, never measured)."""
        path, _, query = path.partition("?")
        headers = {"content-type": "application/json", "authorization": f"Bearer {self.token}"}
        raw = json.dumps(body).encode() if body is not None else b""
        reply = self.cloud.gateway.handle(method, path, query, headers, raw)
        return reply.status, json.loads(reply.body or b"null")

    def consented_subject(self) -> str:
        subject = f"cold-{uuid.uuid4().hex[:12]}"
        status, body = self.call("POST", f"/v1/subjects/{subject}/consents", self.consent)
        if status != 201:
            raise RuntimeError(f"recording a consent failed: {status} {body}")
        return subject

    def event(self, method: str, path: str, body: Any = None) -> tuple[str, dict[str, Any]]:
        """The API Gateway v2 event the local gateway would pass for this request, and its function."""
        from localcloud.gateway import build_event

        path, _, query = path.partition("?")
        headers = {
            "content-type": "application/json",
            "authorization": f"Bearer {self.token}",
            "host": "127.0.0.1",
            "user-agent": "bench-coldstart",
        }
        for route in self.cloud.gateway.routes:
            match = route.pattern.match(path)
            if match and route.method in (method, "ANY"):
                break
        else:
            raise LookupError(f"no route for {method} {path}")
        claims, scopes = self.cloud.gateway.authorizer.authorize(headers["authorization"], list(route.scopes))
        jwt_context = {"claims": {k: str(v) for k, v in claims.items()}, "scopes": scopes}
        raw = json.dumps(body).encode() if body is not None else b""
        return route.function, build_event(route, match.groupdict(), method, path, query, headers, raw, jwt_context)

    def requests(self, function: str) -> list[dict[str, Any]]:
        """Two representative requests (the first is measured cold, the second warm), on fresh data."""
        calls: list[tuple[str, str, Any]]
        if function == "consent":
            calls = [
                ("GET", "/v1/notices/checkout?locale=en", None),
                ("GET", "/v1/notices/checkout?locale=zh-CN", None),
            ]
        elif function == "embedding":
            calls = [
                ("POST", f"/v1/subjects/{self.consented_subject()}/enrolments", {"purpose": "checkout", "image": img})
                for img in (self.enrol_photo, self.enrol_photo)
            ]
        elif function == "matching":
            probe = {"subject_id": self.enrolled, "purpose": "checkout", "image": self.probe_photo}
            calls = [("POST", "/v1/verifications", probe)] * 2
        elif function == "fallback":
            calls = [
                ("POST", "/v1/verification-sessions", {"subject_id": f"cold-{uuid.uuid4().hex[:12]}", **session})
                for session in ({"purpose": "checkout", "email": "person@example.com", "locale": "en"},) * 2
            ]
        elif function == "deletion":
            calls = [("DELETE", f"/v1/subjects/{self.consented_subject()}", None) for _ in range(2)]
        else:
            raise ValueError(function)
        events = []
        for method, path, body in calls:
            logical, event = self.event(method, path, body)
            if logical != self.logical[function]:
                raise RuntimeError(f"{method} {path} is served by {logical}, not the {function} function")
            events.append(event)
        return events

    def environment(self, function: str, pycache: Path | None) -> dict[str, str]:
        """What Lambda would give the function: its template environment (Globals merged) and the runtime's
        own variables, plus the local settings and the emulator's endpoint; of this process's environment
        only PATH and HOME."""
        logical = self.logical[function]
        props = self.cloud.stack.template["Resources"][logical]["Properties"]
        memory = props.get("MemorySize", self.cloud.stack.template["Globals"]["Function"].get("MemorySize", 128))
        env = {k: os.environ[k] for k in ("PATH", "HOME") if k in os.environ}
        env.update(self.local_environment)
        # The runtime's variables matter: with LAMBDA_TASK_ROOT the X-Ray SDK, imported by Powertools' Tracer,
        # takes its Lambda path (a local sampler) instead of building X-Ray API clients at import.
        env.update(
            LAMBDA_TASK_ROOT=str(REPO / "functions" / function),
            AWS_LAMBDA_FUNCTION_NAME=f"facegate-local-{logical}",
            AWS_LAMBDA_FUNCTION_VERSION="$LATEST",
            AWS_LAMBDA_FUNCTION_MEMORY_SIZE=str(memory),
            AWS_EXECUTION_ENV="AWS_Lambda_python3.12",
            AWS_XRAY_DAEMON_ADDRESS="127.0.0.1:2000",  # nothing listens: segments (UDP) go nowhere
            LANG="en_US.UTF-8",
            TZ=":UTC",
        )
        env.update(self.cloud.stack.function_environment(logical))
        if self.tracing:  # Tracing: Active, as template.yaml deploys it
            env["POWERTOOLS_TRACE_DISABLED"] = "false"
        env["PYTHONPATH"] = os.pathsep.join(str(p) for p in LAYERS)
        if pycache is not None:  # an empty bytecode cache that is never written: every module compiles
            env.update(PYTHONPYCACHEPREFIX=str(pycache), PYTHONDONTWRITEBYTECODE="1")
        return env

    def cold_start(
        self, function: str, importtime: bool = False, profile: Path | None = None
    ) -> tuple[dict[str, Any], int, str]:
        """One fresh process: its stamps and answers, the spawn time, and its stderr (with `profile`, the
        first request's cProfile statistics go to that file)."""
        run = self.work / uuid.uuid4().hex
        run.mkdir()
        events_path, result_path = run / "events.json", run / "result.json"
        events_path.write_text(json.dumps(self.requests(function)), encoding="utf-8")
        pycache = None if self.bytecode_cache else run / "pycache"
        command = [sys.executable, *(["-X", "importtime"] if importtime else []), "-c", CHILD]
        command += [
            str(REPO / "functions" / function / "app.py"),
            f"facegate_function_{function}",
            str(events_path),
            str(result_path),
            "1" if function in FACE_FUNCTIONS else "0",
            str(profile) if profile else "-",
            TRACE_HEADER if self.tracing else "-",
        ]
        env = self.environment(function, pycache)
        spawned = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
        done = subprocess.run(command, env=env, cwd=run, capture_output=True, text=True, timeout=300)
        if done.returncode != 0 or not result_path.exists():
            raise RuntimeError(f"the {function} process failed ({done.returncode}):\n{done.stderr[-4000:]}")
        result = json.loads(result_path.read_text(encoding="utf-8"))
        expected = {"consent": 200, "embedding": 201, "matching": 200, "fallback": 201, "deletion": 202}[function]
        for answer in result["answers"]:
            if answer["statusCode"] != expected:
                raise RuntimeError(f"{function} answered {answer['statusCode']}, not {expected}: {answer['body']}")
        if function == "matching" and json.loads(result["answers"][0]["body"])["decision"] != "match":
            raise RuntimeError(f"the genuine probe did not match: {result['answers'][0]['body']}")
        return result, spawned, done.stderr


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def first_request_profile(bench: Bench, function: str) -> dict[str, Any]:
    """The first request of a fresh process under cProfile."""
    import pstats

    path = bench.work / f"{function}-{uuid.uuid4().hex}.prof"
    bench.cold_start(function, profile=path)
    return profile_summary(pstats.Stats(str(path)).stats)  # type: ignore[attr-defined]


def import_report(bench: Bench, function: str) -> dict[str, Any]:
    """Under -X importtime: the handler's heaviest imports and the chains that load heavy modules."""
    result, _, stderr = bench.cold_start(function, importtime=True)
    _, at_import, at_request = split_phases(stderr)
    handler_rows, rows_request = parse_importtime(at_import), parse_importtime(at_request)
    chains = {}
    for module in HEAVY_MODULES:
        for phase, rows in (("import", handler_rows), ("first_request", rows_request)):
            chain = import_chain(rows, module)
            if chain:
                chains[module] = {"phase": phase, "chain": chain}
                break
    return {
        "handler_import_ms": round(sum(r.self_us for r in handler_rows) / 1000, 1),
        "first_request_imports_ms": round(sum(r.self_us for r in rows_request) / 1000, 1),
        "top_cumulative": [
            {"module": r.module, "cumulative_ms": round(r.cumulative_us / 1000, 1)}
            for r in top_cumulative(handler_rows)
        ],
        "top_self": [{"module": r.module, "self_ms": round(r.self_us / 1000, 1)} for r in top_self(handler_rows)],
        "per_package": [{"package": p, "self_ms": round(us / 1000, 1)} for p, us in per_package(handler_rows)],
        "first_request_per_package": [
            {"package": p, "self_ms": round(us / 1000, 1)} for p, us in per_package(rows_request, 5)
        ],
        "heavy_after_import": result["heavy_after_import"],
        "heavy_after_request": result["heavy_after_requests"],
        "heavy_chains": chains,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--shared", default=str(REPO.parent / "shared"))
    parser.add_argument(
        "--no-bytecode-cache", action="store_true", help="compile every module in every process (no .pyc)"
    )
    parser.add_argument(
        "--tracing", action="store_true", help="Powertools' Tracer enabled, as with Tracing: Active on AWS"
    )
    args = parser.parse_args()
    sys.path[:0] = [str(REPO / "tools"), *(str(p) for p in LAYERS)]
    warnings.filterwarnings("ignore")  # Powertools notes every write sent without an Idempotency-Key
    # The setup's in-process handlers stay quiet (the fresh processes keep the template's settings).
    os.environ.update(POWERTOOLS_LOG_LEVEL="WARNING", POWERTOOLS_METRICS_DISABLED="true")
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)

    load_before = os.getloadavg()
    bench = Bench(Path(args.shared), bytecode_cache=not args.no_bytecode_cache, tracing=args.tracing)
    samples: dict[str, list[dict[str, float | None]]] = {f: [] for f in FUNCTIONS}
    cpu_samples: dict[str, list[dict[str, float | None]]] = {f: [] for f in FUNCTIONS}
    heavy: dict[str, dict[str, list[str]]] = {}
    try:
        for function in FUNCTIONS:  # warm-up round, discarded: page cache and .pyc files
            bench.cold_start(function)
        for run in range(args.runs):
            for function in rotated(FUNCTIONS, run):
                result, spawned, _ = bench.cold_start(function)
                samples[function].append(phases_ms(spawned, result, WALL))
                cpu_samples[function].append(phases_ms(0, result, CPU))
                heavy[function] = {
                    "after_import": result["heavy_after_import"],
                    "after_first_requests": result["heavy_after_requests"],
                }
            print(f"run {run + 1}/{args.runs} done", file=sys.stderr, flush=True)
        imports = {function: import_report(bench, function) for function in LIGHT_FUNCTIONS}
        profiles = {function: first_request_profile(bench, function) for function in FUNCTIONS}
    finally:
        bench.close()
    load_after = os.getloadavg()

    host = machine()
    summary = {function: summarise(samples[function]) for function in FUNCTIONS}
    cpu_summary = {function: summarise(cpu_samples[function]) for function in FUNCTIONS}
    print(
        f"Cold start, ms p50 / max over {args.runs} runs per function (fresh process each; "
        f"{'no bytecode cache' if args.no_bytecode_cache else '.pyc cached'}; "
        f"tracing {'enabled' if args.tracing else 'disabled'}); {host['cpu']}, {host['cores']} cores, "
        f"Python {host['python']}, onnxruntime {host['onnxruntime']}, numpy {host['numpy']}, "
        f"powertools {host['aws-lambda-powertools']}, boto3 {host['boto3']}, moto {host['moto']}; "
        f"load average {load_before[0]:.1f} before, {load_after[0]:.1f} after"
    )
    print(format_table(summary))
    print()
    print("The same runs in CPU time of the fresh process (all its threads; the emulator's work is not in it):")
    print(format_table(cpu_summary))
    print()
    for function in FUNCTIONS:
        print(
            f"{function}: heavy modules after import {heavy[function]['after_import'] or 'none'}, "
            f"after the requests {heavy[function]['after_first_requests'] or 'none'}"
        )
    verdict = {}
    for function in LIGHT_FUNCTIONS:
        total = summary[function]["total"]
        assert total is not None
        verdict[function] = total["p50_ms"] < TARGET_MS
    print(
        f"target: total wall time < {TARGET_MS:.0f} ms (p50) for {', '.join(LIGHT_FUNCTIONS)}: "
        + ", ".join(f"{f} {'met' if ok else 'MISSED'}" for f, ok in verdict.items())
    )
    for function, report in imports.items():
        print()
        print(
            f"{function}: python -X importtime, handler import {report['handler_import_ms']} ms of self time "
            f"(+ {report['first_request_imports_ms']} ms of imports during the first request)"
        )
        print(
            "  top 10 cumulative: " + ", ".join(f"{r['module']} {r['cumulative_ms']}" for r in report["top_cumulative"])
        )
        print("  top 10 self: " + ", ".join(f"{r['module']} {r['self_ms']}" for r in report["top_self"]))
        print("  per package (self): " + ", ".join(f"{r['package']} {r['self_ms']}" for r in report["per_package"]))
        print(
            "  imported during the first request: "
            + (", ".join(f"{r['package']} {r['self_ms']}" for r in report["first_request_per_package"]) or "nothing")
        )
        if report["heavy_chains"]:
            for module, found in report["heavy_chains"].items():
                print(f"  {module} loaded at {found['phase']}: " + " -> ".join(found["chain"]))
        else:
            print(f"  none of {', '.join(HEAVY_MODULES)} is imported (handler import and first request)")
    print()
    print("first request under cProfile (a separate fresh process each; cProfile slows it down):")
    for function, found in profiles.items():
        print(
            f"  {function}: {found['total_ms']} ms; {found['botocore_sessions']} botocore sessions, "
            f"{found['clients_created']} clients made in {found['clients_ms']} ms, {found['service_models_loaded']} "
            f"service models loaded in {found['service_models_ms']} ms; own: "
            + ", ".join(f"{r['function']} {r['cumulative_ms']}" for r in found["own_top_cumulative"][:4])
        )
    print(
        json.dumps(
            {
                "machine": {**host, "load_average_before": load_before[0], "load_average_after": load_after[0]},
                "runs": args.runs,
                "bytecode_cache": not args.no_bytecode_cache,
                "tracing": args.tracing,
                "cold_start_ms": summary,
                "cold_start_cpu_ms": cpu_summary,
                "heavy_modules": heavy,
                "imports": imports,
                "first_request_profiles": profiles,
                "target_ms": TARGET_MS,
                "target_met": verdict,
            }
        )
    )


if __name__ == "__main__":
    main()

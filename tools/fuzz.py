"""`make fuzz`: contract fuzzing of the local cloud with schemathesis (hardening item 10).

Starts a local cloud as `make run` does (on free ports, two instances per function), takes a token of
the demo tenant with every scope, runs schemathesis against /v1/openapi.json with tools/schemathesis.toml
(no 5xx; status codes, content types and bodies as documented, problem+json for errors), and stops the
local cloud. Exits with schemathesis's status. Extra arguments go to `schemathesis run`, for example
`make fuzz FUZZ_ARGS="--max-examples 200 --seed 7"`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))

from localcloud.process import running  # noqa: E402

CONFIG = REPO / "tools" / "schemathesis.toml"


def device_token(base: str, tenant_token: str) -> str:
    """A device session of the demo tenant for a fuzzing subject, allowing every operation, for 10 minutes."""
    body = {
        "subject_id": "fuzz-device",
        "purpose": "checkout",
        "operations": ["notice", "consent", "liveness", "verify", "enrol", "proctoring"],
        "ttl_seconds": 600,
    }
    request = urllib.request.Request(f"{base}/v1/device-sessions", data=json.dumps(body).encode(), method="POST")
    request.add_header("authorization", f"Bearer {tenant_token}")
    request.add_header("content-type", "application/json")
    with urllib.request.urlopen(request, timeout=30) as response:  # the local cloud only
        return str(json.loads(response.read())["token"])


def main(extra: list[str]) -> int:
    started = time.monotonic()
    with running(instances=2) as cloud:
        env = {**os.environ, "FACEGATE_FUZZ_TOKEN": cloud.token("demo")}
        # Device sessions (issue 15): the /v1/device/... routes are fuzzed with a device token of every operation.
        env["FACEGATE_FUZZ_DEVICE_TOKEN"] = device_token(cloud.base, env["FACEGATE_FUZZ_TOKEN"])
        command = [
            str(Path(sys.executable).with_name("schemathesis")),
            "--config-file",
            str(CONFIG),
            "run",
            f"{cloud.base}/v1/openapi.json",
            *extra,
        ]
        code = subprocess.run(command, env=env, cwd=REPO, check=False).returncode
        if code:
            crashes = [line for line in cloud.output().splitlines() if "Traceback" in line or "crashed" in line]
            print(f"local cloud log: {len(crashes)} tracebacks or crashes", file=sys.stderr)
            print("\n".join(cloud.output().splitlines()[-40:]), file=sys.stderr)
    print(f"fuzz: {'passed' if code == 0 else 'FAILED'} in {time.monotonic() - started:.0f} s", flush=True)
    return code


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

"""Boot the local cloud as `make run` does (`python -m localcloud run`) on free ports, and stop it.

For the end-to-end tests and the contract fuzzing (`make fuzz`), which need a whole local cloud of
their own: its own moto server, its own API port, worker processes per function.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from localcloud.template import REPO_ROOT


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningCloud:
    base: str  # http://127.0.0.1:<PORT>
    receiver: str  # the webhook receiver, http://127.0.0.1:<WEBHOOK_RECEIVER_PORT>
    env: dict[str, str]  # the environment it runs with (MOTO_PORT, PORT, ...): `localcloud token` needs it
    process: subprocess.Popen[bytes]
    log: Path  # its stdout and stderr

    def token(self, tenant: str = "demo", scopes: str | None = None) -> str:
        command = [sys.executable, "-m", "localcloud", "token", "--tenant", tenant]
        if scopes is not None:
            command += ["--scopes", scopes]
        out = subprocess.run(command, env=self.env, capture_output=True, check=True, cwd=REPO_ROOT)
        return out.stdout.decode().strip().splitlines()[-1]

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


@contextmanager
def running(
    instances: int | None = None,
    startup_timeout_s: float = 120.0,
    env_vars: dict[str, dict[str, str]] | None = None,
) -> Iterator[RunningCloud]:
    """A local cloud on free ports until the block ends; Ctrl-C (SIGINT) stops it as it stops `make run`.
    `env_vars` overrides variables of the functions' environment (`localcloud run --env-vars`)."""
    env = dict(os.environ)
    env.update(
        MOTO_PORT=str(free_port()),
        PORT=str(free_port()),
        WEBHOOK_RECEIVER_PORT=str(free_port()),
        PYTHONPATH=os.pathsep.join(str(REPO_ROOT / p) for p in ("layers/shared", "layers/model", "tools")),
    )
    # Its own state file (ports), so that `make outbox`-style readers given this env find this cloud, not another
    env["LOCALCLOUD_STATE"] = os.path.join(tempfile.gettempdir(), f"localcloud-{env['PORT']}.json")
    env.pop("AWS_ENDPOINT_URL", None)
    if instances is not None:
        env["LOCALCLOUD_INSTANCES"] = str(instances)
    command = [sys.executable, "-m", "localcloud", "run"]
    overrides: Path | None = None
    if env_vars is not None:
        overrides_fd, overrides_name = tempfile.mkstemp(prefix="localcloud-env-", suffix=".json")
        with os.fdopen(overrides_fd, "w", encoding="utf-8") as handle:
            json.dump(env_vars, handle)
        overrides = Path(overrides_name)
        command += ["--env-vars", overrides_name]
    log_fd, log_name = tempfile.mkstemp(prefix="localcloud-", suffix=".log")
    process = subprocess.Popen(
        command,
        env=env,
        cwd=REPO_ROOT,
        stdout=log_fd,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    os.close(log_fd)
    cloud = RunningCloud(
        f"http://127.0.0.1:{env['PORT']}",
        f"http://127.0.0.1:{env['WEBHOOK_RECEIVER_PORT']}",
        env,
        process,
        Path(log_name),
    )
    try:
        deadline = time.monotonic() + startup_timeout_s
        while True:
            try:
                with urllib.request.urlopen(cloud.base + "/v1/health", timeout=5):
                    break
            except OSError as error:
                if process.poll() is not None:
                    raise RuntimeError(f"the local cloud exited:\n{cloud.output()}") from error
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the local cloud did not come up in {startup_timeout_s:.0f} s") from error
                time.sleep(0.3)
        yield cloud
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        Path(log_name).unlink(missing_ok=True)
        if overrides is not None:
            overrides.unlink(missing_ok=True)

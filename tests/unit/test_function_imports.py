"""consent, fallback, deletion and the device-session authorizer stay small: importing them never loads the face
engine (the authorizer has no model layer at all)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration  # a fresh interpreter per function: not in the fast unit tier
REPO = Path(__file__).resolve().parents[2]

PROBE = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("app", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(json.dumps({name: name in sys.modules for name in ("faceengine", "onnxruntime", "numpy", "PIL")}))
"""

ENV = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "TENANTS_TABLE": "t",
    "CONSENTS_TABLE": "c",
    "AUDIT_TABLE": "a",
    "IDEMPOTENCY_TABLE": "i",
    "SIGNING_KEY_ID": "k",
    "PEPPER_SECRET_ARN": "p",
    "EVENT_BUS_NAME": "b",
    "POWERTOOLS_TRACE_DISABLED": "true",
}


@pytest.mark.parametrize("function", ["consent", "fallback", "deletion", "authorizer"])
def test_light_functions_do_not_load_the_face_engine(function: str) -> None:
    paths = [str(REPO / "layers" / "shared"), str(REPO / "layers" / "model")]
    env = {**ENV, "PYTHONPATH": ":".join(paths), "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(REPO / "functions" / function / "app.py")],
        env=env,
        capture_output=True,
        check=True,
        text=True,
    )
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert loaded["faceengine"] is False and loaded["onnxruntime"] is False, loaded

"""The Python SDK is kept in step with the OpenAPI document: its generated module is what the generator makes of
the committed document (run `make openapi` after a route or model change), and, checked without the generator,
every operation and every field of the document is in the client."""

from __future__ import annotations

import copy
import importlib.util
import json
import typing
from pathlib import Path
from typing import Any

import pytest

import facegate_sdk._generated as generated
from facegate_sdk import OPERATIONS, FacegateClient

pytestmark = pytest.mark.unit

SDK = Path(__file__).resolve().parents[1]
DOCUMENT = SDK.parents[1] / "layers" / "shared" / "facegate" / "openapi.json"


def generator() -> Any:
    spec = importlib.util.spec_from_file_location("facegate_sdk_generate", SDK / "tools" / "generate.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def document() -> dict[str, Any]:
    return json.loads(DOCUMENT.read_text(encoding="utf-8"))


def missing_from_client(doc: dict[str, Any]) -> list[str]:
    """What the document has that the client lacks: operations (method and path) and schema fields."""
    missing = []
    gen = generator()
    for path, verbs in doc["paths"].items():
        for verb, operation in verbs.items():
            name = gen.method_name(operation["operationId"])
            if OPERATIONS.get(name) != (verb.upper(), path) or not callable(getattr(FacegateClient, name, None)):
                missing.append(f"operation {verb.upper()} {path}")
    for name, schema in doc["components"]["schemas"].items():
        model = getattr(generated, name, None)
        fields = set(typing.get_type_hints(model)) if model is not None else set()
        missing += [f"field {name}.{f}" for f in schema.get("properties", {}) if f not in fields]
    return missing


def test_the_generated_module_is_what_the_document_makes() -> None:
    text = (SDK / "facegate_sdk" / "_generated.py").read_text(encoding="utf-8")
    assert text == generator().generate(document()), "the SDK drifted from openapi.json: run `make openapi`"


def test_every_operation_and_field_of_the_document_is_in_the_client() -> None:
    assert missing_from_client(document()) == []


def test_the_drift_check_sees_a_new_operation_and_a_new_field() -> None:
    doc = copy.deepcopy(document())
    doc["paths"]["/v1/device/new-thing"] = {"post": {"operationId": "device_new_thing_v1_device_new_thing_post"}}
    doc["components"]["schemas"]["DeviceSessionView"]["properties"]["new_field"] = {"type": "string"}
    assert missing_from_client(doc) == ["operation POST /v1/device/new-thing", "field DeviceSessionView.new_field"]


def test_device_operations_are_typed_with_the_device_models() -> None:
    hints = typing.get_type_hints(FacegateClient.device_verify)
    assert hints["body"] is generated.DeviceVerificationRequest
    assert hints["return"] is generated.VerificationResponse
    assert typing.get_type_hints(FacegateClient.revoke_device_session)["return"] is type(None)

"""Generate facegate_sdk/_generated.py (typed models and one method per operation) from the service's OpenAPI
document, layers/shared/facegate/openapi.json. `make openapi` runs it after regenerating the document; a test fails
when the committed module and the document drift apart (sdk/python/tests/test_drift.py).

    python sdk/python/tools/generate.py            # write
    python sdk/python/tools/generate.py --check    # exit 1 if the committed module is stale
"""

from __future__ import annotations

import json
import keyword
import sys
from pathlib import Path
from typing import Any

SDK = Path(__file__).resolve().parents[1]
REPO = SDK.parents[1]
DOCUMENT = REPO / "layers" / "shared" / "facegate" / "openapi.json"
OUTPUT = SDK / "facegate_sdk" / "_generated.py"
REF = "#/components/schemas/"


def method_name(operation_id: str) -> str:
    """`mint_device_session_v1_device_sessions_post` → `mint_device_session` (the handler's own name)."""
    return operation_id.split("_v1_", 1)[0]


def python_type(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        return schema["$ref"].removeprefix(REF)
    if "anyOf" in schema:
        parts = list(dict.fromkeys(python_type(s) for s in schema["anyOf"]))
        return " | ".join(parts)
    if "const" in schema:
        return f"Literal[{schema['const']!r}]"
    if "enum" in schema:
        return "Literal[" + ", ".join(repr(v) for v in schema["enum"]) + "]"
    kind = schema.get("type")
    if kind == "string":
        return "str"
    if kind == "integer":
        return "int"
    if kind == "number":
        return "float"
    if kind == "boolean":
        return "bool"
    if kind == "null":
        return "None"
    if kind == "array":
        return f"list[{python_type(schema.get('items', {}))}]"
    if kind == "object" or "properties" in schema:
        return "dict[str, Any]"
    return "Any"


def _doc(text: str | None, indent: str) -> list[str]:
    if not text:
        return []
    text = " ".join(text.split()).replace('"""', "'''").replace("\\", "\\\\")
    return [f'{indent}"""{text}"""']


def model(name: str, schema: dict[str, Any]) -> list[str]:
    lines = [f"class {name}(TypedDict):"]
    lines += _doc(schema.get("description"), "    ")
    required = set(schema.get("required", []))
    properties = schema.get("properties", {})
    for field, spec in properties.items():
        annotation = python_type(spec)
        if field not in required:
            annotation = f"NotRequired[{annotation}]"
        if not field.isidentifier() or keyword.iskeyword(field):
            raise ValueError(f"{name}.{field}: not a Python identifier")
        lines.append(f"    {field}: {annotation}")
    if not properties:
        lines.append("    pass")
    return lines


def _success(operation: dict[str, Any]) -> tuple[list[int], str]:
    statuses = sorted(int(s) for s in operation["responses"] if s.isdigit() and 200 <= int(s) < 300)
    if statuses == [204]:
        return statuses, "None"
    types = []
    for status in statuses:
        content = operation["responses"][str(status)].get("content", {}).get("application/json")
        types.append(python_type(content["schema"]) if content else "Any")
    return statuses, " | ".join(dict.fromkeys(types)) or "Any"


def operation_method(path: str, verb: str, operation: dict[str, Any]) -> list[str]:
    name = method_name(operation["operationId"])
    parameters = operation.get("parameters", [])
    path_params = [p for p in parameters if p["in"] == "path"]
    query_params = [p for p in parameters if p["in"] == "query"]
    body = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
    statuses, returns = _success(operation)
    args = ["self"] + [f"{p['name']}: str" for p in path_params]
    if body is not None:
        args.append(f"body: {python_type(body)}")
    keywords = [f"{p['name']}: {python_type(p['schema'])} | None = None" for p in query_params]
    if verb in ("post", "put", "delete", "patch"):
        keywords.append("idempotency_key: str | None = None")
    signature = ", ".join(args + (["*", *keywords] if keywords else []))
    security = operation.get("security", [])
    who = "public"
    if security:
        scheme, scopes = next(iter(security[0].items()))
        who = "device token" if scheme == "deviceToken" else f"tenant token, scope {', '.join(scopes)}"
    query = "{" + ", ".join(f"{p['name']!r}: {p['name']}" for p in query_params) + "}"
    call = (
        f"self._call({verb.upper()!r}, {path!r}, "
        + "{"
        + ", ".join(f"{p['name']!r}: {p['name']}" for p in path_params)
        + "}, "
        + f"{query}, {'body' if body is not None else 'None'}, {tuple(statuses)!r}"
        + (", idempotency_key" if verb in ("post", "put", "delete", "patch") else "")
        + ")"
    )
    lines = [f"    def {name}({signature}) -> {returns}:"]
    lines.append(f'        """{verb.upper()} {path} ({who})."""')
    if returns == "None":
        lines.append(f"        {call}")
    else:
        lines.append(f"        return {call}")
    return lines


def generate(document: dict[str, Any]) -> str:
    out = [
        '"""Generated from layers/shared/facegate/openapi.json by sdk/python/tools/generate.py: do not edit.',
        "",
        "Run `make openapi` (it regenerates the document, then this module); a test fails when they drift.",
        '"""',
        "",
        "from __future__ import annotations",
        "",
        "from collections.abc import Mapping",
        "from typing import Any, Literal, NotRequired, TypedDict",
        "",
        f"API_VERSION = {document['info']['version']!r}",
        "",
    ]
    for name, schema in sorted(document["components"]["schemas"].items()):
        out += ["", *model(name, schema), ""]
    out += [
        "",
        "class Operations:",
        '    """One method per operation of the OpenAPI document; `_call` is the transport (facegate_sdk.client)."""',
        "",
        "    def _call(",
        "        self,",
        "        method: str,",
        "        path: str,",
        "        path_params: Mapping[str, str],",
        "        query: Mapping[str, Any],",
        "        body: Any,",
        "        statuses: tuple[int, ...],",
        "        idempotency_key: str | None = None,",
        "    ) -> Any:",
        "        raise NotImplementedError",
    ]
    names: set[str] = set()
    operations = []
    for path, verbs in sorted(document["paths"].items()):
        for verb, operation in sorted(verbs.items()):
            name = method_name(operation["operationId"])
            if name in names:
                raise ValueError(f"two operations are named {name}")
            names.add(name)
            operations.append((path, verb, name))
            out += ["", *operation_method(path, verb, operation)]
    out += ["", "", "OPERATIONS: dict[str, tuple[str, str]] = {"]
    out += [
        f"    {name!r}: ({verb.upper()!r}, {path!r})," for path, verb, name in sorted(operations, key=lambda o: o[2])
    ]
    out += ["}", ""]
    return "\n".join(out)


def main() -> int:
    text = generate(json.loads(DOCUMENT.read_text(encoding="utf-8")))
    if "--check" in sys.argv:
        if OUTPUT.read_text(encoding="utf-8") != text:
            print(f"{OUTPUT.relative_to(REPO)} is stale: run `make openapi`", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUTPUT.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Reading template.yaml: CloudFormation short tags, intrinsic functions and dependency order."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = REPO_ROOT / "template.yaml"

_TAGS = ["Ref", "Condition"]
_FN_TAGS = [
    "GetAtt",
    "Sub",
    "Join",
    "If",
    "Equals",
    "Select",
    "Split",
    "Not",
    "And",
    "Or",
    "GetAZs",
    "Base64",
]


class _Loader(yaml.SafeLoader):
    """SafeLoader that turns `!Ref X` into {"Ref": "X"} and `!Sub s` into {"Fn::Sub": s}."""


def _constructor(name: str):
    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if name == "Fn::GetAtt":
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
        return {name: value}

    return construct


for _tag in _TAGS:
    _Loader.add_constructor(f"!{_tag}", _constructor(_tag))
for _tag in _FN_TAGS:
    _Loader.add_constructor(f"!{_tag}", _constructor(f"Fn::{_tag}"))


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        return yaml.load(handle, Loader=_Loader)


_SUB_VAR = re.compile(r"\$\{([^}!]+)\}")


@dataclass
class Resolver:
    """Evaluates intrinsic functions against the physical ids and attributes created so far."""

    template: dict[str, Any]
    parameters: dict[str, Any]
    pseudo: dict[str, str]
    refs: dict[str, Any] = field(default_factory=dict)
    attrs: dict[tuple[str, str], Any] = field(default_factory=dict)

    def condition(self, name: str) -> bool:
        return bool(self.resolve(self.template.get("Conditions", {})[name]))

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self._ref(arg)
            if key == "Fn::GetAtt":
                return self.attrs[(arg[0], arg[1])]
            if key == "Fn::Sub":
                return self._sub(arg)
            if key == "Fn::Join":
                return arg[0].join(str(x) for x in self.resolve(arg[1]))
            if key == "Fn::If":
                return self.resolve(arg[1] if self.condition(arg[0]) else arg[2])
            if key == "Fn::Equals":
                return self.resolve(arg[0]) == self.resolve(arg[1])
            if key == "Fn::Not":
                return not self.resolve(arg[0])
            if key == "Condition":
                return self.condition(arg)
        return {k: self.resolve(v) for k, v in value.items()}

    def _ref(self, name: str) -> Any:
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in self.refs:
            return self.refs[name]
        raise KeyError(f"unresolved Ref {name}")

    def _sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(variables[name])
            if "." in name:
                logical, attribute = name.split(".", 1)
                return str(self.attrs[(logical, attribute)])
            return str(self._ref(name))

        return _SUB_VAR.sub(replace, text)


def dependencies(value: Any) -> set[str]:
    """Logical ids a piece of the template refers to (Ref, GetAtt, ${...} in Sub)."""
    found: set[str] = set()
    if isinstance(value, list):
        for item in value:
            found |= dependencies(item)
    elif isinstance(value, dict):
        for key, arg in value.items():
            if key == "Ref" and isinstance(arg, str):
                found.add(arg)
            elif key == "Fn::GetAtt":
                found.add(arg[0])
            elif key == "Fn::Sub":
                text = arg if isinstance(arg, str) else arg[0]
                found |= {m.split(".", 1)[0] for m in _SUB_VAR.findall(text)}
                if not isinstance(arg, str):
                    found |= dependencies(arg[1])
            else:
                found |= dependencies(arg)
    return found


def creation_order(resources: dict[str, Any]) -> list[str]:
    """Topological order of the resources, so each is created after what it refers to."""
    order: list[str] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in order or name not in resources:
            return
        if name in visiting:
            raise ValueError(f"circular dependency at {name}")
        visiting.add(name)
        for dep in sorted(dependencies(resources[name].get("Properties", {}))):
            visit(dep)
        visiting.discard(name)
        order.append(name)

    for logical in resources:
        visit(logical)
    return order


def function_ids(template: dict[str, Any]) -> list[str]:
    return [name for name, resource in template["Resources"].items() if resource["Type"] == "AWS::Serverless::Function"]


def declared_variables(template: dict[str, Any], logical: str) -> set[str]:
    """The environment variables a function of the template has (its own and the Globals')."""
    globals_env = template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    own_env = template["Resources"][logical]["Properties"].get("Environment", {}).get("Variables", {})
    return set(globals_env) | set(own_env)


def check_env_vars(template: dict[str, Any], env_vars: Any) -> dict[str, dict[str, str]]:
    """Environment overrides in the format of `sam local start-api --env-vars FILE`: `{"Parameters": {VAR:
    value}}` for every function that has VAR, `{"<FunctionLogicalId>": {VAR: value}}` for one function (wins
    over Parameters). As with SAM only variables the template declares can be overridden; unlike SAM, a name
    the template does not have (a function or a variable) is an error instead of being ignored, so that a
    typo cannot pass unnoticed. Returns the overrides with string values; raises ValueError."""
    if not isinstance(env_vars, dict):
        raise ValueError("env vars: a JSON object of {FunctionLogicalId | Parameters: {VARIABLE: value}}")
    functions = function_ids(template)
    checked: dict[str, dict[str, str]] = {}
    for scope, variables in env_vars.items():
        if scope != "Parameters" and scope not in functions:
            raise ValueError(f"env vars: {scope!r} is neither a function of template.yaml nor 'Parameters'")
        if not isinstance(variables, dict):
            raise ValueError(f"env vars: {scope!r} must map variable names to values")
        targets = functions if scope == "Parameters" else [scope]
        for name, value in variables.items():
            if not any(name in declared_variables(template, target) for target in targets):
                raise ValueError(f"env vars: template.yaml declares no variable {name!r} for {scope}")
            if not isinstance(value, str | int | float) or isinstance(value, bool):
                raise ValueError(f"env vars: {scope}.{name} must be a string or a number")
        checked[scope] = {name: str(value) for name, value in variables.items()}
    return checked

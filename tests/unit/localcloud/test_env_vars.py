"""`localcloud run --env-vars FILE`: overrides of the functions' environment in `sam local`'s format.

The e2e race tests need one (the fallback function's per-minute request limit, so that a subject's daily
OTP budget is what a burst of guesses meets); these tests pin the format and its checks.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from localcloud.provision import Stack
from localcloud.template import REPO_ROOT, Resolver, check_env_vars, load_template

pytestmark = pytest.mark.unit

TEMPLATE: dict[str, Any] = {
    "Globals": {"Function": {"Environment": {"Variables": {"LOG_LEVEL": "INFO", "STAGE": "prod"}}}},
    "Resources": {
        "One": {"Type": "AWS::Serverless::Function", "Properties": {"Environment": {"Variables": {"LIMIT": 10}}}},
        "Two": {"Type": "AWS::Serverless::Function", "Properties": {}},
        "Table": {"Type": "AWS::DynamoDB::Table", "Properties": {}},
    },
}


def stack(overrides: dict[str, dict[str, str]]) -> Stack:
    return Stack(TEMPLATE, Resolver(TEMPLATE, {}, {}), env_overrides=overrides)


def test_parameters_apply_to_every_function_that_has_the_variable_and_a_functions_own_win() -> None:
    overrides = check_env_vars(
        TEMPLATE, {"Parameters": {"LOG_LEVEL": "DEBUG", "LIMIT": 50}, "One": {"LIMIT": "1000", "STAGE": "dev"}}
    )
    assert overrides == {"Parameters": {"LOG_LEVEL": "DEBUG", "LIMIT": "50"}, "One": {"LIMIT": "1000", "STAGE": "dev"}}
    with_overrides = stack(overrides)
    assert with_overrides.function_environment("One") == {"LOG_LEVEL": "DEBUG", "STAGE": "dev", "LIMIT": "1000"}
    # a variable a function does not have is not given to it
    assert with_overrides.function_environment("Two") == {"LOG_LEVEL": "DEBUG", "STAGE": "prod"}
    assert stack({}).function_environment("One") == {"LOG_LEVEL": "INFO", "STAGE": "prod", "LIMIT": "10"}


@pytest.mark.parametrize(
    ("env_vars", "message"),
    [
        ([], "a JSON object"),
        ({"Three": {"LIMIT": "1"}}, "'Three' is neither a function"),
        ({"Table": {"LIMIT": "1"}}, "'Table' is neither a function"),
        ({"One": "LIMIT=1"}, "must map variable names"),
        ({"Two": {"LIMIT": "1"}}, "no variable 'LIMIT' for Two"),
        ({"Parameters": {"LIMT": "1"}}, "no variable 'LIMT' for Parameters"),
        ({"One": {"LIMIT": True}}, "must be a string or a number"),
        ({"One": {"LIMIT": {"a": 1}}}, "must be a string or a number"),
    ],
)
def test_a_name_the_template_does_not_have_is_an_error(env_vars: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_env_vars(TEMPLATE, env_vars)


def test_the_real_template_accepts_the_override_the_race_tests_use() -> None:
    env_vars = {"FallbackFunction": {"FALLBACK_SUBJECT_LIMIT_PER_MINUTE": "1000"}}
    assert check_env_vars(load_template(), env_vars) == env_vars


def test_run_refuses_a_bad_file_before_starting_anything(tmp_path: Path) -> None:
    bad = tmp_path / "env.json"
    bad.write_text(json.dumps({"FallbackFunction": {"NO_SUCH_VARIABLE": "1"}}))
    command = [sys.executable, "-m", "localcloud", "run", "--env-vars", str(bad)]
    ran = subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT, timeout=60, check=False)
    assert ran.returncode == 2 and "template.yaml declares no variable 'NO_SUCH_VARIABLE'" in ran.stderr, ran.stderr
    bad.write_text("{not json")
    ran = subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT, timeout=60, check=False)
    assert ran.returncode == 2 and "--env-vars" in ran.stderr, ran.stderr

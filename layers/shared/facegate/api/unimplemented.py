"""Routes of functions whose issue has not landed: an honest 501 problem, not a fake answer."""

from __future__ import annotations

from typing import Any

from facegate.api.problems import lambda_response
from facegate.core.errors import NotImplementedYetError


def not_implemented(capability: str, event: dict[str, Any]) -> dict[str, Any]:
    error = NotImplementedYetError(f"{capability} is not implemented yet", capability=capability)
    return lambda_response(error, str(event.get("rawPath", "")))

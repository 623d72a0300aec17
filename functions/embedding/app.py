"""Embedding function (enrolment). Not implemented yet: every route answers 501 problem+json."""

from __future__ import annotations

from typing import Any

from facegate.api.unimplemented import not_implemented


def lambda_handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    return not_implemented("enrolment", event)

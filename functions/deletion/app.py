"""Deletion function. Not implemented yet: HTTP routes answer 501 problem+json; queued erasure jobs are
reported as failed so that SQS keeps them (and moves them to the dead-letter queue) until erasure lands,
rather than dropping a person's request on the floor."""

from __future__ import annotations

from typing import Any

from facegate.api.unimplemented import not_implemented


def lambda_handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    records = event.get("Records")
    if isinstance(records, list):
        return {"batchItemFailures": [{"itemIdentifier": r.get("messageId", "")} for r in records]}
    if "rawPath" not in event:  # the scheduled retention sweep
        return {"swept": False, "reason": "not_implemented"}
    return not_implemented("erasure", event)

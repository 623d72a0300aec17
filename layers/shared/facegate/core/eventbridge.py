"""Domain events onto the EventBridge bus (consent withdrawn → deletion)."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from facegate.core.errors import EventPublishError


class EventPublisher:
    def __init__(self, events_client: Any, bus_name: str, source: str) -> None:
        self._events = events_client
        self._bus = bus_name
        self._source = source

    def publish(self, detail_type: str, detail: dict[str, Any]) -> None:
        try:
            answer = self._events.put_events(
                Entries=[
                    {
                        "EventBusName": self._bus,
                        "Source": self._source,
                        "DetailType": detail_type,
                        "Detail": json.dumps(detail, sort_keys=True),
                    }
                ]
            )
        except ClientError as error:
            raise EventPublishError() from error
        if answer.get("FailedEntryCount"):
            raise EventPublishError()

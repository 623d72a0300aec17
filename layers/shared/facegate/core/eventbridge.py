"""Domain events onto the EventBridge bus (consent withdrawn → deletion), and onto a queue when the bus fails."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
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


class QueueEventPublisher:
    """Puts an event straight on the SQS queue that an EventBridge rule targets, in the envelope the rule would
    deliver (`source`, `detail-type`, `detail`), so that the queue's consumer cannot tell the two paths apart."""

    def __init__(self, sqs_client: Any, queue_url: str, source: str) -> None:
        self._sqs = sqs_client
        self._url = queue_url
        self._source = source

    def publish(self, detail_type: str, detail: dict[str, Any]) -> None:
        envelope = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "source": self._source,
            "detail-type": detail_type,
            "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "detail": detail,
        }
        try:
            self._sqs.send_message(QueueUrl=self._url, MessageBody=json.dumps(envelope, sort_keys=True))
        except ClientError as error:
            raise EventPublishError() from error

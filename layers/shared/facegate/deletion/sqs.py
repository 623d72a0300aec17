"""The erasure queue (implements facegate.deletion.ports.JobQueue), and exponential backoff for SQS
redelivery: a failed message becomes visible again later each time."""

from __future__ import annotations

import json
from typing import Any

BASE_SECONDS = 30
MAX_SECONDS = 900


def backoff_seconds(receive_count: int) -> int:
    """30 s, 60 s, 120 s, ... capped at 15 minutes (the 5th failure goes to the dead-letter queue)."""
    return min(MAX_SECONDS, BASE_SECONDS * 2 ** max(0, receive_count - 1))


def delay_redelivery(sqs_client: Any, queue_url: str, receipt_handle: str, receive_count: int) -> None:
    sqs_client.change_message_visibility(
        QueueUrl=queue_url, ReceiptHandle=receipt_handle, VisibilityTimeout=backoff_seconds(receive_count)
    )


class SqsJobQueue:
    def __init__(self, sqs_client: Any, queue_url: str) -> None:
        self._sqs = sqs_client
        self._url = queue_url

    def send(self, message: dict[str, str]) -> None:
        self._sqs.send_message(QueueUrl=self._url, MessageBody=json.dumps(message))

"""The webhook queue (implements facegate.webhooks.ports.DeliveryQueue) and the backoff of a failed delivery: the
message comes back after the schedule's wait for its attempt (its receive count), then goes to the dead-letter
queue (the queue's maxReceiveCount is the number of attempts)."""

from __future__ import annotations

import json
from typing import Any

from facegate.webhooks.entities import RETRY_SECONDS, Delivery, backoff_seconds


class SqsDeliveryQueue:
    def __init__(self, sqs_client: Any, queue_url: str) -> None:
        self._sqs = sqs_client
        self._url = queue_url

    def enqueue(self, delivery: Delivery) -> None:
        self._sqs.send_message(QueueUrl=self._url, MessageBody=json.dumps(delivery.to_message()))


def delay_redelivery(
    sqs_client: Any, queue_url: str, receipt_handle: str, attempt: int, schedule: tuple[int, ...] = RETRY_SECONDS
) -> int:
    seconds = backoff_seconds(attempt, schedule)
    sqs_client.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=receipt_handle, VisibilityTimeout=seconds)
    return seconds

"""Delivery of codes and review requests: SES (e-mail), SNS (text messages), SQS (the review queue)."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from facegate.core.errors import DeliveryFailedError
from facegate.core.observability import logger


class EmailSender:
    def __init__(self, sesv2_client: Any, sender: str) -> None:
        self._ses = sesv2_client
        self._sender = sender

    def send(self, to: str, subject: str, text: str) -> str:
        try:
            answer = self._ses.send_email(
                FromEmailAddress=self._sender,
                Destination={"ToAddresses": [to]},
                Content={
                    "Simple": {
                        "Subject": {"Data": subject, "Charset": "UTF-8"},
                        "Body": {"Text": {"Data": text, "Charset": "UTF-8"}},
                    }
                },
            )
        except ClientError as error:
            # The same answer whatever the reason (unknown mailbox, suppressed address, throttling).
            logger.warning("email not sent", aws_code=error.response.get("Error", {}).get("Code"))
            raise DeliveryFailedError() from error
        return str(answer["MessageId"])


class SmsSender:
    def __init__(self, sns_client: Any, sender_id: str | None = None) -> None:
        self._sns = sns_client
        self._sender_id = sender_id

    def send(self, phone: str, text: str) -> str:
        attributes = {"AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Transactional"}}
        if self._sender_id:
            attributes["AWS.SNS.SMS.SenderID"] = {"DataType": "String", "StringValue": self._sender_id}
        try:
            answer = self._sns.publish(PhoneNumber=phone, Message=text, MessageAttributes=attributes)
        except ClientError as error:
            logger.warning("sms not sent", aws_code=error.response.get("Error", {}).get("Code"))
            raise DeliveryFailedError() from error
        return str(answer["MessageId"])


class ReviewQueue:
    """Requests for a human reviewer. Messages carry ids and the keyed subject hash, no personal data."""

    def __init__(self, sqs_client: Any, queue_url: str) -> None:
        self._sqs = sqs_client
        self._url = queue_url

    def submit(self, request: dict[str, Any]) -> None:
        try:
            self._sqs.send_message(QueueUrl=self._url, MessageBody=json.dumps(request, sort_keys=True))
        except ClientError as error:
            logger.warning("review not queued", aws_code=error.response.get("Error", {}).get("Code"))
            raise DeliveryFailedError("the review request could not be queued; try again") from error

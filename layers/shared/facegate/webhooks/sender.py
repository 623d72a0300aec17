"""POST a webhook (implements facegate.webhooks.ports.Sender): http.client, a short timeout, no redirects, the
answer's body read (a little) and dropped."""

from __future__ import annotations

import http.client
import ssl
from urllib.parse import urlsplit

from facegate.core.errors import WebhookDeliveryError

TIMEOUT_SECONDS = 5.0
MAX_ANSWER_BYTES = 4096


class HttpSender:
    def __init__(self, timeout: float = TIMEOUT_SECONDS) -> None:
        self._timeout = timeout
        self._tls = ssl.create_default_context()

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        parts = urlsplit(url)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        host = parts.hostname or ""
        connection: http.client.HTTPConnection
        if parts.scheme == "https":
            connection = http.client.HTTPSConnection(host, parts.port, timeout=self._timeout, context=self._tls)
        else:
            connection = http.client.HTTPConnection(host, parts.port, timeout=self._timeout)
        try:
            connection.request("POST", path, body=body, headers={**headers, "content-length": str(len(body))})
            answer = connection.getresponse()
            answer.read(MAX_ANSWER_BYTES)
            return int(answer.status)
        except TimeoutError as error:
            raise WebhookDeliveryError("timeout") from error
        except (OSError, http.client.HTTPException) as error:
            raise WebhookDeliveryError("connection") from error
        finally:
            connection.close()

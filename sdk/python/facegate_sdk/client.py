"""The HTTP transport of the generated operations, and helpers for tenant backends.

    client = FacegateClient("https://api.example.com", token=lambda: my_cognito_token())
    session = client.create_device_session("customer-42", "checkout", ["notice", "consent", "liveness", "verify"])
    # hand session.token to the person's browser or app; later, if the checkout is abandoned:
    client.revoke_device_session(session.device_session_id)

A device uses the same client with its device token: `FacegateClient(base_url, token=session.token)` and the
`device_*` operations. Every error is an ApiError with the problem document's stable `code` (or, for what API
Gateway refuses itself, the status and its `{"message": ...}`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

import requests

from facegate_sdk._generated import DeviceSessionResponse, Operations

TokenSource = str | Callable[[], str] | None


class ApiError(Exception):
    """An answer outside the operation's success statuses."""

    def __init__(self, status: int, body: Any) -> None:
        self.status = status
        self.body = body
        problem = body if isinstance(body, dict) else {}
        self.code: str | None = problem.get("code")  # None for API Gateway's own answers
        self.detail: str = str(problem.get("detail") or problem.get("message") or body)
        super().__init__(f"{status} {self.code or 'gateway'}: {self.detail}")


@dataclass(frozen=True)
class DeviceSession:
    """A minted device session: give `token` to the person's device (never a tenant credential)."""

    device_session_id: str
    token: str
    expires_at: datetime
    subject_id: str
    purpose: str
    operations: tuple[str, ...]

    @classmethod
    def of(cls, answer: DeviceSessionResponse) -> DeviceSession:
        return cls(
            device_session_id=answer["device_session_id"],
            token=answer["token"],
            expires_at=datetime.fromisoformat(answer["expires_at"].replace("Z", "+00:00")),
            subject_id=answer["subject_id"],
            purpose=answer["purpose"],
            operations=tuple(answer["operations"]),
        )


class FacegateClient(Operations):
    """Typed client of the facegate API: one method per operation of the OpenAPI document (generated)."""

    def __init__(
        self,
        base_url: str,
        token: TokenSource = None,
        *,
        timeout: float = 30.0,
        session: requests.Session | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._timeout = timeout
        self._http = session or requests.Session()

    def _bearer(self) -> str | None:
        return self._token() if callable(self._token) else self._token

    def _call(
        self,
        method: str,
        path: str,
        path_params: Mapping[str, str],
        query: Mapping[str, Any],
        body: Any,
        statuses: tuple[int, ...],
        idempotency_key: str | None = None,
    ) -> Any:
        url = self.base_url + path.format(**{k: quote(str(v), safe="") for k, v in path_params.items()})
        headers = {"accept": "application/json, application/problem+json"}
        token = self._bearer()
        if token:
            headers["authorization"] = f"Bearer {token}"
        if idempotency_key:
            headers["idempotency-key"] = idempotency_key
        response = self._http.request(
            method,
            url,
            params={k: v for k, v in query.items() if v is not None},
            json=body,
            headers=headers,
            timeout=self._timeout,
        )
        try:
            answer = response.json() if response.content else None
        except ValueError:
            answer = response.text
        ok = response.status_code in statuses if statuses else response.status_code < 400
        if not ok:
            raise ApiError(response.status_code, answer)
        return answer

    # -- helpers for tenant backends

    def create_device_session(
        self,
        subject_id: str,
        purpose: str,
        operations: Iterable[str],
        ttl_seconds: int = 300,
        *,
        idempotency_key: str | None = None,
    ) -> DeviceSession:
        """Mint a device session (tenant token with the verify scope): at most 10 minutes, these operations only."""
        body: Any = {
            "subject_id": subject_id,
            "purpose": purpose,
            "operations": list(operations),
            "ttl_seconds": ttl_seconds,
        }
        answer = self.mint_device_session(body, idempotency_key=idempotency_key)
        return DeviceSession.of(answer)

    def device(self, session: DeviceSession | str) -> FacegateClient:
        """A client acting as the device of `session` (its token only), e.g. for a server-rendered page."""
        token = session.token if isinstance(session, DeviceSession) else session
        return FacegateClient(self.base_url, token, timeout=self._timeout, session=self._http)

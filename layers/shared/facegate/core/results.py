"""The signed verification result: the same shape whichever method (face or fallback) was used."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from facegate.core.clock import utcnow
from facegate.core.ports import Signer

RESULT_LIFETIME = timedelta(minutes=5)
# A score or threshold in a token that leaves the service would be an oracle for hill-climbing a fake face.
NEVER_SIGNED = frozenset({"score", "threshold"})


class ResultIssuer:
    def __init__(self, signer: Signer, issuer: str, clock: Callable[[], datetime] = utcnow) -> None:
        self._signer = signer
        self._issuer = issuer
        self._clock = clock

    def issue(
        self, tenant_id: str, subject_id: str, purpose: str, method: str, decision: str, **evidence: Any
    ) -> tuple[str, dict[str, Any]]:
        """A compact ES256 JWT the tenant's backend verifies offline with /v1/keys (never with a score)."""
        if NEVER_SIGNED & evidence.keys():
            raise ValueError(f"a result token never carries {sorted(NEVER_SIGNED & evidence.keys())}")
        now = self._clock()
        claims = {
            "iss": self._issuer,
            "aud": tenant_id,
            "sub": subject_id,
            "typ": "verification-result",
            "jti": uuid.uuid4().hex,
            "purpose": purpose,
            "method": method,
            "decision": decision,
            "iat": int(now.timestamp()),
            "exp": int((now + RESULT_LIFETIME).timestamp()),
            **evidence,
        }
        return self._signer.sign(claims), claims

"""Keyed hashes of subject ids: tables, events and logs carry these, never the tenant's raw id."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Subject:
    """A tenant's subject as one request sees it: the raw id (only the caller's answer and sealed data carry
    it, never a log: it is left out of the repr) and its keyed ref, hashed once per request."""

    id: str = field(repr=False)
    ref: str


class SubjectHasher:
    def __init__(self, pepper: bytes) -> None:
        self._pepper = pepper

    def ref(self, tenant_id: str, subject_id: str) -> str:
        """Stable per tenant; the same subject id in another tenant gets an unrelated ref."""
        message = f"{tenant_id}\x1f{subject_id}".encode()
        return hmac.new(self._pepper, message, hashlib.sha256).hexdigest()[:40]

    def subject(self, tenant_id: str, subject_id: str) -> Subject:
        return Subject(subject_id, self.ref(tenant_id, subject_id))


def canonical_sha256(value: object) -> str:
    """sha256 of canonical JSON: sorted keys, no spaces, UTF-8 (how notices and receipts are hashed)."""
    data = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(data).hexdigest()

"""Keyed hashes of subject ids: tables, events and logs carry these, never the tenant's raw id."""

from __future__ import annotations

import hashlib
import hmac
import json


class SubjectHasher:
    def __init__(self, pepper: bytes) -> None:
        self._pepper = pepper

    def ref(self, tenant_id: str, subject_id: str) -> str:
        """Stable per tenant; the same subject id in another tenant gets an unrelated ref."""
        message = f"{tenant_id}\x1f{subject_id}".encode()
        return hmac.new(self._pepper, message, hashlib.sha256).hexdigest()[:40]


def canonical_sha256(value: object) -> str:
    """sha256 of canonical JSON: sorted keys, no spaces, UTF-8 (how notices and receipts are hashed)."""
    data = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(data).hexdigest()

"""The shared kernel's ports: what services need of signing, events, encryption and the uploads bucket.

Implemented by facegate.core.kms (KmsSigner, EnvelopeCipher), facegate.core.eventbridge and facegate.core.s3.
"""

from __future__ import annotations

from typing import Any, Protocol

from facegate.core.envelope import Sealed
from facegate.core.uploads import PresignedUpload


class Signer(Protocol):
    def sign(self, claims: dict[str, Any], typ: str = "JWT") -> str: ...


class Publisher(Protocol):
    def publish(self, detail_type: str, detail: dict[str, Any]) -> None: ...


class Cipher(Protocol):
    """Envelope encryption bound to an encryption context."""

    def seal(self, plaintext: bytes, context: dict[str, str]) -> Sealed: ...
    def open(self, sealed: Sealed, context: dict[str, str]) -> bytes: ...


class Uploads(Protocol):
    """Short-lived raw images: presigned, read once with size and type checked, deleted."""

    max_bytes: int

    def presign(self, key: str, content_type: str) -> PresignedUpload: ...
    def fetch(self, key: str) -> bytes: ...
    def delete(self, key: str) -> None: ...

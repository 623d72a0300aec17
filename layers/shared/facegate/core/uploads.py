"""Raw images uploaded by devices: what a presigned upload tells the device, and the accepted types."""

from __future__ import annotations

from dataclasses import dataclass

ALLOWED_TYPES = ("image/jpeg", "image/png", "image/webp")
PRESIGN_SECONDS = 300  # how long a presigned POST can be used


@dataclass(frozen=True)
class PresignedUpload:
    url: str
    fields: dict[str, str]
    expires_in: int
    max_bytes: int
    content_type: str

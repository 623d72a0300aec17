"""Inline images arrive base64-encoded in JSON bodies."""

from __future__ import annotations

import base64
import binascii

from facegate.core.errors import InvalidImageError


def decode_base64_image(image: str) -> bytes:
    try:
        return base64.b64decode(image, validate=True)
    except (binascii.Error, ValueError) as error:
        raise InvalidImageError("the image is not valid base64") from error

"""Safe image decoding: JPEG/PNG/WebP only, size caps against decompression bombs, EXIF orientation applied."""

from __future__ import annotations

import io
import warnings

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageOps

from faceengine.errors import ImageTooLargeError, InvalidImageError

ALLOWED_FORMATS = frozenset({"JPEG", "PNG", "WEBP"})
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_MAX_PIXELS = 40_000_000


def decode_image(
    data: bytes, max_bytes: int = DEFAULT_MAX_BYTES, max_pixels: int = DEFAULT_MAX_PIXELS
) -> npt.NDArray[np.uint8]:
    """Decode bytes to an upright HxWx3 RGB uint8 array, or raise InvalidImageError / ImageTooLargeError."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise InvalidImageError("image must be given as bytes")
    if len(data) > max_bytes:
        raise ImageTooLargeError(f"the image is {len(data)} bytes; at most {max_bytes} are accepted")
    if len(data) == 0:
        raise InvalidImageError("the image is empty")
    try:
        # Header only: format and size are known before any pixel is decoded.
        with Image.open(io.BytesIO(data), formats=sorted(ALLOWED_FORMATS)) as probe:
            fmt = probe.format
            width, height = probe.size
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise InvalidImageError() from exc
    if fmt not in ALLOWED_FORMATS:
        raise InvalidImageError()
    if width <= 0 or height <= 0:
        raise InvalidImageError("the image has no pixels")
    if width * height > max_pixels:
        raise ImageTooLargeError(f"the image has {width}x{height} pixels; at most {max_pixels} are accepted")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=[fmt]) as img:
                img.load()  # raises on truncated or corrupt data
                upright = ImageOps.exif_transpose(img)
                rgb = upright.convert("RGB")
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLargeError() from exc
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise InvalidImageError() from exc
    return np.asarray(rgb, dtype=np.uint8)

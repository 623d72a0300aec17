"""Safe image decoding: JPEG/PNG/WebP only, size caps against decompression bombs, EXIF orientation applied.

Everything is decided from the header before a pixel is decoded: the format (other image formats are
refused as unsupported, not as unreadable), the declared size against the pixel cap. A JPEG larger
than the cap is decoded at 1/2, 1/4 or 1/8 of its size by the JPEG decoder itself (Pillow's `draft`),
which costs a fraction of a full decode; PNG and WebP above the cap are refused.
"""

from __future__ import annotations

import io
import re
import warnings

import numpy as np
import numpy.typing as npt
from PIL import ExifTags, Image, ImageOps

from faceengine.errors import ImageTooLargeError, InvalidImageError, UnsupportedMediaTypeError

ALLOWED_FORMATS = frozenset({"JPEG", "PNG", "WEBP"})
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_MAX_PIXELS = 16_000_000
JPEG_DRAFT_SCALES = (2, 4, 8)  # the reductions libjpeg's DCT scaling offers
_TRANSPOSED = frozenset(range(2, 9))  # EXIF orientations other than upright

# Image formats recognised by their first bytes, to answer "unsupported" rather than "unreadable".
# Only the header is looked at: the files are never handed to a decoder.
_OTHER_FORMATS: tuple[tuple[str, re.Pattern[bytes]], ...] = (
    ("GIF", re.compile(rb"GIF8[79]a")),
    ("BMP", re.compile(rb"BM.{4}\x00\x00\x00\x00", re.DOTALL)),
    ("TIFF", re.compile(rb"II[*+]\x00|MM\x00[*+]")),
    ("HEIF/AVIF (ISO media)", re.compile(rb".{4}ftyp", re.DOTALL)),
    ("JPEG 2000", re.compile(rb"\x00\x00\x00\x0cjP  \r\n\x87\n|\xff\x4f\xff\x51")),
    ("JPEG XL", re.compile(rb"\xff\x0a|\x00\x00\x00\x0cJXL \r\n\x87\n")),
    ("ICO/CUR", re.compile(rb"\x00\x00[\x01\x02]\x00[\x01-\xff]\x00")),
    ("PSD", re.compile(rb"8BPS")),
    ("QOI", re.compile(rb"qoif")),
    ("DDS", re.compile(rb"DDS ")),
    ("OpenEXR", re.compile(rb"\x76\x2f\x31\x01")),
    ("PNM", re.compile(rb"P[1-7][\s#]")),
)
_SVG = re.compile(rb"<svg[\s>]", re.IGNORECASE)


def sniff_unsupported(data: bytes) -> str | None:
    """The name of a recognised image format that is not accepted (GIF, BMP, TIFF, SVG, ...), else None."""
    head = bytes(data[:1024])
    for name, signature in _OTHER_FORMATS:
        if signature.match(head):
            return name
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text.startswith(b"<") and _SVG.search(head):
        return "SVG"
    return None


def _draft_size(width: int, height: int, max_pixels: int) -> tuple[int, int] | None:
    """The size to ask the JPEG decoder for: the mildest reduction that fits the cap (None: none does)."""
    for scale in JPEG_DRAFT_SCALES:
        # The decoder rounds up; Pillow picks the scale from the floor (min(width // w, height // h)).
        if -(-width // scale) * -(-height // scale) <= max_pixels:
            return max(1, width // scale), max(1, height // scale)
    return None


def _open(data: bytes, max_bytes: int, max_pixels: int) -> Image.Image:
    """Everything decided from the header, before a pixel is decoded: the image opened (not loaded) when its
    format is accepted and its byte size within the cap; raises the errors of decode_image otherwise."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise InvalidImageError("image must be given as bytes")
    if len(data) > max_bytes:
        raise ImageTooLargeError(f"the image is {len(data)} bytes; at most {max_bytes} are accepted")
    if len(data) == 0:
        raise InvalidImageError("the image is empty")
    other = sniff_unsupported(bytes(data[:1024]))
    if other is not None:
        raise UnsupportedMediaTypeError(f"{other} images are not accepted; send JPEG, PNG or WebP")
    try:
        with warnings.catch_warnings():
            # Our own cap (below) is stricter than Pillow's warning level; its hard limit still raises.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=sorted(ALLOWED_FORMATS))  # header only: no pixel yet
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(f"the image declares too many pixels; at most {max_pixels} are accepted") from exc
    except (OSError, ValueError, SyntaxError) as exc:
        raise InvalidImageError() from exc
    if img.format not in ALLOWED_FORMATS:
        img.close()
        raise InvalidImageError()
    if img.size[0] <= 0 or img.size[1] <= 0:
        img.close()
        raise InvalidImageError("the image has no pixels")
    return img


def _draft_within_cap(img: Image.Image, max_pixels: int) -> None:
    """For an image above the pixel cap: let the JPEG decoder reduce it to fit, or raise ImageTooLargeError."""
    width, height = img.size
    target = _draft_size(width, height, max_pixels) if img.format == "JPEG" else None
    if target is None:
        raise ImageTooLargeError(f"the image has {width}x{height} pixels; at most {max_pixels} are accepted")
    img.draft(None, target)  # the decoder itself scales by 1/2, 1/4 or 1/8 (no full-size decode)
    if img.size[0] * img.size[1] > max_pixels:
        raise ImageTooLargeError(f"the image has {width}x{height} pixels; at most {max_pixels} are accepted")


def decode_image(
    data: bytes, max_bytes: int = DEFAULT_MAX_BYTES, max_pixels: int = DEFAULT_MAX_PIXELS
) -> npt.NDArray[np.uint8]:
    """Decode bytes to an upright HxWx3 RGB uint8 array, or raise InvalidImageError (400),
    UnsupportedMediaTypeError (415) or ImageTooLargeError (413)."""
    img = _open(data, max_bytes, max_pixels)
    with img:
        width, height = img.size
        if width * height > max_pixels:
            _draft_within_cap(img, max_pixels)
        try:
            img.load()  # raises on truncated or corrupt data
            upright = ImageOps.exif_transpose(img)
            rgb = upright.convert("RGB")
        except Image.DecompressionBombError as exc:
            raise ImageTooLargeError() from exc
        except (OSError, ValueError, SyntaxError, EOFError) as exc:
            raise InvalidImageError() from exc
    return np.asarray(rgb, dtype=np.uint8)


def decode_reduced(
    data: bytes, reduce: int = 1, max_bytes: int = DEFAULT_MAX_BYTES, max_pixels: int = DEFAULT_MAX_PIXELS
) -> tuple[Image.Image, int]:
    """decode_image for the face tracker: the same checks, caps and errors, but the upright RGB image is returned
    as a Pillow image (no copy into an array, none for a no-op EXIF transpose or RGB conversion), and a JPEG may
    be decoded reduced by the JPEG decoder itself (DCT scaling, a fraction of a full decode's cost).

    `reduce` asks for a reduction (1, 2, 4 or 8); the mildest of those up to it that divides both sides exactly is
    used, so that a pixel coordinate of the full image is exactly `scale` times one of the reduced image, whatever
    the EXIF orientation. Returns (image, scale), scale = 1 when nothing was reduced (PNG, WebP, sides that do not
    divide, reduce = 1, or an image above the pixel cap, which comes out exactly as decode_image returns it).
    """
    img = _open(data, max_bytes, max_pixels)
    width, height = img.size
    scale = 1
    if width * height > max_pixels:
        _draft_within_cap(img, max_pixels)
    elif img.format == "JPEG" and reduce > 1:
        scale = max(s for s in (1, *JPEG_DRAFT_SCALES) if s <= reduce and width % s == 0 and height % s == 0)
        if scale > 1:
            img.draft(None, (width // scale, height // scale))
            scale = width // img.size[0]  # 1 if the decoder could not scale this file
    try:
        img.load()  # raises on truncated or corrupt data
        # The orientations exif_transpose acts on; for any other it would only copy the image.
        if img.getexif().get(ExifTags.Base.Orientation, 1) in _TRANSPOSED:
            img = ImageOps.exif_transpose(img)
        if img.mode != "RGB":
            img = img.convert("RGB")
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError() from exc
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise InvalidImageError() from exc
    return img, scale

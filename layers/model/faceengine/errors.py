"""Typed errors of the face engine: each carries a stable machine-readable `code` and a human message."""

from __future__ import annotations


class FaceEngineError(Exception):
    """Base class; `code` is stable and meant for API clients, the message for humans."""

    code = "face_engine_error"
    default_message = "the face engine could not process the image"

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.default_message
        super().__init__(self.message)


class InvalidImageError(FaceEngineError):
    """The bytes are not a decodable JPEG, PNG or WebP image."""

    code = "invalid_image"
    default_message = "the file is not a readable JPEG, PNG or WebP image"


class UnsupportedMediaTypeError(FaceEngineError):
    """The bytes are an image of another format (GIF, BMP, TIFF, SVG, HEIF, ...): only JPEG, PNG and WebP are read."""

    code = "unsupported_media_type"
    default_message = "only JPEG, PNG and WebP images are accepted"


class ImageTooLargeError(FaceEngineError):
    """The image exceeds the byte-size or pixel-count cap (decompression-bomb guard), checked on the header."""

    code = "image_too_large"
    default_message = "the image is too large"


class NoFaceError(FaceEngineError):
    """No usable face was found."""

    code = "no_face"
    default_message = "no face was found in the image"


class MultipleFacesError(FaceEngineError):
    """More than one usable face: enrolment and verification need exactly one."""

    code = "multiple_faces"
    default_message = "more than one face was found in the image"

    def __init__(self, count: int, message: str | None = None) -> None:
        self.count = count
        super().__init__(
            message
            or f"{count} comparable faces were found; exactly one is needed: the person alone in the middle of the "
            "frame (someone at the edge does not count)"
        )


class LowQualityError(FaceEngineError):
    """A face was found but is not good enough to enrol or verify (see `reasons`)."""

    code = "low_quality"
    default_message = "the face is not clear enough"

    def __init__(self, reasons: list[str], message: str | None = None) -> None:
        self.reasons = list(reasons)
        super().__init__(message or "the face is not clear enough: " + ", ".join(self.reasons))


class ModelMismatchError(FaceEngineError):
    """Two templates made by different models (or versions) cannot be compared."""

    code = "model_mismatch"
    default_message = "the templates were made by different face models"


class FrameBatchError(FaceEngineError):
    """A proctoring batch is malformed: no frames, too many, or not one finite timestamp per frame."""

    code = "invalid_frame_batch"
    default_message = "the batch needs one finite timestamp (ms) per frame, and at most the allowed number of frames"


class TimestampOrderError(FrameBatchError):
    """A proctoring batch's timestamps do not increase strictly, or do not follow the session's last timestamp."""

    code = "timestamps_not_increasing"
    default_message = "frame timestamps must increase strictly, and follow the last frame already received"


class ProctorStateError(FaceEngineError):
    """The proctoring state given back is not one this engine wrote (another version, or damaged)."""

    code = "invalid_proctoring_state"
    default_message = "the proctoring state is not one this engine version can continue"

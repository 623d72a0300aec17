"""The face engine seen from the domain (implements facegate.matching.ports.Biometrics): image bytes in,
the engine's own template object out, domain errors.

Templates cross this boundary as engine objects, once per request: a probe is embedded once and compared or
searched as it is. Bytes appear only at the storage edge (`to_bytes` before sealing, `from_bytes` after the
audited decryption in facegate.matching.templates).

Only the embedding and matching functions carry the model layer; importing this module elsewhere
would fail, which is intended (consent, fallback and deletion stay small).
"""

from __future__ import annotations

from typing import Any

from facegate.core import errors
from facegate.matching.entities import EngineTemplate

_MAPPING = {
    "invalid_image": errors.InvalidImageError,
    "image_too_large": errors.ImageTooLargeError,
    "unsupported_media_type": errors.UnsupportedMediaTypeError,
    "no_face": errors.NoFaceError,
    "multiple_faces": errors.MultipleFacesError,
    "low_quality": errors.LowQualityError,
    # Templates of different models are never compared (services filter by model first); if it ever happens,
    # the enrolment must be made again by this model.
    "model_mismatch": errors.ReenrolmentRequiredError,
}


def _domain_error(error: Exception) -> errors.FacegateError:
    code = getattr(error, "code", "invalid_image")
    extra: dict[str, Any] = {}
    if getattr(error, "reasons", None):
        extra["reasons"] = list(error.reasons)  # type: ignore[attr-defined]
    if getattr(error, "count", None):
        extra["faces"] = int(error.count)  # type: ignore[attr-defined]
    return _MAPPING.get(code, errors.InvalidImageError)(str(error), **extra)


class FaceBiometrics:
    """Wraps `faceengine.FaceEngine`; loaded once per warm container."""

    def __init__(self, engine: Any | None = None) -> None:
        if engine is None:
            from faceengine import FaceEngine

            engine = FaceEngine.load()
        self._engine = engine

    @property
    def engine(self) -> Any:
        """The `faceengine.FaceEngine` itself (facegate.liveness.engine judges bursts with it)."""
        return self._engine

    @property
    def model_id(self) -> str:
        return str(self._engine.model_id)

    @property
    def model_version(self) -> str:
        return str(self._engine.model_version)

    def enrol(self, image: bytes) -> EngineTemplate:
        """Detect exactly one usable face, align, embed. Also used for verification probes."""
        from faceengine.errors import FaceEngineError

        try:
            template = self._engine.enrol(image)
        except FaceEngineError as error:
            raise _domain_error(error) from error
        return EngineTemplate(template.model_id, template.model_version, template)

    def similarity(self, a: EngineTemplate, b: EngineTemplate) -> float:
        return float(self._engine.similarity(a.engine, b.engine))

    def to_bytes(self, template: EngineTemplate) -> bytes:
        """The storage form (sealed before it is stored)."""
        return bytes(template.engine.to_bytes())

    def from_bytes(self, model_id: str, model_version: str, data: bytes) -> EngineTemplate:
        """A stored template back as the engine's object (after its audited decryption)."""
        from faceengine import Template

        return EngineTemplate(model_id, model_version, Template.from_bytes(data))

    @property
    def dimension(self) -> int:
        """Length of the 1:N search key that galleries hold."""
        return int(self._engine.search_dimension)

    def vector(self, template: EngineTemplate) -> Any:
        """The template's 1:N search key: an L2-normalised float32 vector (part of the template; see faceengine)."""
        return self._engine.search_vector(template.engine)

    def search_threshold(self, far: float) -> float:
        """Threshold on search keys for a false-accept rate (1:N decides on the key, not the whole template)."""
        return float(self._engine.search_threshold(far))

    def threshold(self, far: float) -> float:
        return float(self._engine.threshold(far))

    def calibration(self) -> dict[str, Any]:
        """Thresholds per level and what each population measured at them, as the engine's manifest records."""
        return dict(self._engine.calibration())

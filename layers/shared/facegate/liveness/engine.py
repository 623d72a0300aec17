"""The face engine behind the LivenessEngine port (only the embedding and matching functions carry it)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from facegate.liveness.entities import Judgement
from facegate.matching.biometrics import FaceBiometrics, _domain_error
from facegate.matching.entities import EngineTemplate


class EngineLiveness:
    """Decodes frames with the engine's safe decoder and judges a burst with `FaceEngine.liveness`."""

    def __init__(self, biometrics: FaceBiometrics) -> None:
        self._biometrics = biometrics

    def decode_frames(self, frames: Sequence[bytes], max_pixels: int) -> list[Any]:
        from faceengine.decode import decode_image
        from faceengine.errors import FaceEngineError

        try:
            return [decode_image(frame, max_pixels=max_pixels) for frame in frames]
        except FaceEngineError as error:
            raise _domain_error(error) from error

    def judge(self, images: Sequence[Any], timestamps_ms: Sequence[float], actions: Sequence[str]) -> Judgement:
        engine = self._biometrics.engine
        result = engine.liveness(list(images), list(timestamps_ms), list(actions))
        decision = result.decision
        template = None
        if decision.live and result.template is not None:
            # The engine's own template object, as FaceBiometrics.enrol wraps it (bytes only when sealed).
            template = EngineTemplate(result.template.model_id, result.template.model_version, result.template)
        return Judgement(
            decision=decision.decision,
            reasons=list(decision.reasons),
            details={k: v for k, v in decision.details.items() if isinstance(v, int | float)},
            template=template,
        )

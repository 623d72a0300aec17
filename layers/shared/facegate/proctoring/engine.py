"""The face engine behind the ProctorEngine port (`FaceEngine.proctor` / `end_proctoring`; only the matching
function carries it). Frames stay bytes until the engine decodes them in memory; nothing is kept."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from facegate.core.errors import FacegateError, InvalidRequestError, TimestampsNotIncreasingError
from facegate.matching.biometrics import FaceBiometrics, _domain_error
from facegate.matching.entities import EngineTemplate
from facegate.proctoring.entities import IncidentRecord, ProctorBatchResult


def _record(incident: Any) -> IncidentRecord:
    return IncidentRecord(
        incident_id=str(incident.incident_id),
        type=str(incident.type),
        start_ts=float(incident.start_ts),
        end_ts=float(incident.end_ts),
        frames=int(incident.frames),
        confidence=float(incident.confidence),
        model_version=str(incident.model_version),
        open=bool(incident.open),
    )


def _proctor_error(error: Exception) -> FacegateError:
    """The engine's stable codes as domain errors: decoding and model errors as everywhere (facegate.matching),
    and proctoring's own: a batch's order, its shape, and a stored state this engine cannot continue."""
    code = str(getattr(error, "code", ""))
    if code == "timestamps_not_increasing":
        return TimestampsNotIncreasingError(str(error))
    if code == "invalid_frame_batch":
        return InvalidRequestError(str(error))
    if code == "invalid_proctoring_state":
        return FacegateError("the session's tracking state cannot be continued by this engine version")
    return _domain_error(error)


class EngineProctor:
    def __init__(self, biometrics: FaceBiometrics) -> None:
        self._biometrics = biometrics

    @property
    def model_id(self) -> str:
        return self._biometrics.model_id

    @property
    def model_version(self) -> str:
        return self._biometrics.model_version

    def process(
        self,
        state: dict[str, Any] | None,
        frames: Sequence[bytes],
        timestamps_ms: Sequence[float],
        template: EngineTemplate,
    ) -> ProctorBatchResult:
        from faceengine.errors import FaceEngineError

        try:
            update = self._biometrics.engine.proctor(state, list(frames), list(timestamps_ms), template.engine)
        except FaceEngineError as error:
            raise _proctor_error(error) from error
        return ProctorBatchResult(
            state=dict(update.state),
            incidents=[_record(i) for i in update.incidents],
            guidance=[str(g) for g in update.guidance],
            stats={k: v for k, v in update.stats.items() if isinstance(v, int | float) and not isinstance(v, bool)},
        )

    def finish(self, state: dict[str, Any]) -> list[IncidentRecord]:
        from faceengine.errors import FaceEngineError

        try:
            return [_record(i) for i in self._biometrics.engine.end_proctoring(state)]
        except FaceEngineError as error:
            raise _proctor_error(error) from error

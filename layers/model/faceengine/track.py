"""Face tracking over a burst of frames: BlazeFace on the first frame and whenever the track is lost, FaceMesh
alone in between (cropped from the previous frame's landmarks), with head pose, eye and mouth openness.

    tracker = engine.tracker()
    for jpeg, t in zip(frames, timestamps_ms):
        f = tracker.update(engine.decode(jpeg), t)   # -> TrackedFrame
        f.track_id, f.pose.yaw, f.pose.eyes, f.pose.mouth, f.quality.ok

`engine.track(frames)` does the same over image bytes. A track id changes when the face is lost and a new face
is detected: FaceMesh's presence falls below `tracking.min_presence`, or the mesh moves by more than
`max_jump_face_sizes` of its size or changes size by more than `max_scale_change` between two frames.
`track_id` is None on a frame with no face.

Encoded frames (`tracker.update_encoded(jpeg, t)`, which `engine.track` uses for bytes) take a faster road: the
frame stays a Pillow image (no array copies), and when the previous face is large enough that the FaceMesh crop
would be box-reduced by 2, 4 or 8 anyway, the JPEG decoder itself decodes the frame at that reduction (DCT
scaling). Landmarks stay in full-size pixel coordinates. A frame that loses the track is decoded in full for the
detector. `tracking.reduced_decode: false` in the manifest turns the reduction off (then the landmarks are those
of tracking decoded arrays); the measured differences are in tools/bench_tracker.py and the README.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from PIL import Image

from faceengine.landmarks import Mesh, reduction_for
from faceengine.pose import Pose, pose
from faceengine.quality import Quality, check, measure

if TYPE_CHECKING:
    from faceengine.engine import FaceEngine


@dataclass(frozen=True)
class TrackedFrame:
    """One frame of a track. Without a face: track_id, box, mesh, pose and quality are None.

    box is (x, y, w, h) around the mesh, landmarks the 5 alignment points (eye centres, nose tip, mouth corners),
    `detected` tells whether BlazeFace ran on this frame, `faces` how many usable faces it saw then (0 when it
    did not run), `decoded_scale` the reduction the frame was decoded at for FaceMesh (1: full size; 2, 4 or 8
    only through update_encoded).
    """

    index: int
    timestamp_ms: float | None
    track_id: int | None
    box: tuple[float, float, float, float] | None
    landmarks: list[tuple[float, float]] | None
    mesh: Mesh | None
    pose: Pose | None
    quality: Quality | None
    detected: bool
    faces: int
    decoded_scale: int = 1


def _mesh_box(mesh: Mesh) -> tuple[float, float, float, float]:
    p = mesh.points[:, :2]
    lo, hi = p.min(0), p.max(0)
    return float(lo[0]), float(lo[1]), float(hi[0] - lo[0]), float(hi[1] - lo[1])


class Tracker:
    """Incremental tracker over decoded RGB frames or encoded ones (one subject; see the module docstring)."""

    def __init__(self, engine: FaceEngine, settings: dict[str, Any]) -> None:
        self.engine = engine
        self.min_presence = float(settings["min_presence"])
        self.max_jump = float(settings["max_jump_face_sizes"])
        self.max_scale_change = float(settings["max_scale_change"])
        self.reduced_decode = bool(settings.get("reduced_decode", True))
        self._quality_limits = engine.manifest["pipeline"]["quality"]
        self._mesh: Mesh | None = None
        self._box: tuple[float, float, float, float] | None = None
        self._next_id = 1
        self._track_id: int | None = None
        self._index = 0

    def reset(self) -> None:
        """Forget the current track (the next frame runs the detector and starts a new track id)."""
        self._mesh = None
        self._box = None
        self._track_id = None

    def _frame(
        self,
        mesh: Mesh | None,
        crop: npt.NDArray[np.uint8] | None,
        t: float | None,
        detected: bool,
        faces: int,
        box: tuple[float, float, float, float] | None = None,
        scale: int = 1,
    ) -> TrackedFrame:
        index = self._index
        self._index += 1
        if mesh is None or crop is None:
            return TrackedFrame(index, t, None, None, None, None, None, None, detected, faces)
        # Sharpness and exposure on the FaceMesh crop already made (no second warp): the crop is eye-levelled and
        # its central half is the middle of the face, as on an aligned chip.
        quality = check(measure(mesh, crop), self._quality_limits)
        return TrackedFrame(
            index=index,
            timestamp_ms=t,
            track_id=self._track_id,
            box=box or _mesh_box(mesh),
            landmarks=[(float(x), float(y)) for x, y in mesh.five_points()],
            mesh=mesh,
            pose=pose(mesh),
            quality=quality,
            detected=detected,
            faces=faces,
            decoded_scale=scale,
        )

    def _plausible(
        self,
        previous: Mesh,
        box0: tuple[float, float, float, float],
        mesh: Mesh,
        box: tuple[float, float, float, float],
    ) -> bool:
        """Whether mesh (with its box) can be the same face as the previous mesh one frame later: no jump across the
        frame, no sudden resize. Sizes are the meshes' box sides (the eye distance shrinks too much on a turned head
        to measure by)."""
        s0, s1 = max(box0[2:]), max(box[2:])
        if s0 <= 0 or s1 <= 0:
            return False
        ratio = max(s0, s1) / min(s0, s1)
        shift = float(np.linalg.norm(previous.points[:, :2].mean(0) - mesh.points[:, :2].mean(0)))
        return ratio <= self.max_scale_change and shift <= self.max_jump * max(s0, s1)

    def _follow(
        self, image: npt.NDArray[np.uint8] | Image.Image, m: npt.NDArray[np.float64], scale: int, t: float | None
    ) -> TrackedFrame | None:
        """FaceMesh on the crop from the previous mesh; the frame, or None when the track is lost (then reset)."""
        assert self._mesh is not None and self._box is not None
        mesh, crop = self.engine.facemesh.run_crop(image, m, scale)
        if mesh.presence >= self.min_presence:
            box = _mesh_box(mesh)
            if self._plausible(self._mesh, self._box, mesh, box):
                self._mesh, self._box = mesh, box
                return self._frame(mesh, crop, t, False, 0, box, scale)
        self.reset()
        return None

    def _start(self, image: npt.NDArray[np.uint8], t: float | None) -> TrackedFrame:
        """BlazeFace on the whole frame; a new track on the subject's face, if any."""
        fm = self.engine.facemesh
        faces = [f for f in self.engine._analyse_image(image) if f.usable]
        if not faces:
            return self._frame(None, None, t, True, 0)
        subject = faces[0] if len(faces) == 1 else max(faces, key=lambda f: f.quality.measures["eye_distance_px"])
        # Re-run FaceMesh on the crop its own mesh implies, as every later frame will: the first frame's
        # landmarks then come from the same kind of crop as the rest of the track.
        mesh, crop = fm.run_crop(image, fm.crop_from_mesh(subject.mesh))
        if mesh.presence < self.min_presence:
            return self._frame(None, None, t, True, len(faces))
        box = _mesh_box(mesh)
        self._mesh, self._box = mesh, box
        self._track_id = self._next_id
        self._next_id += 1
        return self._frame(mesh, crop, t, True, len(faces), box)

    def update(self, image: npt.NDArray[np.uint8], timestamp_ms: float | None = None) -> TrackedFrame:
        """Track into one more frame (HxWx3 RGB uint8)."""
        if self._mesh is not None:
            followed = self._follow(image, self.engine.facemesh.crop_from_mesh(self._mesh), 1, timestamp_ms)
            if followed is not None:
                return followed
        return self._start(image, timestamp_ms)

    def update_encoded(self, data: bytes, timestamp_ms: float | None = None) -> TrackedFrame:
        """Track into one more frame given as image bytes (decoded with the engine's caps and errors; see the
        module docstring for the reduced decode)."""
        if self._mesh is None:
            return self._start(self.engine.decode(data), timestamp_ms)
        m = self.engine.facemesh.crop_from_mesh(self._mesh)
        frame, scale = self.engine.decode_reduced(data, reduction_for(m) if self.reduced_decode else 1)
        followed = self._follow(frame, m, scale, timestamp_ms)
        if followed is not None:
            return followed
        # Lost: the detector needs the whole frame at full size (the same pixels as engine.decode).
        image = np.asarray(frame, dtype=np.uint8) if scale == 1 else self.engine.decode(data)
        return self._start(image, timestamp_ms)


def track_images(
    engine: FaceEngine, images: Iterable[npt.NDArray[np.uint8]], timestamps_ms: Iterable[float] | None = None
) -> Iterator[TrackedFrame]:
    """Track through decoded frames."""
    tracker = engine.tracker()
    times = iter(timestamps_ms) if timestamps_ms is not None else None
    for image in images:
        yield tracker.update(image, None if times is None else float(next(times)))


def track_frames(
    engine: FaceEngine,
    frames: Iterable[bytes | npt.NDArray[np.uint8]],
    timestamps_ms: Iterable[float] | None = None,
) -> Iterator[TrackedFrame]:
    """Track through frames given as image bytes (update_encoded) or decoded RGB arrays (update)."""
    tracker = engine.tracker()
    times = iter(timestamps_ms) if timestamps_ms is not None else None
    for frame in frames:
        t = None if times is None else float(next(times))
        yield tracker.update(frame, t) if isinstance(frame, np.ndarray) else tracker.update_encoded(frame, t)

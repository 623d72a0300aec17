"""The pipeline: decode -> detect -> landmarks -> quality -> align -> embed, configured by models/manifest.json."""

from __future__ import annotations

import copy
import itertools
import json
import math
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from faceengine import align
from faceengine import proctor as proctoring
from faceengine.decode import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, decode_image, decode_reduced
from faceengine.detect import BlazeFaceDetector, Detection
from faceengine.embed import Embedder, l2_normalise
from faceengine.errors import (
    FrameBatchError,
    LowQualityError,
    ModelMismatchError,
    MultipleFacesError,
    NoFaceError,
    ProctorStateError,
    TimestampOrderError,
)
from faceengine.landmarks import FaceMesh, Mesh
from faceengine.liveness import Decision, Evidence, judge, validate_actions
from faceengine.pad import PassivePad
from faceengine.pose import pose
from faceengine.quality import Quality, check, measure
from faceengine.template import Template
from faceengine.track import TrackedFrame, Tracker, track_frames, track_images

if TYPE_CHECKING:
    from PIL import Image

MODELS_DIR = Path(__file__).resolve().parent / "models"
FARS = (1e-2, 1e-3, 1e-4)


@dataclass(frozen=True)
class FaceAnalysis:
    """One face: box (x, y, w, h) and 5 landmarks in image px, detector score, quality, and the full mesh."""

    box: tuple[float, float, float, float]
    landmarks: list[tuple[float, float]]
    score: float
    quality: Quality
    mesh: Mesh
    usable: bool


@dataclass(frozen=True)
class LivenessResult:
    """A liveness judgement (`decision`: live | spoof | retry, `reasons`, `details`, `actions`, `best_frame`) and
    the template of the best frontal frame (None when there is none): verify identity on `template` in the same
    pass, and only when `decision.live`."""

    decision: Decision
    template: Template | None
    frames: list[TrackedFrame]


@dataclass(frozen=True)
class _EmbedStage:
    embedder: Embedder
    size: int
    zoom: float
    mirror: bool
    weight: float


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> None:
    """Deep-merge extra into base (dicts merge, anything else replaces)."""
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            _merge(base[k], v)
        else:
            base[k] = v


def _inside_fraction(box: tuple[float, float, float, float], width: int, height: int) -> float:
    """Share of a box's area that lies inside the image."""
    x, y, w, h = box
    ix = max(0.0, min(x + w, width) - max(x, 0.0))
    iy = max(0.0, min(y + h, height) - max(y, 0.0))
    return ix * iy / max(w * h, 1e-9)


def _centre_offset(box: tuple[float, float, float, float], width: int, height: int) -> float:
    """Distance of a box's centre from the frame's centre, as a fraction of the frame's longer side."""
    x, y, w, h = box
    return float(np.hypot(x + w / 2 - width / 2, y + h / 2 - height / 2)) / max(width, height)


def _mesh_box(face: FaceAnalysis) -> tuple[float, float, float, float]:
    p = face.mesh.points[:, :2]
    return float(p[:, 0].min()), float(p[:, 1].min()), float(p[:, 0].max()), float(p[:, 1].max())


def _overlap_of_smaller(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    """Intersection of two (x0, y0, x1, y1) boxes over the smaller one's area."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return ix * iy / max(smaller, 1e-9)


def _iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / max(a[2] * a[3] + b[2] * b[3] - inter, 1e-9)


def _distinct(faces: list[FaceAnalysis], max_overlap: float) -> list[FaceAnalysis]:
    """Drop a second mesh of a face already found: BlazeFace can return a shifted, smaller box on a close-up
    that its box suppression keeps, and FaceMesh then fits the same face again. Meshes whose boxes mostly
    cover each other are one face (two real faces overlap far less, even cheek to cheek); the detection
    with the higher score is kept."""
    kept: list[FaceAnalysis] = []
    for f in sorted(faces, key=lambda f: -f.score):
        if all(_overlap_of_smaller(_mesh_box(f), _mesh_box(k)) <= max_overlap for k in kept):
            kept.append(f)
    return kept


def _calibrated(thresholds: dict[str, float], far: float, what: str) -> float:
    key = _far_key(far)
    if key not in thresholds:
        raise ValueError(f"the manifest has no calibrated {what} for FAR {key}")
    return thresholds[key]


def _far_key(far: float) -> str:
    for f in FARS:
        if abs(far - f) <= f * 1e-6:
            return f"{f:.0e}"
    raise ValueError(f"no calibrated threshold for FAR {far}; use one of {', '.join(f'{f:g}' for f in FARS)}")


class FaceEngine:
    """Loads the models once (cached per directory and thread count) and runs the pipeline on image bytes."""

    _cache: ClassVar[dict[tuple[str, int], FaceEngine]] = {}
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, models_dir: Path, threads: int = 1, overrides: dict[str, Any] | None = None) -> None:
        self.models_dir = Path(models_dir)
        self.manifest: dict[str, Any] = json.loads((self.models_dir / "manifest.json").read_text())
        if overrides:  # for evaluating variants of the pipeline without editing the manifest
            overrides = dict(overrides)
            _merge(self.manifest.setdefault("proctoring", {}), overrides.pop("proctoring", {}))
            _merge(self.manifest["pipeline"], overrides)
        pipe = self.manifest["pipeline"]
        self._pipeline = pipe
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = max(1, int(threads))
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        sessions: dict[str, ort.InferenceSession] = {}

        def session(name: str) -> ort.InferenceSession:
            if name not in sessions:
                path = self.models_dir / self.manifest["models"][name]["file"]
                sessions[name] = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
            return sessions[name]

        models = self.manifest["models"]
        det = pipe["detector"]
        self.detector = BlazeFaceDetector(session(det["model"]), models[det["model"]], det)
        lm = pipe["landmarks"]
        self.facemesh = FaceMesh(session(lm["model"]), models[lm["model"]], lm)
        al = pipe["alignment"]
        self._points = np.asarray(al["points"], dtype=np.int64)
        # Where each alignment point sits on the reference chip (unit square); template_all has all 468 points.
        if "template_all" in al:
            self._unit_template = np.asarray(al["template_all"], dtype=np.float64)[self._points]
        else:
            self._unit_template = np.asarray(al["template"], dtype=np.float64)
        self._stages = [
            _EmbedStage(
                embedder=Embedder(e["model"], session(e["model"]), models[e["model"]]),
                size=int(e["size"]),
                zoom=float(e.get("zoom", 1.0)),
                mirror=bool(e.get("mirror", True)),
                weight=float(e.get("weight", 1.0)),
            )
            for e in pipe["embedders"]
        ]
        self._tracking = pipe.get(
            "tracking", {"min_presence": 0.5, "max_jump_face_sizes": 0.5, "max_scale_change": 1.5}
        )
        pad = pipe.get("pad")
        self._pad_settings: dict[str, Any] = pad or {}
        self.pad: PassivePad | None = PassivePad({n: session(n) for n in pad["models"]}, models, pad) if pad else None
        self._liveness: dict[str, Any] = self.manifest.get("liveness", {})
        self._proctoring: dict[str, Any] = self.manifest.get("proctoring", {})
        self._quality = pipe["quality"]
        self._faces = pipe["faces"]
        self._limits = pipe.get("limits", {})
        calibration = self.manifest.get("calibration", {})
        self._thresholds: dict[str, float] = {k: float(v) for k, v in calibration.get("thresholds", {}).items()}
        # The 1:N search key: the parts of the template made by the embedders named in `pipeline.search`
        # (all of it when absent), re-normalised, with thresholds of its own.
        names = pipe.get("search", {}).get("embedders") or [e["model"] for e in pipe["embedders"]]
        offsets = np.cumsum([0] + [s.embedder.dimension for s in self._stages])
        self._search_slices = [
            slice(int(offsets[k]), int(offsets[k + 1])) for k, s in enumerate(self._stages) if s.embedder.name in names
        ]
        self._search_is_template = len(self._search_slices) == len(self._stages)
        self._search_thresholds: dict[str, float] = (
            self._thresholds
            if self._search_is_template
            else {k: float(v) for k, v in calibration.get("search_thresholds", {}).items()}
        )

    @classmethod
    def load(cls, models_dir: str | Path | None = None, threads: int = 1) -> FaceEngine:
        """The engine for a models directory, built once per process (a warm Lambda reuses it)."""
        path = Path(models_dir) if models_dir is not None else MODELS_DIR
        key = (str(path.resolve()), int(threads))
        with cls._lock:
            if key not in cls._cache:
                cls._cache[key] = cls(path, threads)
            return cls._cache[key]

    @property
    def model_id(self) -> str:
        """Identifies the template-producing pipeline; templates of other ids are never compared."""
        return str(self._pipeline["model_id"])

    @property
    def model_version(self) -> str:
        """Version of that pipeline (changes whenever embeddings would change)."""
        return str(self._pipeline["model_version"])

    @property
    def dimension(self) -> int:
        """Length of a template vector."""
        return sum(s.embedder.dimension for s in self._stages)

    @property
    def search_dimension(self) -> int:
        """Length of the 1:N search key (see search_vector)."""
        return sum(sl.stop - sl.start for sl in self._search_slices)

    # -- stages --------------------------------------------------------------------------------------

    def decode(self, image_bytes: bytes) -> npt.NDArray[np.uint8]:
        """Safe decode with the manifest's caps."""
        return decode_image(
            image_bytes,
            max_bytes=int(self._limits.get("max_bytes", DEFAULT_MAX_BYTES)),
            max_pixels=int(self._limits.get("max_pixels", DEFAULT_MAX_PIXELS)),
        )

    def decode_reduced(self, image_bytes: bytes, reduce: int = 1) -> tuple[Image.Image, int]:
        """decode() as a Pillow image, a JPEG possibly decoded at 1/reduce of its size: (image, scale applied); see
        faceengine.decode.decode_reduced. For the tracker's FaceMesh crops."""
        return decode_reduced(
            image_bytes,
            reduce,
            max_bytes=int(self._limits.get("max_bytes", DEFAULT_MAX_BYTES)),
            max_pixels=int(self._limits.get("max_pixels", DEFAULT_MAX_PIXELS)),
        )

    def chip_transform(
        self, mesh: Mesh, size: int, zoom: float = 1.0, five_point_template: npt.NDArray[np.float64] | None = None
    ) -> npt.NDArray[np.float64]:
        """Similarity transform putting the mesh's alignment points onto the chip template.

        By default the pipeline's template (`pipeline.alignment`: mesh points where they sit on dlib's chips); an
        embedder trained on 5-point aligned chips (MobileFaceNet: insightface's ArcFace template) brings its own
        template (unit square), fitted to the eye centres, nose tip and mouth corners (Mesh.five_points).
        """
        if five_point_template is not None:
            dst = ((five_point_template - 0.5) * zoom + 0.5) * size
            return align.similarity_transform(mesh.five_points(), dst)
        dst = ((self._unit_template - 0.5) * zoom + 0.5) * size
        return align.similarity_transform(mesh.points[self._points, :2], dst)

    def _stage_transform(self, mesh: Mesh, stage: _EmbedStage) -> npt.NDArray[np.float64]:
        return self.chip_transform(mesh, stage.size, stage.zoom, stage.embedder.five_point_template)

    def _detect(self, image: npt.NDArray[np.uint8]) -> list[Detection]:
        """BlazeFace; if it finds nothing, once more on the image framed by a grey border (a face that fills or
        overflows the frame, as in a close selfie, is missed without context around it)."""
        detections = self.detector.detect(image)
        pad_frac = float(self._pipeline["detector"].get("retry_border", 0.0))
        if detections or pad_frac <= 0:
            return detections
        pad = max(1, round(pad_frac * max(image.shape[:2])))
        framed = np.pad(image, ((pad, pad), (pad, pad), (0, 0)), mode="constant", constant_values=127)
        return [
            Detection(
                box=(d.box[0] - pad, d.box[1] - pad, d.box[2], d.box[3]),
                keypoints=d.keypoints - pad,
                score=d.score,
            )
            for d in self.detector.detect(framed)
        ]

    def _analyse_image(self, image: npt.NDArray[np.uint8]) -> list[FaceAnalysis]:
        """Every distinct face, largest first; `usable` marks the subject and any face that competes with it."""
        detections = self._detect(image)
        faces = [self._analyse_face(image, d) for d in detections]
        faces = [f for f in faces if f.mesh.presence >= float(self._faces["min_presence"])]
        faces = _distinct(faces, float(self._faces.get("max_mesh_overlap", 1.0)))
        if not faces:
            return []
        faces.sort(key=lambda f: -f.quality.measures["eye_distance_px"])
        height, width = image.shape[:2]
        subject = self._subject(faces, width, height)
        min_eye = float(self._faces["min_eye_distance_px"])
        return [
            replace(
                f,
                usable=f.quality.measures["eye_distance_px"] >= min_eye
                and (f is subject or self._competes(f, subject, width, height)),
            )
            for f in faces
        ]

    def _subject(self, faces: list[FaceAnalysis], width: int, height: int) -> FaceAnalysis:
        """The face being enrolled: of the faces near the largest in size, the one nearest the frame's centre
        (a capture screen centres the person in its guide; a tiny face in the middle of the background is not
        the subject)."""
        rel = float(self._faces["min_relative_size"])
        largest = faces[0].quality.measures["eye_distance_px"]
        big = [f for f in faces if f.quality.measures["eye_distance_px"] >= rel * largest]
        return min(big, key=lambda f: _centre_offset(f.box, width, height))

    def _competes(self, face: FaceAnalysis, subject: FaceAnalysis, width: int, height: int) -> bool:
        """Whether another face makes the photo ambiguous: it does when it is comparable to the subject in size,
        not cut by the frame, not far more out of focus, and not a bystander. A bystander is a face outside the
        middle of the frame (`bystander_zone`) while the subject sits in the centre (`subject_zone`); two
        people side by side, or a subject off-centre next to another face, stay ambiguous."""
        f, s = face.quality.measures, subject.quality.measures
        comparable = (
            f["eye_distance_px"] >= float(self._faces["min_relative_size"]) * s["eye_distance_px"]
            and _inside_fraction(face.box, width, height) >= float(self._faces["min_inside_fraction"])
            and f["sharpness"] >= float(self._faces["min_relative_sharpness"]) * s["sharpness"]
        )
        if not comparable:
            return False
        subject_zone = self._faces.get("subject_zone")
        bystander_zone = self._faces.get("bystander_zone")
        if subject_zone is None or bystander_zone is None:
            return True
        bystander = _centre_offset(subject.box, width, height) <= float(subject_zone) and _centre_offset(
            face.box, width, height
        ) >= float(bystander_zone)
        return not bystander

    def _analyse_face(self, image: npt.NDArray[np.uint8], det: Detection) -> FaceAnalysis:
        mesh = self.facemesh.predict(image, det)
        # Sharpness and brightness are measured on the pipeline's own chip layout (dlib's 150 px chip, as in 1.x),
        # whatever the embedders, so that the quality limits keep their meaning.
        size = int(self._quality.get("chip_size", 150))
        chip = align.warp(image, self.chip_transform(mesh, size), size)
        quality = check(measure(mesh, chip), self._quality)
        return FaceAnalysis(
            box=det.box,
            landmarks=[(float(x), float(y)) for x, y in mesh.five_points()],
            score=det.score,
            quality=quality,
            mesh=mesh,
            usable=True,
        )

    def embed_mesh(self, image: npt.NDArray[np.uint8], mesh: Mesh) -> npt.NDArray[np.float32]:
        """Aligned chips -> fused, L2-normalised template vector."""
        parts = []
        for s in self._stages:
            chip = align.warp(image, self._stage_transform(mesh, s), s.size)
            parts.append(s.embedder.embed(chip, s.mirror) * np.float32(np.sqrt(s.weight)))
        return l2_normalise(np.concatenate(parts))

    # -- public API ------------------------------------------------------------------------------------

    def analyse(self, image_bytes: bytes) -> list[FaceAnalysis]:
        """Every face found (largest first), with landmarks and quality. `usable` marks the subject (the most
        central of the large faces) and every face that competes with it; bystanders and faces too small are not
        usable. More than one usable face means the photo is ambiguous (enrol raises MultipleFacesError)."""
        return self._analyse_image(self.decode(image_bytes))

    def enrol_image(self, image: npt.NDArray[np.uint8], check_quality: bool = True) -> Template:
        """enrol() for an already decoded RGB array."""
        faces = self._analyse_image(image)
        usable = [f for f in faces if f.usable]
        if not usable:
            if faces:
                raise LowQualityError(["face_too_small"])
            raise NoFaceError()
        if len(usable) > 1:
            raise MultipleFacesError(len(usable))
        face = usable[0]
        if check_quality and not face.quality.ok:
            raise LowQualityError(face.quality.failed)
        vec = self.embed_mesh(image, face.mesh)
        return Template(vector=vec, model_id=self.model_id, model_version=self.model_version)

    def enrol(self, image_bytes: bytes) -> Template:
        """Template of the one usable face; raises InvalidImage/ImageTooLarge/NoFace/MultipleFaces/LowQuality."""
        return self.enrol_image(self.decode(image_bytes))

    def similarity(self, a: Template, b: Template) -> float:
        """Cosine similarity (higher = more alike); ModelMismatchError if the templates' models differ."""
        return a.similarity(b)

    def search_vector(self, template: Template) -> npt.NDArray[np.float32]:
        """The template's 1:N search key: the parts of the embedders in `pipeline.search`, L2-normalised.

        A gallery scans these (a short key keeps 1:N memory and scan time down); compare keys with a dot product
        and decide with search_threshold(). ModelMismatchError for a template of another model.
        """
        if (template.model_id, template.model_version) != (self.model_id, self.model_version):
            raise ModelMismatchError(
                f"template of {template.model_id}@{template.model_version}, engine {self.model_id}@{self.model_version}"
            )
        if self._search_is_template:
            return template.vector
        return l2_normalise(np.concatenate([template.vector[sl] for sl in self._search_slices]))

    def search_threshold(self, far: float) -> float:
        """Threshold on search keys (search_vector dot product) calibrated for a false-accept rate."""
        return _calibrated(self._search_thresholds, far, "search threshold")

    def threshold(self, far: float) -> float:
        """Similarity threshold calibrated for a false-accept rate of 1e-2, 1e-3 or 1e-4."""
        return _calibrated(self._thresholds, far, "threshold")

    def calibration(self) -> dict[str, Any]:
        """The calibration as data, for integrators (e.g. `GET /v1/models/calibration`).

        Keys: `model_id`, `model_version`, `thresholds` and `search_thresholds` (FAR "1e-02"/"1e-03"/"1e-04" ->
        cosine threshold), `levels` (security level -> FAR key), `method`, and `populations`: for each population
        measured (e.g. "Western", "East Asian"), its images, identities, pair counts and, per security level, the
        false-match rate it really gets at the shipped threshold (`fmr`, `false_matches`, `impostor_pairs`,
        `fmr_measurable` = at least `min_expected_impostors` impostor scores expected at the promised rate) and its
        true-match rate (`tar`, `genuine_pairs`). A deep copy: changing it changes nothing in the engine.
        """
        data = copy.deepcopy(self.manifest.get("calibration", {}))
        data["model_id"], data["model_version"] = self.model_id, self.model_version
        return data

    # -- tracking and liveness -------------------------------------------------------------------------

    def tracker(self) -> Tracker:
        """A new incremental tracker (see faceengine.track): `tracker.update(rgb_frame, timestamp_ms)`."""
        return Tracker(self, self._tracking)

    def track(
        self, frames: Iterable[bytes | npt.NDArray[np.uint8]], timestamps_ms: Iterable[float] | None = None
    ) -> Iterator[TrackedFrame]:
        """Track one face through frames (image bytes, decoded with the engine's caps, or RGB arrays). Bytes take the
        tracker's encoded-frame road (a JPEG may be decoded reduced when the face is large: see faceengine.track)."""
        return track_frames(self, frames, timestamps_ms)

    def pad_box(self, frame: TrackedFrame) -> tuple[float, float, float, float]:
        """The detector-like face box the PAD networks expect, from a tracked frame's mesh box."""
        if frame.box is None:
            raise ValueError("the frame has no face")
        x, y, w, h = frame.box
        k = self._pad_settings.get("box_from_mesh", {})
        nw, nh = w * float(k.get("width", 1.0)), h * float(k.get("height", 1.0))
        cx, cy = x + w / 2.0, y + h / 2.0 + float(k.get("shift_y", 0.0)) * h
        return cx - nw / 2.0, cy - nh / 2.0, nw, nh

    def pad_score(self, image: npt.NDArray[np.uint8], box: tuple[float, float, float, float]) -> float:
        """Passive real-face score (0..1, MiniFASNet) of one face box (x, y, w, h) in an RGB image."""
        if self.pad is None:
            raise ValueError("the manifest configures no PAD model (pipeline.pad)")
        return float(self.pad.scores(image, [box])[0])

    def liveness_params(self) -> dict[str, Any]:
        """The manifest's `liveness` section (thresholds and limits) as a deep copy."""
        return copy.deepcopy(self._liveness)

    def _thumbnail(self, image: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        size = int(self._liveness["duplicate_thumbnail"])
        from PIL import Image

        grey = Image.fromarray(image).convert("L").resize((size, size), Image.Resampling.BOX)
        return np.asarray(grey, dtype=np.float32)

    def _face_patch(self, image: npt.NDArray[np.uint8], mesh: Mesh) -> npt.NDArray[np.float64]:
        size = int(self._liveness["copy_patch"])
        chip = align.warp(image, self.chip_transform(mesh, size), size).astype(np.float64).mean(2)
        chip -= chip.mean()
        return np.asarray(chip / max(float(np.linalg.norm(chip)), 1e-9), dtype=np.float64)

    def liveness(
        self,
        frames: Sequence[bytes | npt.NDArray[np.uint8]],
        timestamps_ms: Sequence[float],
        actions: Sequence[str],
        enrolment_image: bytes | npt.NDArray[np.uint8] | None = None,
    ) -> LivenessResult:
        """Judge a burst: frames (JPEG/PNG/WebP bytes or RGB arrays, un-mirrored), one timestamp per frame (ms),
        the challenge actions in order (from faceengine.liveness.ACTIONS) and optionally the enrolment photo
        (frames copied from it are a spoof). Returns the decision and the best frontal frame's template.

        Raises ValueError for inconsistent input (lengths, unknown actions, more than `max_frames` frames) and the
        decoding errors of decode() for a bad frame.
        """
        p = self._liveness
        validate_actions(actions)
        if len(frames) != len(timestamps_ms):
            raise ValueError("one timestamp per frame is required")
        if len(frames) > int(p["max_frames"]):
            raise ValueError(f"at most {p['max_frames']} frames are accepted")
        images = [f if isinstance(f, np.ndarray) else self.decode(f) for f in frames]
        tracked = list(track_images(self, images, [float(t) for t in timestamps_ms]))
        with_face = [f for f in tracked if f.mesh is not None]
        # Passive PAD on up to pad_frames frames spread over the burst.
        pad_scores: list[float] = []
        if self.pad is not None and with_face:
            n = min(int(p["pad_frames"]), len(with_face))
            for k in np.linspace(0, len(with_face) - 1, n).round().astype(int):
                f = with_face[int(k)]
                pad_scores.append(self.pad_score(images[f.index], self.pad_box(f)))
        # Near-identical consecutive frames (whole-frame thumbnails).
        thumbs = [self._thumbnail(im) for im in images]
        dup = sum(
            1
            for a, b in itertools.pairwise(thumbs)
            if a.shape == b.shape and float(np.abs(a - b).mean()) < float(p["duplicate_mad"])
        )
        # Identity continuity: the first and last frontal frames.
        limit = float(p["frontal_max_abs_yaw"])
        frontal = [f for f in with_face if f.quality is not None and abs(f.quality.measures["yaw"]) <= limit]
        similarity = None
        if len(frontal) >= 2 and frontal[0].mesh is not None and frontal[-1].mesh is not None:
            a = self.embed_mesh(images[frontal[0].index], frontal[0].mesh)
            b = self.embed_mesh(images[frontal[-1].index], frontal[-1].mesh)
            similarity = float(np.dot(a, b))
        # Copies of the enrolment photo: aligned grey face patches, normalised correlation.
        copy_score = None
        if enrolment_image is not None:
            enrol = enrolment_image if isinstance(enrolment_image, np.ndarray) else self.decode(enrolment_image)
            faces = [f for f in self._analyse_image(enrol) if f.usable]
            if faces:
                ref = self._face_patch(enrol, faces[0].mesh)
                copy_score = max(
                    (float((self._face_patch(images[f.index], f.mesh) * ref).sum()) for f in with_face if f.mesh),
                    default=0.0,
                )
        decision = judge(
            Evidence(
                frames=tracked,
                actions=list(actions),
                pad_scores=pad_scores,
                identity_similarity=similarity,
                duplicate_pairs=dup,
                enrolment_copy=copy_score,
            ),
            p,
        )
        template = None
        if decision.best_frame is not None:
            f = tracked[decision.best_frame]
            if f.mesh is not None:
                vec = self.embed_mesh(images[f.index], f.mesh)
                template = Template(vector=vec, model_id=self.model_id, model_version=self.model_version)
        return LivenessResult(decision=decision, template=template, frames=tracked)

    # -- proctoring ------------------------------------------------------------------------------------------

    def proctoring_params(self) -> dict[str, Any]:
        """The manifest's `proctoring` section, with `identity_threshold` resolved from its security level."""
        p = copy.deepcopy(self._proctoring)
        if not p:
            raise ValueError("the manifest has no proctoring section")
        levels = self.manifest.get("calibration", {}).get("levels", {})
        p["identity_threshold"] = self._thresholds[levels[p["identity_level"]]]
        return p

    def proctor(
        self,
        state: dict[str, Any] | None,
        frames: Sequence[bytes | npt.NDArray[np.uint8]],
        timestamps_ms: Sequence[float],
        template: Template,
    ) -> proctoring.ProctorUpdate:
        """Advance a proctoring session by one batch of frames (see faceengine.proctor for the rules).

        Tracks the frames in order (timestamps in ms, strictly increasing and after the state's last one, else
        TimestampOrderError), counts comparable faces every `faces_every_frames` frames, checks identity against
        `template` every `identity_every_frames` frames, on every new track and after a failure, scores passive
        PAD every `pad_every_frames` frames, and advances the incident state machine. `state` (None for a new
        session) is not modified; the new one is in the result. Nothing of the frames is kept.
        """
        started = time.perf_counter()
        p = self.proctoring_params()
        if len(frames) != len(timestamps_ms) or not frames:
            raise FrameBatchError("the batch needs at least one frame and one timestamp (ms) per frame")
        if len(frames) > int(p["max_batch_frames"]):
            raise FrameBatchError(f"at most {p['max_batch_frames']} frames are accepted in one batch")
        st = proctoring.new_state() if state is None else copy.deepcopy(state)
        try:
            proctoring.check_state(st)
        except ValueError as exc:
            raise ProctorStateError() from exc
        times = [float(t) for t in timestamps_ms]
        if not all(math.isfinite(t) for t in times):
            raise FrameBatchError("timestamps must be finite numbers of milliseconds")
        previous = st["last_ts"]
        for t in times:
            if previous is not None and t <= previous:
                raise TimestampOrderError()
            previous = t
        if (template.model_id, template.model_version) != (self.model_id, self.model_version):
            raise ModelMismatchError(
                f"template of {template.model_id}@{template.model_version}, engine {self.model_id}@{self.model_version}"
            )
        tag = proctoring.model_tag(self.model_id, self.model_version)
        before = dict(st["totals"])
        tracker = self.tracker()  # a new tracker per batch: the state keeps no landmarks
        track: int | None = None
        changed: list[proctoring.Incident] = []
        advice: dict[str, int] = {}
        for frame, t in zip(frames, times, strict=True):
            obs, track = self._observe(tracker, frame, t, st, p, template, track)
            for g in proctoring.guidance(obs, int(obs.faces if obs.faces is not None else st["faces_seen"]), p):
                advice[g] = advice.get(g, 0) + 1
            changed = proctoring.merge_incidents(changed, proctoring.advance(st, obs, p, tag))
        share = float(p["guidance_min_share"])
        totals = st["totals"]
        stats: dict[str, int | float] = {
            k: int(totals[k] - before.get(k, 0))
            for k in ("frames", "frames_with_face", "frames_dark", "identity_checks", "identity_failures", "pad_checks")
        }
        stats["ms_processing"] = round((time.perf_counter() - started) * 1000.0, 3)
        return proctoring.ProctorUpdate(
            state=st,
            incidents=changed,
            guidance=[g for g in proctoring.GUIDANCE if advice.get(g, 0) >= share * len(frames)],
            stats=stats,
        )

    def end_proctoring(self, state: dict[str, Any]) -> list[proctoring.Incident]:
        """Close the session's open incidents (open=False); runs that never reached their threshold are dropped.
        `state` is not modified."""
        st = copy.deepcopy(state)
        try:
            proctoring.check_state(st)
        except ValueError as exc:
            raise ProctorStateError() from exc
        return proctoring.finish(st, proctoring.model_tag(self.model_id, self.model_version))

    @staticmethod
    def _identity_checkable(mesh: Mesh, p: dict[str, Any]) -> bool:
        """A face turned or small enough to fail an identity check on its own is not checked (that would blame the
        candidate for the pose): it waits for a frame facing the camera."""
        angles = pose(mesh)
        p5 = mesh.five_points()
        eye = float(np.linalg.norm(p5[1] - p5[0]))
        return (
            abs(angles.yaw) <= float(p["identity_max_yaw_deg"])
            and abs(angles.pitch) <= float(p["identity_max_pitch_deg"])
            and eye >= float(p["identity_min_eye_distance_px"])
        )

    def _observe(
        self,
        tracker: Tracker,
        frame: bytes | npt.NDArray[np.uint8],
        t: float,
        st: dict[str, Any],
        p: dict[str, Any],
        template: Template,
        track: int | None,
    ) -> tuple[proctoring.Observation, int | None]:
        """Track one frame and run the checks due on it; the observation and the current track id."""
        image: npt.NDArray[np.uint8] | None
        if isinstance(frame, np.ndarray):
            image = frame
            fr = tracker.update(frame, t)
            grey = frame[::4, ::4].astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
            size = (frame.shape[1], frame.shape[0])
        else:
            image = None
            fr = tracker.update_encoded(frame, t)
            small, scale = self.decode_reduced(frame, 8)
            grey = np.asarray(small.convert("L"), dtype=np.float32)
            size = (small.width * scale, small.height * scale)

        def full() -> npt.NDArray[np.uint8]:
            nonlocal image
            if image is None:
                image = self.decode(frame)  # type: ignore[arg-type]
            return image

        for key in ("since_faces", "since_identity", "since_pad"):
            st[key] += 1
        # Comparable faces (the bystander rule of _analyse_image): free when the tracker ran the detector.
        count: int | None = None
        others: list[FaceAnalysis] | None = None
        if fr.detected:
            count, st["since_faces"] = fr.faces, 0
        elif fr.box is not None and st["since_faces"] >= int(p["faces_every_frames"]):
            others = [f for f in self._analyse_image(full()) if f.usable]
            count, st["since_faces"] = len(others), 0
            box = fr.box
            if not any(_iou(box, f.box) >= float(p["track_iou"]) for f in others):
                # The mesh followed something the detector does not see as a face (frames seconds apart, a cut
                # to another scene): start again from the detector on this frame.
                tracker.reset()
                fr = tracker.update(full(), t)
        face = fr.mesh is not None and fr.pose is not None and fr.quality is not None
        new_track = fr.track_id is not None and fr.track_id != track
        if new_track:
            st["identity_pending"] = True
        yaw = fr.pose.yaw if fr.pose is not None else None
        pitch = fr.pose.pitch if fr.pose is not None else None
        identity = pad = None
        several = (count if count is not None else int(st["faces_seen"])) >= 2
        if face and fr.mesh is not None and yaw is not None and pitch is not None and fr.quality is not None:
            due = st["identity_pending"] or st["since_identity"] >= int(p["identity_every_frames"])
            if due:
                # The tracked face, and with several faces every one of them: the candidate among them passes.
                meshes = [fr.mesh]
                if several:
                    if others is None:
                        others = [f for f in self._analyse_image(full()) if f.usable]
                    meshes += [f.mesh for f in others]
                checkable = [m for m in meshes if self._identity_checkable(m, p)]
                if checkable:
                    ref = np.asarray(template.vector, dtype=np.float32)
                    identity = max(float(np.dot(self.embed_mesh(full(), m), ref)) for m in checkable)
                    st["since_identity"] = 0
                    st["identity_pending"] = identity < float(p["identity_threshold"])
            due = st["pad_pending"] or st["since_pad"] >= int(p["pad_every_frames"])
            # Not with several faces: the PAD crop (up to 4x the face box) would hold the other face, which the
            # networks never saw in training (and multiple_faces is flagged anyway).
            if (
                self.pad is not None
                and not several
                and due
                and abs(yaw) <= float(p["pad_max_yaw_deg"])
                and abs(pitch) <= float(p["pad_max_pitch_deg"])
            ):
                pad = self.pad_score(full(), self.pad_box(fr))
                st["since_pad"] = 0
                st["pad_pending"] = pad < float(p["pad_threshold"])
        obs = proctoring.Observation(
            index=int(st["frames"]),
            ts=t,
            face=face,
            faces=count,
            yaw=yaw,
            pitch=pitch,
            brightness=float(grey.mean()),
            contrast=float(grey.std()),
            identity=identity,
            pad=pad,
            face_too_dark=bool(fr.quality is not None and "too_dark" in fr.quality.failed),
            face_size=max(fr.box[2:]) / max(size) if fr.box is not None else None,
            new_track=new_track,
        )
        return obs, fr.track_id if fr.track_id is not None else track

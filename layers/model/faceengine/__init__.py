"""facegate face engine: safe decode, detection, landmarks, alignment, embedding and templates (no AWS)."""

from faceengine import errors
from faceengine.engine import FaceAnalysis, FaceEngine, LivenessResult
from faceengine.liveness import Decision
from faceengine.quality import Quality
from faceengine.template import Template
from faceengine.track import TrackedFrame, Tracker

__all__ = [
    "Decision",
    "FaceAnalysis",
    "FaceEngine",
    "LivenessResult",
    "Quality",
    "Template",
    "TrackedFrame",
    "Tracker",
    "errors",
]

"""facegate face engine: safe decode, detection, landmarks, alignment, embedding and templates (no AWS)."""

from faceengine import errors
from faceengine.engine import FaceAnalysis, FaceEngine
from faceengine.quality import Quality
from faceengine.template import Template

__all__ = ["FaceAnalysis", "FaceEngine", "Quality", "Template", "errors"]

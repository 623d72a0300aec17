"""Face template: an L2-normalised embedding plus the id and version of the model that made it."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from faceengine.errors import ModelMismatchError

_MAGIC = b"FGT1"
# magic, dtype code (1 = float16, 2 = float32), dimension, len(model_id), len(model_version)
_HEADER = struct.Struct("<4sBHBB")
_DTYPES: dict[int, type[np.floating]] = {1: np.float16, 2: np.float32}
# How far from 1 a stored vector's norm may be. float16 storage (gallery shards, to_bytes(half=True))
# rounds each value to 11 significant bits, a relative error of at most 2**-11 per value, so the norm of
# a decoded unit vector lies within about 5e-4 of 1; float32 rounding is far below that.
UNIT_TOLERANCE = 1e-3


@dataclass(frozen=True, eq=False)
class Template:
    """What is stored per enrolment; compare only templates with the same model id and version."""

    vector: npt.NDArray[np.float32] = field(repr=False)
    model_id: str
    model_version: str

    def __post_init__(self) -> None:
        # Validate only. Normalising here again (as 1.2.0 did) changed stored values by one ulp on CPUs
        # whose float32 norm of a unit vector rounds to 1.0000001, so a decoded template differed from the
        # encoded one. Embeddings are normalised once, where they are made (`embed.l2_normalise`).
        v = np.asarray(self.vector, dtype=np.float32)
        if v.ndim != 1 or v.size == 0 or not bool(np.all(np.isfinite(v))):
            raise ValueError("template vector must be a non-empty finite 1-D vector")
        norm = float(np.linalg.norm(v.astype(np.float64)))
        if abs(norm - 1.0) > UNIT_TOLERANCE:
            raise ValueError("template vector must be L2-normalised (unit length)")
        if v is self.vector:
            v = v.copy()
        v.setflags(write=False)
        object.__setattr__(self, "vector", v)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Template):
            return NotImplemented
        return (self.model_id, self.model_version) == (other.model_id, other.model_version) and bool(
            np.array_equal(self.vector, other.vector)
        )

    def __hash__(self) -> int:
        return hash((self.model_id, self.model_version, self.vector.tobytes()))

    @property
    def dimension(self) -> int:
        """Length of the embedding."""
        return int(self.vector.shape[0])

    def similarity(self, other: Template) -> float:
        """Cosine similarity; raises ModelMismatchError for templates of different models."""
        if (self.model_id, self.model_version) != (other.model_id, other.model_version):
            raise ModelMismatchError(
                f"cannot compare {self.model_id}@{self.model_version} with {other.model_id}@{other.model_version}"
            )
        if self.dimension != other.dimension:
            raise ModelMismatchError("templates have different dimensions")
        return float(np.dot(self.vector, other.vector))

    def to_bytes(self, half: bool = False) -> bytes:
        """Compact form: small header, model id and version (UTF-8), then float32 (or float16) values."""
        mid, mver = self.model_id.encode(), self.model_version.encode()
        if len(mid) > 255 or len(mver) > 255:
            raise ValueError("model id and version must be at most 255 bytes")
        code = 1 if half else 2
        body = self.vector.astype(_DTYPES[code]).astype("<" + np.dtype(_DTYPES[code]).str[1:]).tobytes()
        return _HEADER.pack(_MAGIC, code, self.dimension, len(mid), len(mver)) + mid + mver + body

    @classmethod
    def from_bytes(cls, data: bytes) -> Template:
        """Inverse of to_bytes; raises ValueError for anything that is not a template."""
        if len(data) < _HEADER.size:
            raise ValueError("not a face template")
        magic, code, dim, lid, lver = _HEADER.unpack_from(data)
        if magic != _MAGIC or code not in _DTYPES:
            raise ValueError("not a face template")
        off = _HEADER.size
        dtype = np.dtype(_DTYPES[code]).newbyteorder("<")
        if len(data) != off + lid + lver + dim * dtype.itemsize:
            raise ValueError("face template has the wrong length")
        model_id = data[off : off + lid].decode()
        model_version = data[off + lid : off + lid + lver].decode()
        vec = np.frombuffer(data, dtype=dtype, count=dim, offset=off + lid + lver).astype(np.float32)
        return cls(vector=vec, model_id=model_id, model_version=model_version)

"""Template value semantics, independent of the CPU: construction validates, decoding is exact.

Regression for the hardening issue, item 1: 1.2.0 re-normalised the vector in every constructor, so on
CPUs where the float32 norm of a stored unit vector rounds to 1.0000001 a decoded template differed from
the encoded one in hundreds of values by one ulp. No model is needed here.
"""

from __future__ import annotations

import numpy as np
import pytest

from faceengine import Template
from faceengine import template as template_module

UNIT_TOLERANCE = getattr(template_module, "UNIT_TOLERANCE", 1e-3)

pytestmark = pytest.mark.unit


def _unit(dim: int, seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=dim)
    return (v / np.linalg.norm(v)).astype(np.float32)


def _off_by_ulps(v: np.ndarray) -> np.ndarray:
    """The same vector scaled by 1 + 4e-7 (a few float32 ulps): a stored "unit" vector whose norm is not
    exactly 1, as some CPUs compute it."""
    return (v * np.float32(1 + 4e-7)).astype(np.float32)


@pytest.mark.parametrize("seed", range(5))
def test_decoding_returns_the_stored_values_bit_for_bit(seed: int) -> None:
    # Given a unit vector whose float32 norm is not exactly 1 (one ulp off in every value)
    v = _off_by_ulps(_unit(1152, seed))
    assert float(np.linalg.norm(v)) != 1.0
    tpl = Template(v, "m", "1")
    # When it is encoded and decoded
    again = Template.from_bytes(tpl.to_bytes())
    # Then every value is the one stored, bit for bit, and the two templates are equal
    assert again.vector.tobytes() == v.tobytes() == tpl.vector.tobytes()
    assert again == tpl


def test_construction_does_not_rescale_and_copies_the_input() -> None:
    v = _unit(128, 7)
    tpl = Template(v, "m", "1")
    v[0] = 5.0  # the caller's array changing later must not change the template
    assert tpl.vector[0] != 5.0 and not tpl.vector.flags.writeable


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros(8, np.float32),
        np.full(4, 0.6, np.float32),  # norm 1.2: not normalised
        np.array([np.nan, 1.0], np.float32),
        np.array([np.inf, 0.0], np.float32),
        np.empty(0, np.float32),
        np.eye(2, dtype=np.float32),  # 2-D
    ],
)
def test_construction_rejects_vectors_that_are_not_finite_unit_1d(bad: np.ndarray) -> None:
    with pytest.raises(ValueError):
        Template(bad, "m", "1")


def test_half_precision_round_trip_stays_within_the_documented_tolerance() -> None:
    # float16 keeps 11 significant bits: each value moves by at most 2**-11 relative, so the norm of the
    # decoded vector stays within UNIT_TOLERANCE of 1 and the cosine with the original above 0.9999
    for seed in range(20):
        tpl = Template(_unit(1152, seed), "m", "1")
        half = Template.from_bytes(tpl.to_bytes(half=True))
        assert abs(float(np.linalg.norm(half.vector)) - 1.0) < UNIT_TOLERANCE
        assert float(tpl.vector @ half.vector) > 0.9999

"""The 1:N threshold follows the gallery's size: size × per-comparison FAR stays within 1 %."""

import pytest

from facegate.matching.entities import far_for_gallery

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("size", "far"), [(0, 1e-2), (1, 1e-2), (2, 1e-3), (10, 1e-3), (11, 1e-4), (100, 1e-4), (1_000_000, 1e-4)]
)
def test_far_for_gallery(size: int, far: float) -> None:
    assert far_for_gallery(size) == far

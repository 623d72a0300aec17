"""Erasure retries back off exponentially up to 15 minutes."""

import pytest

from facegate.adapters.queue import backoff_seconds

pytestmark = pytest.mark.unit


def test_backoff_doubles_and_caps() -> None:
    assert [backoff_seconds(n) for n in range(1, 7)] == [30, 60, 120, 240, 480, 900]
    assert backoff_seconds(0) == 30 and backoff_seconds(50) == 900

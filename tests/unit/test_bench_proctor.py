"""The arithmetic of tools/bench_proctor.py: the function memory read from template.yaml and the cost of an exam-hour
at list prices (no model runs here)."""

import pytest
from bench_proctor import FRAMES_PER_HOUR, exam_hour_cost, memory_mb

pytestmark = pytest.mark.unit


def test_memory_is_read_from_the_template() -> None:
    # MatchingFunction's MemorySize in template.yaml, and another function's differs
    assert memory_mb() == 3008
    assert memory_mb("DeletionFunction") == 1024


def test_exam_hour_cost_at_list_prices() -> None:
    # 360 requests of 5 frames; 100.2 ms billed as 101 ms; 1 GB: 360 * 0.101 GB-s
    cost = exam_hour_cost(100.2, 1024)
    assert cost["requests_per_hour"] == FRAMES_PER_HOUR // 5 == 360
    assert cost["gb_s_per_hour"] == pytest.approx(36.36)
    assert cost["lambda_usd"] == pytest.approx(36.36 * 0.0000166667 + 360 * 0.2e-6)
    # Rekognition: DetectFaces + CompareFaces at $0.001 each, per frame
    assert cost["rekognition_usd"] == pytest.approx(3.60)

"""Deletion units: retry backoff and the CAC filing-threshold warnings."""

import pytest

from facegate.deletion.sqs import backoff_seconds

pytestmark = pytest.mark.unit


def test_backoff_doubles_and_caps() -> None:
    assert [backoff_seconds(n) for n in range(1, 7)] == [30, 60, 120, 240, 480, 900]
    assert backoff_seconds(0) == 30 and backoff_seconds(50) == 900


def test_filing_warnings_at_80_and_100_thousand() -> None:
    from facegate.deletion.entities import filing_warnings

    assert filing_warnings(79_999) == []
    assert "80,000" in filing_warnings(80_000)[0]
    assert "100,000" in filing_warnings(100_000)[0] and "30 working days" in filing_warnings(100_000)[0]

"""The one place that owns the Logger, Tracer and Metrics objects.

Log messages are short lowercase event names with structured keys. Never log images, embeddings or
raw subject ids: log `subject_ref` (a keyed hash) instead.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit, single_metric

logger = Logger(service="facegate")
tracer = Tracer(service="facegate")
metrics = Metrics(namespace="facegate", service="facegate")

__all__ = ["MetricUnit", "logger", "metrics", "tracer"]


def count(metric: str, **dimensions: str) -> None:
    """Count one business outcome (PascalCase past tense: ConsentGranted, FallbackUsed, ...)."""
    if not dimensions:
        metrics.add_metric(name=metric, unit=MetricUnit.Count, value=1)
        return
    with single_metric(name=metric, unit=MetricUnit.Count, value=1, namespace="facegate") as one:
        for name, value in dimensions.items():
            one.add_dimension(name=name, value=value)

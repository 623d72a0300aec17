"""Scatter-gather planning: how many search instances (partitions) a gallery needs so that each one
holds its part in memory, and a simple latency model to choose between one instance and many.

The lead wires partitions to parallel Lambda invocations; each returns its top-k and the caller
combines them with `facesearch.merge_topk`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from facesearch.gallery import storage_dtype

MIB = 1 << 20
LAMBDA_MAX_MEMORY = 10_240 * MIB
# Runtime + numpy + onnxruntime + models + scratch left aside in every instance (an assumption).
DEFAULT_RESERVED_BYTES = 600 * MIB
# Python str + list slot + id text per template (ids ~20 chars); see Shard.nbytes.
DEFAULT_ID_BYTES = 80


@dataclass(frozen=True)
class PartitionPlan:
    """How a gallery of `templates` rows is split so that each partition fits one instance."""

    templates: int
    dim: int
    dtype: str
    bytes_per_template: int
    gallery_bytes: int
    memory_budget_bytes: int
    usable_bytes: int
    partitions: int
    templates_per_partition: int

    @property
    def bytes_per_partition(self) -> int:
        return self.templates_per_partition * self.bytes_per_template

    def partition_of(self, shard_no: int, n_shards: int) -> int:
        """Partition that searches shard `shard_no` (contiguous ranges of shard numbers)."""
        return shard_no * self.partitions // n_shards


def plan_partitions(
    templates: int,
    dim: int,
    dtype: str,
    memory_budget_bytes: int,
    *,
    reserved_bytes: int = DEFAULT_RESERVED_BYTES,
    id_bytes: int = DEFAULT_ID_BYTES,
    headroom: float = 0.85,
) -> PartitionPlan:
    """Fewest partitions such that each one's templates fit `headroom` x (budget − reserved)."""
    if templates < 0 or dim <= 0:
        raise ValueError("templates must be ≥ 0 and dim > 0")
    itemsize = storage_dtype(dtype).itemsize
    usable = int((memory_budget_bytes - reserved_bytes) * headroom)
    per = dim * itemsize + id_bytes
    if usable < per:
        raise ValueError(f"a budget of {memory_budget_bytes} bytes leaves no room for templates")
    parts = max(1, math.ceil(templates * per / usable))
    return PartitionPlan(
        templates=templates,
        dim=dim,
        dtype=str(np.dtype(dtype)),
        bytes_per_template=per,
        gallery_bytes=templates * per,
        memory_budget_bytes=memory_budget_bytes,
        usable_bytes=usable,
        partitions=parts,
        templates_per_partition=math.ceil(templates / parts) if templates else 0,
    )


def estimate_latency_ms(
    plan: PartitionPlan,
    scan_ns_per_template: float,
    *,
    invoke_overhead_ms: float,
    merge_ms: float = 1.0,
    partitions: int | None = None,
) -> float:
    """Modelled search latency: one instance scans everything; with p > 1 partitions the caller pays
    one parallel invocation round trip plus the slowest partition's scan plus the merge.

    `scan_ns_per_template` should come from a measurement (tools/bench_identify.py); the overhead is
    an assumption the caller states.
    """
    p = plan.partitions if partitions is None else partitions
    scan_ms = math.ceil(plan.templates / p) * scan_ns_per_template / 1e6
    return scan_ms if p == 1 else invoke_overhead_ms + scan_ms + merge_ms

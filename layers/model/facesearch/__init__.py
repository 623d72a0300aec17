"""facesearch: the AWS-free 1:N search core (shard format, sharding, top-k search, shard cache,
scatter-gather planning). numpy only; S3/KMS access lives in the matching function.
"""

from facesearch.cache import CacheStats, ShardCache
from facesearch.gallery import (
    FORMAT_VERSION,
    Shard,
    ShardFormatError,
    build_shards,
    make_shard,
    pack,
    remove,
    shard_for,
    to_bytes,
    unpack,
    upsert,
)
from facesearch.planner import PartitionPlan, estimate_latency_ms, plan_partitions
from facesearch.search import Match, ModelMismatchError, merge_topk, top_k, top_k_batch

__all__ = [
    "FORMAT_VERSION",
    "CacheStats",
    "Match",
    "ModelMismatchError",
    "PartitionPlan",
    "Shard",
    "ShardCache",
    "ShardFormatError",
    "build_shards",
    "estimate_latency_ms",
    "make_shard",
    "merge_topk",
    "pack",
    "plan_partitions",
    "remove",
    "shard_for",
    "to_bytes",
    "top_k",
    "top_k_batch",
    "unpack",
    "upsert",
]

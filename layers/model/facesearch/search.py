"""1:N search over shards: one BLAS matrix-vector product per shard chunk, argpartition for top-k,
scatter-gather over a thread pool (numpy releases the GIL) and a merge of the partial top-k lists.

float32 shards are scored straight from memory (memory-bandwidth bound). float16 shards are widened
exactly, a cache-sized block at a time, into a per-thread float32 buffer and scored there, so the
full-size float32 copy never exists.
"""

from __future__ import annotations

import heapq
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from facesearch.gallery import FloatMatrix, Shard

# Rows per scatter-gather task; 131072 x 128 float32 = 64 MB, a few ms of work per task.
CHUNK_ROWS = 131_072
# float16 widening block: 1 MB of float32 (2048 rows at d=128) stays in L2 while BLAS reads it;
# measured fastest among 256..2048 rows on a 2 MB-L2 core.
_BLOCK_ELEMS = 262_144
_F16_RESCALE = np.float32(2.0**112)
# Below this many rows in total one thread is faster than handing work to the pool.
MIN_PARALLEL_ROWS = 65_536
# Batch mode keeps (queries x rows) scores per task at or below this many float32 elements.
_BATCH_SCORE_ELEMS = 4_194_304

_local = threading.local()
_pools: dict[int, ThreadPoolExecutor] = {}
_pools_lock = threading.Lock()


class Match(NamedTuple):
    """One search hit: the subject id and its cosine similarity to the query."""

    id: str
    score: float


class ModelMismatchError(ValueError):
    """Shards (or the query) come from different models or dimensions and must not be compared."""


def default_workers() -> int:
    """Threads to use: the CPUs this process may run on (Lambda: ~1 vCPU per 1769 MB)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


def _pool(workers: int) -> ThreadPoolExecutor:
    with _pools_lock:
        pool = _pools.get(workers)
        if pool is None:
            pool = _pools[workers] = ThreadPoolExecutor(workers, thread_name_prefix="facesearch")
        return pool


def widen_f16(src: npt.NDArray[np.float16], out: npt.NDArray[np.float32]) -> None:
    """Exact float16 → float32 of finite values via integer ops (numpy's own cast is ~4x slower)."""
    _f16_bits_scaled(src, out)
    np.multiply(out, _F16_RESCALE, out=out)


def _f16_bits_scaled(src: npt.NDArray[np.float16], out: npt.NDArray[np.float32]) -> None:
    """out = src x 2**-112, exactly. Sign-extending int16 → int32 then << 13 puts exponent and
    mantissa in place (the float16 bias 15 read as float32 bias 127, hence 2**-112) and sets bits
    28..31 for negatives; masking with 0x8FFFFFFF keeps only the sign. Search folds the 2**112
    into the query instead of spending a pass on it.
    """
    bits = out.view(np.int32)
    np.copyto(bits, src.view(np.int16), casting="unsafe")
    np.left_shift(bits, 13, out=bits)
    np.bitwise_and(bits, np.int32(-0x70000001), out=bits)  # 0x8FFFFFFF as int32


def _scratch(rows: int, dim: int) -> npt.NDArray[np.float32]:
    buf: npt.NDArray[np.float32] | None = getattr(_local, "buf", None)
    if buf is None or buf.shape[0] < rows or buf.shape[1] != dim:
        buf = np.empty((rows, dim), dtype=np.float32)
        _local.buf = buf
    return buf[:rows]


def score_rows(matrix: FloatMatrix, queries: npt.NDArray[np.float32], out: npt.NDArray[np.float32]) -> None:
    """out[:] = matrix @ queries.T for one query (d,) → (n,) or a batch (m, d) → (m, n)."""
    rows, dim = matrix.shape
    single = queries.ndim == 1
    if matrix.dtype == np.float32:
        if single:
            np.dot(matrix, queries, out=out)
        else:
            np.dot(queries, matrix.T, out=out)
        return
    scaled_q = queries * _F16_RESCALE
    block = max(16, _BLOCK_ELEMS // dim)
    buf = _scratch(min(block, rows), dim)
    for lo in range(0, rows, block):
        hi = min(rows, lo + block)
        wide = buf[: hi - lo]
        _f16_bits_scaled(matrix[lo:hi], wide)
        if single:
            np.dot(wide, scaled_q, out=out[lo:hi])
        else:
            np.matmul(scaled_q, wide.T, out=out[:, lo:hi])


class _Task(NamedTuple):
    shard: int
    lo: int
    hi: int


def _tasks(shards: Sequence[Shard], chunk_rows: int) -> list[_Task]:
    tasks = []
    for no, shard in enumerate(shards):
        for lo in range(0, len(shard), chunk_rows):
            tasks.append(_Task(no, lo, min(len(shard), lo + chunk_rows)))
    return tasks


def _check(query: npt.ArrayLike, shards: Sequence[Shard], model: tuple[str, str] | None) -> npt.NDArray[np.float32]:
    q = np.asarray(query, dtype=np.float32)
    if q.ndim not in (1, 2) or q.shape[-1] == 0:
        raise ValueError(f"query must be (d,) or (m, d), got {q.shape}")
    norms = np.linalg.norm(q, axis=-1, keepdims=True)
    if not np.all(np.isfinite(norms)) or np.any(norms == 0):
        raise ValueError("query vectors must be finite and non-zero")
    q = np.ascontiguousarray(q / norms, dtype=np.float32)
    for shard in shards:
        if shard.dim != q.shape[-1]:
            raise ModelMismatchError(f"query dim {q.shape[-1]} != shard dim {shard.dim}")
        key = (shard.model_id, shard.model_version)
        if model is None:
            model = key
        elif key != model:
            raise ModelMismatchError(f"shard model {key} != {model}")
    return q


def _top_of(scores: npt.NDArray[np.float32], k: int, threshold: float) -> npt.NDArray[np.intp]:
    """Indices of the k best scores ≥ threshold (unordered) in a 1-D score vector."""
    n = scores.shape[0]
    idx = np.argpartition(scores, n - k)[-k:] if k < n else np.arange(n)
    return idx[scores[idx] >= threshold]


def top_k(
    query: npt.ArrayLike,
    shards: Sequence[Shard],
    k: int = 10,
    threshold: float = -1.0,
    *,
    workers: int | None = None,
    executor: Executor | None = None,
    model: tuple[str, str] | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> list[Match]:
    """The k best matches with score ≥ threshold across all shards, best first (ties by id).

    The query is L2-normalised here; all shards must share one model (and `model` if given).
    """
    if k <= 0:
        return []
    q = _check(query, shards, model)
    if q.ndim != 1:
        raise ValueError("top_k takes one query; use top_k_batch for several")

    def run(task: _Task) -> list[Match]:
        shard = shards[task.shard]
        scores = np.empty(task.hi - task.lo, dtype=np.float32)
        score_rows(shard.matrix[task.lo : task.hi], q, scores)
        idx = _top_of(scores, k, threshold)
        return [Match(shard.ids[task.lo + int(i)], float(scores[i])) for i in idx]

    parts = _scatter(run, _tasks(shards, chunk_rows), workers, executor)
    return merge_topk(parts, k)


def top_k_batch(
    queries: npt.ArrayLike,
    shards: Sequence[Shard],
    k: int = 10,
    threshold: float = -1.0,
    *,
    workers: int | None = None,
    executor: Executor | None = None,
    model: tuple[str, str] | None = None,
) -> list[list[Match]]:
    """`top_k` for several queries at once: one matrix-matrix product per chunk (BLAS-3, cheaper per query)."""
    q = _check(queries, shards, model)
    if q.ndim == 1:
        q = q[None, :]
    m = q.shape[0]
    if k <= 0 or m == 0:
        return [[] for _ in range(m)]
    chunk = max(1024, _BATCH_SCORE_ELEMS // m)

    def run(task: _Task) -> list[list[Match]]:
        shard = shards[task.shard]
        scores = np.empty((m, task.hi - task.lo), dtype=np.float32)
        score_rows(shard.matrix[task.lo : task.hi], q, scores)
        kk = min(k, scores.shape[1])
        if kk < scores.shape[1]:
            idx = np.argpartition(scores, scores.shape[1] - kk, axis=1)[:, -kk:]
        else:
            idx = np.broadcast_to(np.arange(scores.shape[1]), (m, kk))
        top = np.take_along_axis(scores, idx, axis=1)
        return [
            [
                Match(shard.ids[task.lo + int(i)], float(s))
                for i, s in zip(idx[r], top[r], strict=True)
                if s >= threshold
            ]
            for r in range(m)
        ]

    parts = _scatter(run, _tasks(shards, chunk), workers, executor)
    return [merge_topk((p[r] for p in parts), k) for r in range(m)]


def merge_topk(partials: Iterable[Iterable[tuple[str, float]]], k: int, threshold: float | None = None) -> list[Match]:
    """Merge partial results (from shards, threads or other instances) into the global top-k.

    Best score first; equal scores ordered by id so the result is deterministic. An id seen in
    several partials keeps its best score.
    """
    best: dict[str, float] = {}
    for part in partials:
        for sid, score in part:
            if threshold is not None and score < threshold:
                continue
            if score > best.get(sid, -np.inf):
                best[sid] = float(score)
    top = heapq.nsmallest(k, best.items(), key=lambda kv: (-kv[1], kv[0])) if k > 0 else []
    return [Match(sid, score) for sid, score in top]


def _scatter[T](
    fn: Callable[[_Task], T], tasks: list[_Task], workers: int | None, executor: Executor | None
) -> list[T]:
    if executor is None:
        workers = default_workers() if workers is None else workers
        if workers <= 1 or len(tasks) <= 1 or sum(t.hi - t.lo for t in tasks) < MIN_PARALLEL_ROWS:
            return [fn(t) for t in tasks]
        executor = _pool(workers)
    return list(executor.map(fn, tasks))

"""facesearch: shard format, sharding, upsert/remove, top-k search, merge, cache and planner."""

from __future__ import annotations

import numpy as np
import pytest

import facesearch as fs
from facesearch.gallery import HEADER_SIZE
from facesearch.search import widen_f16

pytestmark = pytest.mark.unit

DIM = 128


def unit_rows(n: int, dim: int = DIM, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def ids_for(n: int) -> list[str]:
    return [f"subject-{i:06d}-ü" for i in range(n)]  # non-ASCII on purpose


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_pack_unpack_round_trip_preserves_ids_vectors_and_model(dtype):
    # Given a small gallery
    vecs, ids = unit_rows(300), ids_for(300)
    # When packed and unpacked
    data = fs.pack(ids, vecs, "arcface-r50", "2024.1", dtype=dtype)
    shard = fs.unpack(data)
    # Then everything comes back, in order, with a stable digest
    assert shard.ids == tuple(ids)
    assert (shard.model_id, shard.model_version, shard.dim) == ("arcface-r50", "2024.1", DIM)
    assert shard.matrix.dtype == np.dtype(dtype)
    tol = 1e-6 if dtype == "float32" else 1e-3  # re-normalised on pack
    np.testing.assert_allclose(shard.matrix.astype(np.float32), vecs, atol=tol, rtol=0)
    assert shard.digest == fs.make_shard(ids, vecs, "arcface-r50", "2024.1", dtype).digest
    assert fs.to_bytes(shard) == data
    assert shard.matrix.flags.aligned and not shard.matrix.flags.owndata  # zero-copy view


def test_pack_normalises_and_rejects_bad_input():
    shard = fs.unpack(fs.pack(["a"], [[3.0, 4.0]], "m", "1", dtype="float32"))
    np.testing.assert_allclose(shard.matrix[0], [0.6, 0.8], rtol=1e-6)
    with pytest.raises(ValueError, match="duplicate"):
        fs.pack(["a", "a"], unit_rows(2), "m", "1")
    with pytest.raises(ValueError, match="NUL"):
        fs.pack(["a\0b"], unit_rows(1), "m", "1")
    with pytest.raises(ValueError, match="non-zero"):
        fs.pack(["a"], np.zeros((1, DIM)), "m", "1")
    with pytest.raises(ValueError, match="2 ids but 3"):
        fs.pack(["a", "b"], unit_rows(3), "m", "1")


def test_empty_shard_round_trips():
    shard = fs.unpack(fs.to_bytes(fs.Shard.empty(DIM, "m", "1")))
    assert len(shard) == 0 and shard.dim == DIM
    assert fs.top_k(unit_rows(1)[0], [shard], k=5) == []


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda b: b[:10], "too short"),
        (lambda b: b"XXXX" + b[4:], "bad magic"),
        (lambda b: b[:4] + b"\x09\x00" + b[6:], "version 9"),
        (lambda b: b[:6] + b"\x07" + b[7:], "dtype code 7"),
        (lambda b: b[:-1], "length"),
        (lambda b: b + b"\0", "length"),
        (lambda b: b[:-2] + bytes([b[-2] ^ 0xFF]) + b[-1:], "digest mismatch"),
        (lambda b: b[: HEADER_SIZE + 1] + b"\xff" + b[HEADER_SIZE + 2 :], "digest mismatch"),
    ],
)
def test_malformed_bytes_raise_shard_format_error(mutate, message):
    data = fs.pack(ids_for(5), unit_rows(5), "m", "1")
    with pytest.raises(fs.ShardFormatError, match=message):
        fs.unpack(mutate(data))


def test_shard_for_is_stable_and_spreads():
    assert fs.shard_for("alice", 16) == fs.shard_for("alice", 16)
    assert fs.shard_for("alice", 16) == 13  # fixed forever: changing it would orphan stored shards
    counts = np.bincount([fs.shard_for(s, 8) for s in ids_for(8000)], minlength=8)
    assert counts.min() > 850 and counts.max() < 1150


def test_upsert_and_remove_return_new_shards_and_tolerate_absent_ids():
    vecs = unit_rows(4)
    shard = fs.make_shard(["a", "b", "c"], vecs[:3], "m", "1", "float32")
    replaced = fs.upsert(shard, "b", vecs[3] * 5)
    assert replaced.ids == ("a", "b", "c")
    np.testing.assert_allclose(replaced.matrix[1], vecs[3], atol=1e-6)
    np.testing.assert_allclose(shard.matrix[1], vecs[1])  # original untouched
    added = fs.upsert(replaced, "d", vecs[0])
    assert added.ids == ("a", "b", "c", "d") and added.matrix.shape == (4, DIM)
    removed = fs.remove(added, "a")
    assert removed.ids == ("b", "c", "d")
    np.testing.assert_array_equal(removed.matrix, added.matrix[1:])
    assert fs.remove(removed, "nobody") is removed
    assert removed.digest != added.digest
    # An unpacked (read-only, zero-copy) shard can be updated too
    ro = fs.unpack(fs.to_bytes(removed))
    assert "e" in fs.upsert(ro, "e", vecs[0])
    with pytest.raises(ValueError):
        fs.upsert(ro, "e", np.ones(DIM + 1))


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_top_k_matches_brute_force(dtype):
    # Given 5000 templates in 7 shards and queries near some of them
    n, k = 5000, 10
    vecs, ids = unit_rows(n, seed=1), ids_for(n)
    shards = [fs.unpack(fs.to_bytes(s)) for s in fs.build_shards(ids, vecs, 7, "m", "1", dtype)]
    stored = {sid: row for s in shards for sid, row in zip(s.ids, s.matrix.astype(np.float32), strict=True)}
    ref_matrix = np.stack([stored[i] for i in ids])
    queries = unit_rows(5, seed=2) + vecs[:5]
    for q in queries:
        qn = q / np.linalg.norm(q)
        ref = ref_matrix @ qn
        order = np.argsort(-ref, kind="stable")[:k]
        # When searched with small chunks and 2 threads
        got = fs.top_k(q, shards, k=k, workers=2, chunk_rows=300)
        # Then the same ids and scores as brute force
        assert [m.id for m in got] == [ids[i] for i in order]
        np.testing.assert_allclose([m.score for m in got], ref[order], atol=1e-5)
    batch = fs.top_k_batch(queries, shards, k=k, workers=2)
    assert [[m.id for m in r] for r in batch] == [[m.id for m in fs.top_k(q, shards, k=k)] for q in queries]


def test_batch_matches_single_queries_on_multi_block_float16_shard():
    vecs = unit_rows(6000, seed=4)
    shard = fs.make_shard(ids_for(6000), vecs, "m", "1", "float16")  # > one widening block
    queries = vecs[[5, 2500, 5999]]
    batch = fs.top_k_batch(queries, [shard], k=3, workers=1)
    singles = [fs.top_k(q, [shard], k=3, workers=1) for q in queries]
    assert [[m.id for m in r] for r in batch] == [[m.id for m in r] for r in singles]
    np.testing.assert_allclose(
        [[m.score for m in r] for r in batch], [[m.score for m in r] for r in singles], atol=1e-5
    )
    assert [r[0].id for r in batch] == [ids_for(6000)[i] for i in (5, 2500, 5999)]


def test_top_k_threshold_filters_and_k_bounds():
    vecs = unit_rows(50, seed=3)
    shards = fs.build_shards(ids_for(50), vecs, 3, "m", "1", "float32")
    got = fs.top_k(vecs[10], shards, k=5, threshold=0.99)
    assert got == [fs.Match(ids_for(50)[10], pytest.approx(1.0, abs=1e-5))]
    assert fs.top_k(vecs[10], shards, k=5, threshold=1.01) == []
    assert len(fs.top_k(vecs[10], shards, k=500)) == 50
    assert fs.top_k(vecs[10], shards, k=0) == []
    assert all(len(r) == 1 for r in fs.top_k_batch(vecs[:4], shards, k=3, threshold=0.99))


def test_top_k_refuses_mixed_models_and_dimensions():
    a = fs.make_shard(["a"], unit_rows(1), "m", "1")
    b = fs.make_shard(["b"], unit_rows(1), "m", "2")
    with pytest.raises(fs.ModelMismatchError):
        fs.top_k(unit_rows(1)[0], [a, b])
    with pytest.raises(fs.ModelMismatchError):
        fs.top_k(unit_rows(1, dim=64)[0], [a])
    with pytest.raises(fs.ModelMismatchError):
        fs.top_k(unit_rows(1)[0], [a], model=("other", "1"))


def test_merge_topk_orders_dedupes_and_thresholds():
    parts = [[("a", 0.5), ("b", 0.9)], [("c", 0.7), ("a", 0.95)], [], [("d", 0.7)]]
    assert fs.merge_topk(parts, 3) == [("a", 0.95), ("b", 0.9), ("c", 0.7)]
    assert fs.merge_topk(parts, 10, threshold=0.8) == [("a", 0.95), ("b", 0.9)]
    assert fs.merge_topk(parts, 0) == []


def test_widen_f16_is_exact_for_every_finite_half():
    halves = np.arange(65536, dtype=np.uint16).view(np.float16)
    halves = halves[np.isfinite(halves)]
    out = np.empty(halves.shape, np.float32)
    widen_f16(halves, out)
    np.testing.assert_array_equal(out.view(np.uint32), halves.astype(np.float32).view(np.uint32))


def test_cache_reloads_only_changed_shards():
    cache = fs.ShardCache(max_bytes=10 << 20)
    v1 = fs.pack(["a"], unit_rows(1), "m", "1")
    v2 = fs.pack(["a", "b"], unit_rows(2), "m", "1")
    loads: list[int] = []

    def loader(data: bytes):
        return lambda: loads.append(1) or data

    d1 = fs.unpack(v1).digest
    first = cache.get_or_load("t1/checkout", 0, d1, loader(v1))
    assert cache.get_or_load("t1/checkout", 0, d1, loader(v1)) is first
    assert len(loads) == 1 and cache.etag("t1/checkout", 0) == d1
    # When the store's digest changes, that shard (and only that one) is reloaded
    second = cache.get_or_load("t1/checkout", 0, fs.unpack(v2).digest, loader(v2))
    assert second.ids == ("a", "b") and len(loads) == 2
    assert cache.get("t1/checkout", 0, etag=d1) is None
    cache.invalidate("t1/checkout")
    assert len(cache) == 0 and cache.nbytes == 0
    with pytest.raises(fs.ShardFormatError):
        cache.get_or_load("t1/checkout", 1, "x", lambda: b"garbage")


def test_cache_evicts_least_recently_used_within_budget():
    shards = [fs.make_shard([f"s{i}"], unit_rows(1, seed=i), "m", "1") for i in range(4)]
    size = shards[0].nbytes
    cache = fs.ShardCache(max_bytes=3 * size)
    for i in range(3):
        assert cache.put("g", i, shards[i])
    assert cache.get("g", 0) is shards[0]  # 0 is now most recent; 1 is least
    cache.put("g", 3, shards[3])
    assert ("g", 1) not in cache and ("g", 0) in cache and cache.nbytes <= 3 * size
    assert cache.stats().evictions == 1
    big = fs.make_shard(ids_for(10), unit_rows(10), "m", "1")
    assert cache.put("g", 9, big) is False and ("g", 9) not in cache


def test_planner_partitions_and_latency_model():
    gb = 1 << 30
    plan = fs.plan_partitions(1_000_000, DIM, "float16", 3 * gb)
    assert plan.partitions == 1 and plan.bytes_per_template == DIM * 2 + 80
    big = fs.plan_partitions(50_000_000, DIM, "float32", 10 * gb)
    assert big.partitions * big.usable_bytes >= big.gallery_bytes
    assert (big.partitions - 1) * big.usable_bytes < big.gallery_bytes
    assert {big.partition_of(s, 64) for s in range(64)} == set(range(big.partitions))
    one = fs.estimate_latency_ms(big, 20.0, invoke_overhead_ms=50, partitions=1)
    many = fs.estimate_latency_ms(big, 20.0, invoke_overhead_ms=50)
    assert one == pytest.approx(1000.0) and many < one
    with pytest.raises(ValueError):
        fs.plan_partitions(10, DIM, "float32", 100)

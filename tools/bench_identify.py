"""Benchmark 1:N identification with facesearch on synthetic unit vectors.

Measures, per gallery size, storage dtype and thread count: p50/p95 latency of one query, the
batch cost per query, resident memory of the loaded gallery and the time to unpack its shards;
the float16 score error against float32; the raw scan kernels (incl. an int8 experiment); and a
modelled crossover between one in-memory instance and scatter-gather across instances.

    python tools/bench_identify.py --sizes 10000,100000,1000000 [--dim N]

--dim defaults to the length of the shipped engine's 1:N search key (what a gallery holds; see the manifest).

OpenBLAS is pinned to one thread (before numpy loads) so "threads" means facesearch's own
scatter-gather workers, as it should in the matching Lambda (set OPENBLAS_NUM_THREADS=1 there too).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import gc
import json
import platform
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "layers" / "model"))

import facesearch as fs
from facesearch.search import score_rows

MIB = 1 << 20
MANIFEST = Path("layers/model/faceengine/models/manifest.json")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def make_queries(vecs: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Half genuine (an enrolled template plus noise, cosine ≈ 0.78), half impostors (random)."""
    dim = vecs.shape[1]
    genuine = vecs[rng.integers(0, len(vecs), n // 2)] + 0.8 * unit(rng.standard_normal((n // 2, dim)))
    impostor = rng.standard_normal((n - n // 2, dim))
    q = unit(np.concatenate([genuine, impostor]))
    return q[rng.permutation(n)]


def percentile_ms(samples: list[float], p: float) -> float:
    return float(np.percentile(np.asarray(samples), p) * 1e3)


def time_queries(shards: list[fs.Shard], queries: np.ndarray, args: argparse.Namespace, workers: int) -> list[float]:
    for q in queries[: args.warmup]:
        fs.top_k(q, shards, args.k, args.threshold, workers=workers)
    out = []
    for q in queries[args.warmup :]:
        t0 = time.perf_counter()
        fs.top_k(q, shards, args.k, args.threshold, workers=workers)
        out.append(time.perf_counter() - t0)
    return out


def time_batch(shards: list[fs.Shard], queries: np.ndarray, args: argparse.Namespace, workers: int) -> float:
    """Milliseconds per query when `args.batch` queries are searched together (best of 3)."""
    qb = queries[: args.batch]
    fs.top_k_batch(qb, shards, args.k, args.threshold, workers=workers)
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        fs.top_k_batch(qb, shards, args.k, args.threshold, workers=workers)
        best = min(best, time.perf_counter() - t0)
    return best * 1e3 / len(qb)


def template_dimension() -> int:
    """Length of the shipped engine's 1:N search key (the manifest's `pipeline.search` embedders, else all of
    them), read from the model manifest (no model is loaded)."""
    manifest = json.loads((Path(__file__).resolve().parents[1] / MANIFEST).read_text())
    models, pipeline = manifest["models"], manifest["pipeline"]
    names = pipeline.get("search", {}).get("embedders") or [e["model"] for e in pipeline["embedders"]]
    return sum(
        int(models[e["model"]]["onnx_io"]["outputs"][models[e["model"]]["outputs"]["embedding"]][-1])
        for e in pipeline["embedders"]
        if e["model"] in names
    )


def kernels(dim: int, rows: int, rng: np.random.Generator) -> dict[str, float]:
    """Single-thread scan time (ms) of `rows` templates for each storage choice, scores only.

    int8 (per-row scale, cast in cache-sized blocks, no re-rank) is an experiment kept out of the
    library: it is here to show whether it would pay off.
    """
    x = unit(rng.standard_normal((rows, dim)))
    q = x[0]
    out = np.empty(rows, np.float32)
    f16 = x.astype(np.float16)
    scale = np.abs(x).max(axis=1, keepdims=True) / 127
    i8 = np.rint(x / scale).astype(np.int8)
    block = max(16, 262_144 // dim)  # same block as facesearch
    buf = np.empty((block, dim), np.float32)

    def numpy_cast() -> None:
        for lo in range(0, rows, block):
            w = buf[: min(block, rows - lo)]
            np.copyto(w, f16[lo : lo + block], casting="unsafe")
            np.dot(w, q, out=out[lo : lo + block])

    def int8_cast() -> None:
        for lo in range(0, rows, block):
            w = buf[: min(block, rows - lo)]
            np.copyto(w, i8[lo : lo + block], casting="unsafe")
            np.dot(w, q, out=out[lo : lo + block])
        np.multiply(out, scale[:, 0], out=out)

    cases = {
        "float32 sgemv": lambda: score_rows(x, q, out),
        "float16 exact widening (facesearch)": lambda: score_rows(f16, q, out),
        "float16 numpy astype": numpy_cast,
        "int8 per-row scale (no re-rank)": int8_cast,
    }
    res = {}
    for name, fn in cases.items():
        fn()
        ts = []
        for _ in range(7):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
        res[name] = float(np.median(ts) * 1e3)
    int8_cast()
    res["int8 max abs score error"] = float(np.abs(out - x @ q).max())
    return res


def bench_size(n: int, args: argparse.Namespace, rng: np.random.Generator) -> tuple[list[dict[str, Any]], dict]:
    ids = [f"tenant-subject-{i:09d}" for i in range(n)]
    vecs = unit(rng.standard_normal((n, args.dim), dtype=np.float32))
    queries = make_queries(vecs, args.warmup + args.queries, rng)
    rows: list[dict[str, Any]] = []
    loaded: dict[str, list[fs.Shard]] = {}
    for dtype in args.dtypes:
        blobs = [fs.to_bytes(s) for s in fs.build_shards(ids, vecs, args.shards, "synthetic", "1", dtype)]
        t0 = time.perf_counter()
        shards = [fs.unpack(b) for b in blobs]
        load_ms = (time.perf_counter() - t0) * 1e3
        t0 = time.perf_counter()
        [fs.unpack(b, verify=False) for b in blobs]
        load_nv_ms = (time.perf_counter() - t0) * 1e3
        del shards
        gc.collect()
        # Fresh copies of the bytes, as a Lambda holds the S3 bodies; tracemalloc counts every byte the
        # loaded gallery keeps (buffers, id strings, tuples). RSS deltas are blurred by malloc reuse.
        tracemalloc.start()
        shards = [fs.unpack(bytearray(b), verify=False) for b in blobs]
        resident = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        del blobs
        loaded[dtype] = shards
        for workers in args.threads:
            lat = time_queries(shards, queries, args, workers)
            rows.append(
                {
                    "templates": n,
                    "dtype": dtype,
                    "threads": workers,
                    "p50_ms": round(percentile_ms(lat, 50), 2),
                    "p95_ms": round(percentile_ms(lat, 95), 2),
                    "batch_ms_per_query": round(time_batch(shards, queries, args, workers), 2),
                    "resident_mib": round(resident / MIB, 1),
                    "load_ms": round(load_ms, 1),
                    "load_noverify_ms": round(load_nv_ms, 1),
                }
            )
            print(_row_md(rows[-1]), flush=True)
    quality: dict[str, Any] = {}
    if {"float32", "float16"} <= loaded.keys():
        err, agree = 0.0, 0
        sample = queries[: min(20, len(queries))]
        for q in sample:
            for a, b in zip(loaded["float32"], loaded["float16"], strict=True):
                sa, sb = np.empty(len(a), np.float32), np.empty(len(b), np.float32)
                score_rows(a.matrix, q, sa)
                score_rows(b.matrix, q, sb)
                err = max(err, float(np.abs(sa - sb).max(initial=0.0)))
            ta = [m.id for m in fs.top_k(q, loaded["float32"], args.k)]
            tb = [m.id for m in fs.top_k(q, loaded["float16"], args.k)]
            agree += ta == tb
        quality = {"templates": n, "f16_max_abs_score_error": err, "f16_topk_identical": f"{agree}/{len(sample)}"}
    return rows, quality


def crossover(args: argparse.Namespace, ns_per_template: dict[str, float]) -> list[dict[str, Any]]:
    """Modelled single-instance vs scatter-gather latency for large galleries (see assumptions)."""
    out = []
    for n in (1_000_000, 5_000_000, 10_000_000, 20_000_000, 50_000_000, 100_000_000):
        for dtype, ns in ns_per_template.items():
            row: dict[str, Any] = {"templates": n, "dtype": dtype, "ns_per_template": round(ns, 2)}
            single = fs.plan_partitions(n, args.dim, dtype, 10_240 * MIB)
            row["single_10gb_ms"] = (
                round(fs.estimate_latency_ms(single, ns, invoke_overhead_ms=0), 1) if single.partitions == 1 else None
            )
            for gb in args.lambda_gb:
                plan = fs.plan_partitions(n, args.dim, dtype, int(gb * 1024) * MIB)
                p = max(2, plan.partitions)
                row[f"sg_{gb:g}gb_partitions"] = p
                row[f"sg_{gb:g}gb_ms"] = round(
                    fs.estimate_latency_ms(plan, ns, invoke_overhead_ms=args.invoke_overhead_ms, partitions=p), 1
                )
            out.append(row)
    return out


_COLS = [
    ("templates", "templates"),
    ("dtype", "storage"),
    ("threads", "threads"),
    ("p50_ms", "p50 ms"),
    ("p95_ms", "p95 ms"),
    ("batch_ms_per_query", "batch/query ms"),
    ("resident_mib", "gallery MiB"),
    ("load_ms", "unpack ms"),
    ("load_noverify_ms", "unpack ms (no digest)"),
]


def _row_md(row: dict[str, Any]) -> str:
    return "| " + " | ".join(f"{row[k]:,}" if isinstance(row[k], int) else str(row[k]) for k, _ in _COLS) + " |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dim", type=int, default=template_dimension())
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--dtypes", default="float32,float16")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--shards", type=int, default=16, help="shards per gallery")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--threshold", type=float, default=0.5)
    ap.add_argument("--invoke-overhead-ms", type=float, default=50.0, help="ASSUMED fan-out round trip")
    ap.add_argument("--lambda-gb", default="3,10", help="memory per partition instance, GB")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    args.sizes = [int(s) for s in args.sizes.split(",")]
    args.dtypes = args.dtypes.split(",")
    args.threads = [int(t) for t in args.threads.split(",")]
    args.lambda_gb = [float(g) for g in args.lambda_gb.split(",")]
    rng = np.random.default_rng(args.seed)

    load_start = os.getloadavg()
    print(f"# facesearch benchmark: {cpu_model()}, {os.cpu_count()} CPUs, numpy {np.__version__}, dim {args.dim}")
    print(f"# loadavg at start {load_start[0]:.2f}; {args.queries} queries after {args.warmup} warm-up; k={args.k}")
    print("| " + " | ".join(h for _, h in _COLS) + " |")
    print("|" + "---|" * len(_COLS))
    results, quality = [], []
    for n in args.sizes:
        rows, q = bench_size(n, args, rng)
        results += rows
        if q:
            quality.append(q)
        gc.collect()
    for q in quality:
        print(
            f"# float16 vs float32 at {q['templates']:,}: max |score error| {q['f16_max_abs_score_error']:.2e}, "
            f"identical top-{args.k} in {q['f16_topk_identical']} queries"
        )

    kern = kernels(args.dim, 1_000_000 if max(args.sizes) >= 1_000_000 else max(args.sizes), rng)
    print("\n## scan kernels, 1 thread, scores only (ms)")
    print("| kernel | ms |\n|---|---|")
    for name, v in kern.items():
        print(f"| {name} | {v:.4g} |")

    largest = max(args.sizes)
    ns = {
        r["dtype"]: r["p95_ms"] * 1e6 / largest
        for r in results
        if r["templates"] == largest and r["threads"] == max(args.threads)
    }
    cross = crossover(args, ns)
    gbs = [f"{g:g}" for g in args.lambda_gb]
    print(
        f"\n## one instance vs scatter-gather (MODEL: measured p95 ns/template at {largest:,} x "
        f"{max(args.threads)} threads; ASSUMED {args.invoke_overhead_ms:g} ms fan-out overhead, warm instances, "
        "same memory bandwidth per instance as this machine)"
    )
    print("| templates | storage | one 10 GB instance ms | " + " | ".join(f"{g} GB: parts / ms" for g in gbs) + " |")
    print("|---|---|---|" + "---|" * len(gbs))
    for r in cross:
        single = "does not fit" if r["single_10gb_ms"] is None else f"{r['single_10gb_ms']:,}"
        cells = " | ".join(f"{r[f'sg_{g}gb_partitions']} / {r[f'sg_{g}gb_ms']:,}" for g in gbs)
        print(f"| {r['templates']:,} | {r['dtype']} | {single} | {cells} |")
    # n where scan(n) = overhead + scan(n/2) + merge (1 ms), i.e. where 2 partitions start to win
    breakeven = {d: int((args.invoke_overhead_ms + 1.0) * 1e6 / (v * 0.5)) for d, v in ns.items()}
    fits = {
        d: fs.plan_partitions(1, args.dim, d, 10_240 * MIB).usable_bytes // (args.dim * np.dtype(d).itemsize + 80)
        for d in ns
    }
    for d in ns:
        print(
            f"# {d}: scatter-gather (2 parts) beats one instance beyond ~{breakeven[d]:,} templates; "
            f"one 10 GB instance holds at most ~{fits[d]:,}"
        )
    load_end = os.getloadavg()
    print(f"# loadavg at end {load_end[0]:.2f}")
    summary = {
        "cpu": cpu_model(),
        "cpus": os.cpu_count(),
        "numpy": np.__version__,
        "dim": args.dim,
        "loadavg_start": round(load_start[0], 2),
        "loadavg_end": round(load_end[0], 2),
        "assumed_invoke_overhead_ms": args.invoke_overhead_ms,
        "results": results,
        "float16_quality": quality,
        "kernels_ms": {k: round(v, 6) for k, v in kern.items()},
        "crossover_templates_2_partitions": breakeven,
        "max_templates_one_10gb_instance": fits,
        "crossover_model": cross,
    }
    print(json.dumps(summary, separators=(",", ":")))


if __name__ == "__main__":
    main()

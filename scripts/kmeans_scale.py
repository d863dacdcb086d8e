#!/usr/bin/env python3
"""How long the slim fits of ``compress`` take at One Billion Word size: flat vs two-level k-means.

    python scripts/kmeans_scale.py [--points 40000] [--dim 256] [--threads 1]

The output layer at 1/8 with K=8 (disjoint pools) runs, per position, k-means of V = 793,471
sub-vectors of dimension H/K = 256 (H = 2048) into M/K = 99,184 centroids; the input at 1/32
one k-means of V*K = 6.3M sub-vectors into 198,368. Both are timed here as whole fits (seeding
and 20 iterations, as ``compress`` runs them) on n points and k = n / 8 centroids (the same points
per centroid), side by side on the same points: sub-vectors with structure (rank 16 + noise)
and Zipf weights, as a trained table has. The quantisation error is the weighted mean squared
distance of a point to its centroid. The flat fit costs ~n * k per iteration, so it is scaled by
(N * K_full) / (n * k); the two-level fit costs ~n * sqrt(k) (sqrt(k) cells of sqrt(k)
centroids each), so it is scaled by (N / n)^1.5, or by the exponent that its times at n and 4n
measure where that is larger. Prints one table and a JSON line.
"""
import argparse
import json
import math
import time

import numpy as np
import torch

JOBS = {"output 1/8 (8 x 793,471 into 99,184)": (8, 793471, 99184),
        "input 1/32 (6,347,768 into 198,368)": (1, 6347768, 198368)}


def sub_vectors(n: int, h: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 16), dtype=np.float32) @ rng.standard_normal((16, h), dtype=np.float32)
    x += 0.3 * rng.standard_normal((n, h), dtype=np.float32)
    w = (1.0 / np.arange(1, n + 1))[rng.permutation(n)].astype(np.float32)
    return x, w


def timed_fit(x, w, k, method):
    from fairseq_compactemb.modules.table_fits import kmeans

    t0 = time.perf_counter()
    centroids, labels = kmeans(x, k, w, iters=20, method=method)
    seconds = time.perf_counter() - t0
    error = float((w * ((x - centroids[labels]) ** 2).sum(1)).sum() / w.sum())
    return seconds, error


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--points", type=int, default=40000)
    p.add_argument("--dim", type=int, default=256)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        import faiss

        faiss.omp_set_num_threads(args.threads)
    except ImportError:
        pass
    from fairseq_compactemb.modules.table_fits import kmeans_backend

    n, h = args.points, args.dim
    k = n // 8
    x, w = sub_vectors(n, h)
    t_flat, e_flat = timed_fit(x, w, k, "flat")
    t_two, e_two = timed_fit(x, w, k, "two-level")
    x4, w4 = sub_vectors(4 * n, h)
    t_two4, _ = timed_fit(x4, w4, k * 4, "two-level")
    exponent = max(1.5, math.log(t_two4 / t_two) / math.log(4))
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    print(f"k-means ({kmeans_backend()}), {args.threads} thread(s), {cpu}: {n:,} points of {h} dims into {k:,} "
          f"centroids, whole fit (seeding + 20 iterations): flat {t_flat:.1f} s, error {e_flat:.4f}; two-level "
          f"{t_two:.1f} s, error {e_two:.4f} ({100 * (e_two / e_flat - 1):+.1f}%); two-level at {4 * n:,} points "
          f"{t_two4:.1f} s (scaled as n^{exponent:.2f})")
    print("| fit at One Billion Word size | flat, one core | two-level, one core |\n|---|---:|---:|")
    out = {"points": n, "centroids": k, "dim": h, "threads": args.threads, "cpu": cpu, "flat_s": t_flat,
           "flat_error": e_flat, "two_level_s": t_two, "two_level_error": e_two, "two_level_4n_s": t_two4,
           "two_level_exponent": exponent}
    for name, (times, N, K) in JOBS.items():
        flat_h = times * t_flat * (N * K) / (n * k) / 3600
        two_h = times * t_two * (N / n) ** exponent / 3600
        out[name] = {"flat_h": flat_h, "two_level_h": two_h}
        print(f"| {name} | {flat_h:.1f} h | {two_h:.2f} h |")
    print(json.dumps(out))


if __name__ == "__main__":
    main()

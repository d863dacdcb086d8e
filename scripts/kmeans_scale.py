#!/usr/bin/env python3
"""How long the slim fits of ``compress`` take at One Billion Word size, per k-means backend.

    python scripts/kmeans_scale.py [--points 40000] [--threads 1]

The output layer at 1/8 with K=8 (disjoint pools) runs, per position, k-means of V = 793,471
sub-vectors of dimension H/K = 256 (H = 2048) into M/K = 99,184 centroids; the input at 1/32
one k-means of V*K = 6.3M sub-vectors into 198,368. One Lloyd iteration costs ~n*k*h
multiply-adds, so both are timed on n points and k = n / 8 centroids (the same points per
centroid) for 2 iterations, and scaled by (N*K_full) / (n*k) to the full size (20 iterations).
Prints one table and a JSON line.
"""
import argparse
import json
import time

import numpy as np
import torch


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--points", type=int, default=40000)
    p.add_argument("--dim", type=int, default=256)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    import faiss
    from sklearn.cluster import KMeans

    faiss.omp_set_num_threads(args.threads)
    n, h = args.points, args.dim
    k = n // 8
    x = np.random.default_rng(0).standard_normal((n, h), dtype=np.float32)
    init = x[np.random.default_rng(1).choice(n, k, replace=False)]
    t0 = time.perf_counter()
    km = faiss.Kmeans(h, k, niter=2, seed=1, max_points_per_centroid=1 << 30, min_points_per_centroid=1)
    km.train(x, init_centroids=init)
    t_faiss = (time.perf_counter() - t0) / 2
    t0 = time.perf_counter()
    KMeans(n_clusters=k, init=init, n_init=1, max_iter=2, tol=0, algorithm="lloyd").fit(x)
    t_sk = (time.perf_counter() - t0) / 2
    jobs = {"output 1/8 (8 x 793,471 into 99,184)": 8 * 793471 * 99184,
            "input 1/32 (6,347,768 into 198,368)": 6347768 * 198368}
    print(f"k-means at One Billion Word size, h={h}, {args.threads} thread(s); timed: {n:,} points into {k:,} "
          f"centroids, per Lloyd iteration: faiss {t_faiss:.2f} s, scikit-learn {t_sk:.2f} s")
    print("| fit | faiss, 20 iterations | scikit-learn, 20 iterations |\n|---|---:|---:|")
    out = {"points": n, "centroids": k, "dim": h, "threads": args.threads, "faiss_iter_s": t_faiss,
           "sklearn_iter_s": t_sk}
    for name, work in jobs.items():
        scale = work / (n * k) * 20
        out[name] = {"faiss_h": t_faiss * scale / 3600, "sklearn_h": t_sk * scale / 3600}
        print(f"| {name} | {t_faiss * scale / 3600:.1f} h | {t_sk * scale / 3600:.1f} h |")
    print(json.dumps(out))


if __name__ == "__main__":
    main()

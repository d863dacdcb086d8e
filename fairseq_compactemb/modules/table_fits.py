"""Closed-form and clustering fits of compact layers to a trained ``V x d`` table.

Every fit is *weighted* by word frequency (``weights [V]``, e.g. dictionary counts): a word
that makes up 5% of the text should be reproduced far better than one seen twice, since
perplexity is an average over tokens.

* :func:`kmeans` - weighted k-means through a well-kept library: faiss (``faiss-cpu``) when it
  is installed, else scikit-learn; both use BLAS for the distance computations. Above
  :data:`FLAT_KMEANS_LIMIT` points x centroids in two levels (``two_level_kmeans.py``).
* :func:`product_quantize` - the slim layers' pool and assignment (the slim paper's proposal:
  cluster the sub-vectors of a pretrained table). ``shared`` (the input's one pool): one
  codebook of ``M`` centroids for all ``V * K`` sub-vectors; ``disjoint`` (the output's pools
  ``S_k``): one codebook of ``M / K`` centroids per position ``k``. Word ``w``'s sub-vector ``k``
  is replaced by its nearest centroid.
* :func:`low_rank_fit` - the optimal rank-``r`` factorisation ``A B`` of a table in the weighted
  Frobenius norm (truncated SVD of ``diag(sqrt(w)) E``): projected embeddings, adaptive bands.
* :func:`hashed_mean_fit` - HashNet's shared weights: bucket ``b`` gets the weighted mean of
  ``sign * E[i, j]`` over the entries hashed into it, the least-squares solution.
"""
import logging
from typing import Callable, Optional, Tuple

import numpy as np
import torch

from .two_level_kmeans import two_level_kmeans

logger = logging.getLogger(__name__)

Progress = Optional[Callable[[str, int, int], None]]  # progress(step name, done, total)

KMEANS_METHODS = ("auto", "flat", "two-level")
# n * k above which "auto" clusters in two levels: flat k-means costs ~n * k * h per iteration
# (and k-means++ seeding ~log k times that), quadratic in the vocabulary for a slim fit
FLAT_KMEANS_LIMIT = 2 * 10 ** 9


def kmeans_backend() -> str:
    try:
        import faiss  # noqa: F401

        return "faiss"
    except ImportError:
        return "sklearn"


def kmeans(points: np.ndarray, k: int, weights: Optional[np.ndarray] = None, iters: int = 20,
           seed: int = 1, backend: Optional[str] = None, method: str = "auto") -> Tuple[np.ndarray, np.ndarray]:
    """Weighted k-means of ``points [n, h]`` (float32) into ``k <= n`` centroids.
    Returns ``(centroids [k, h] float32, labels [n] int64)``, each point's nearest centroid
    (``method="two-level"``: the nearest among the centroids of the cells near its own,
    ``two_level_kmeans.py``; ``"auto"``: two levels once ``n * k`` exceeds :data:`FLAT_KMEANS_LIMIT`)."""
    if method not in KMEANS_METHODS:
        raise ValueError(f"k-means method {method!r}: choose one of {', '.join(KMEANS_METHODS)}")
    points = np.ascontiguousarray(points, dtype=np.float32)
    n, h = points.shape
    if not 1 <= k <= n:
        raise ValueError(f"k={k} centroids for {n} points")
    w = None if weights is None else np.ascontiguousarray(weights, dtype=np.float32)
    backend = backend or kmeans_backend()
    if method == "two-level" or (method == "auto" and n * k > FLAT_KMEANS_LIMIT):
        return two_level_kmeans(points, k, w, seed, lambda x, kk, ww, s: _flat_kmeans(x, kk, ww, iters, s, backend),
                                iters)
    return _flat_kmeans(points, k, w, iters, seed, backend)


def _flat_kmeans(points: np.ndarray, k: int, w: Optional[np.ndarray], iters: int, seed: int, backend: str
                 ) -> Tuple[np.ndarray, np.ndarray]:
    n, h = points.shape
    if k == n:  # nothing to cluster: every point is its own centroid
        return points.copy(), np.arange(n, dtype=np.int64)
    if backend == "faiss":
        import faiss
        from sklearn.cluster import kmeans_plusplus

        # k-means++ seeding (scikit-learn's) instead of faiss's random one: random seeds merge
        # well-separated clusters (a table built from a known codebook was not recovered). In
        # float64: scikit-learn upcasts float32 distances chunk by chunk at each of the k steps
        # (measured, 9,984 seeds among 39,936 sub-vectors: seeding 42 s -> 26 s, fit 80 -> 58 s)
        init, _ = kmeans_plusplus(points.astype(np.float64), k, random_state=seed,
                                  sample_weight=None if w is None else w.astype(np.float64))
        km = faiss.Kmeans(h, k, niter=iters, seed=seed, verbose=False, max_points_per_centroid=1 << 30,
                          min_points_per_centroid=1)
        km.train(points, weights=w, init_centroids=np.ascontiguousarray(init, dtype=np.float32))
        centroids = km.centroids.astype(np.float32)
        index = faiss.IndexFlatL2(h)
        index.add(centroids)
        labels = index.search(points, 1)[1][:, 0].astype(np.int64)
        return centroids, labels
    from sklearn.cluster import KMeans

    km = KMeans(n_clusters=k, n_init=1, max_iter=iters, random_state=seed, init="k-means++")
    km.fit(points, sample_weight=w)
    return km.cluster_centers_.astype(np.float32), km.labels_.astype(np.int64)


def product_quantize(table: torch.Tensor, subvectors: int, pool_size: int, weights: Optional[torch.Tensor] = None,
                     shared: bool = True, iters: int = 20, seed: int = 1, progress: Progress = None,
                     method: str = "auto") -> Tuple[torch.Tensor, torch.Tensor]:
    """``table [V, d]`` -> ``(pool [M, d/K], assignment [V, K])`` with
    ``pool[assignment[w]].flatten() ~ table[w]`` (see the module docstring). For ``disjoint``
    (``shared=False``) column ``k`` of the assignment lies in rows ``k*M/K .. (k+1)*M/K - 1``."""
    V, d = table.shape
    K, M = subvectors, pool_size
    h = d // K
    subs = table.detach().float().cpu().reshape(V, K, h).numpy()
    w = None if weights is None else weights.detach().double().cpu().numpy()
    if shared:
        if progress:
            progress(f"k-means: {V * K:,} sub-vectors into one pool of {M:,}", 0, 1)
        centroids, labels = kmeans(subs.reshape(V * K, h), M, None if w is None else np.repeat(w, K), iters, seed,
                                   method=method)
        if progress:
            progress("k-means", 1, 1)
        return torch.from_numpy(centroids), torch.from_numpy(labels).view(V, K)
    per = M // K
    pools, assignment = [], torch.empty(V, K, dtype=torch.long)
    for k in range(K):
        if progress:
            progress(f"k-means: position {k + 1}/{K}, {V:,} sub-vectors into {per:,}", k, K)
        centroids, labels = kmeans(subs[:, k], per, w, iters, seed + k, method=method)
        pools.append(torch.from_numpy(centroids))
        assignment[:, k] = torch.from_numpy(labels) + k * per
    if progress:
        progress("k-means", K, K)
    return torch.cat(pools), assignment


def low_rank_fit(table: torch.Tensor, rank: int, weights: Optional[torch.Tensor] = None
                 ) -> Tuple[torch.Tensor, torch.Tensor]:
    """``table [n, d]`` -> ``(A [n, r], B [r, d])`` minimising ``sum_i w_i ||table_i - (A B)_i||^2``:
    the truncated SVD of the row-scaled table (Eckart-Young), unscaled. ``r >= min(n, d)`` is exact."""
    x = table.detach().double().cpu()
    r = min(rank, *x.shape)
    s = torch.ones(x.size(0), dtype=torch.float64) if weights is None else weights.detach().double().cpu().clamp_min(1e-12).sqrt()
    u, sv, vt = torch.linalg.svd(x * s[:, None], full_matrices=False)
    a = (u[:, :r] * sv[:r]) / s[:, None]
    b = vt[:r]
    if r < rank:  # more columns than the table's rank: pad with zeros (still exact)
        a = torch.cat([a, a.new_zeros(a.size(0), rank - r)], 1)
        b = torch.cat([b, b.new_zeros(rank - r, b.size(1))], 0)
    return a.float(), b.float()


def hashed_mean_fit(table: torch.Tensor, index: torch.Tensor, sign: torch.Tensor, buckets: int,
                    weights: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``table [V, d]``, bucket ``index [V, d]`` and ``sign [V, d]`` (+-1) -> the ``[B]`` weights
    minimising ``sum_ij w_i (sign_ij * b[index_ij] - table_ij)^2``: per bucket the weighted mean
    of ``sign * table`` (0 for a bucket nothing hashes into)."""
    x = table.detach().double().cpu()
    w = torch.ones(x.size(0), dtype=torch.float64) if weights is None else weights.detach().double().cpu()
    ww = w[:, None].expand_as(x).reshape(-1)
    idx = index.reshape(-1).cpu()
    num = torch.zeros(buckets, dtype=torch.float64).index_add_(0, idx, (sign.double().cpu() * x).reshape(-1) * ww)
    den = torch.zeros(buckets, dtype=torch.float64).index_add_(0, idx, ww)
    return torch.where(den > 0, num / den.clamp_min(1e-300), torch.zeros_like(num)).float()

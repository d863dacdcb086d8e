"""Two-level k-means: the slim fits at large vocabularies in minutes instead of days.

A slim fit clusters ``n`` sub-vectors into ``k`` centroids with a fixed number of points per
centroid (``k = n / 8`` at a 1/8 pool), so flat k-means costs ``n * k * h`` multiply-adds per
Lloyd iteration and its k-means++ seeding ``~n * k * h * log k``: quadratic in the vocabulary.
Two levels cost ``~n * sqrt(k) * h``: cluster the points into ``c = sqrt(k)`` cells, give every
cell its share of the ``k`` centroids, and cluster each cell on its own with the flat k-means.

The same construction as faiss's ``contrib.clustering.two_level_clustering`` (its IVF training),
which the fits cannot call as it is: it takes no weights, returns no labels, and fails on a cell
with fewer points than its share. Here a cell's share is proportional to its number of points
(the flat fit's points per centroid, in every cell; measured better than shares by weight), at
least one and at most the cell's number of *distinct* points: so a table built from exactly ``k``
distinct rows is recovered exactly, as by the flat fit. (With more centroids than distinct
points no split can hold them: then the whole set is clustered flat.)

A point near a cell's border is then stuck with its own cell's centroids, so Lloyd iterations
follow over the whole set with each point choosing among the centroids of its
:data:`PROBE_CELLS` nearest cells (an inverted-file search, as faiss's IVF indexes do): they
close most of the gap to flat k-means (measured, ``scripts/kmeans_scale.py``) at
``~n * PROBE_CELLS * k / c * h`` per iteration. A point's label is its nearest centroid among
those candidates.
"""
from typing import Callable, Optional, Tuple

import numpy as np
import torch

PROBE_CELLS = 16  # cells whose centroids a point may move to in the refining iterations
SETTLED = 1e-3  # the refining iterations stop once fewer than this share of the labels change

# flat(points, k, weights, seed) -> (centroids [k, h], labels [n]): the flat k-means of one level
FlatKMeans = Callable[[np.ndarray, int, Optional[np.ndarray], int], Tuple[np.ndarray, np.ndarray]]


def allocate_centroids(share: np.ndarray, upper: np.ndarray, k: int) -> np.ndarray:
    """Integers ``a [c]`` with ``1 <= a <= upper``, ``sum(a) == k`` and ``a`` proportional to
    ``share [c]`` (>= 0) wherever the bounds allow: water-filling ``clip(t * share, 1, upper)``
    for the ``t`` that sums to ``k``, then largest remainders. Needs ``c <= k <= sum(upper)``."""
    share = np.maximum(np.asarray(share, dtype=np.float64), 1e-300)
    upper = np.asarray(upper, dtype=np.int64)
    c = len(share)
    if not (c <= k <= upper.sum()) or (upper < 1).any():
        raise ValueError(f"cannot give {k} centroids to {c} cells holding at most {int(upper.sum())}")

    def filled(t: float) -> np.ndarray:
        return np.clip(t * share, 1.0, upper)

    lo, hi = 0.0, 1.0
    while filled(hi).sum() < k:
        hi *= 2.0
    for _ in range(200):  # bisection to float precision
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if filled(mid).sum() < k else (lo, mid)
    ideal = filled(hi)
    alloc = np.minimum(np.floor(ideal).astype(np.int64), upper)
    missing = k - int(alloc.sum())
    if missing > 0:  # the largest remainders among cells still below their bound get one more
        remainder = np.where(alloc < upper, ideal - alloc, -1.0)
        alloc[np.argsort(-remainder, kind="stable")[:missing]] += 1
    elif missing < 0:  # rounding overshoot (float error only): take back from the smallest remainders
        remainder = np.where(alloc > 1, ideal - alloc, np.inf)
        alloc[np.argsort(remainder, kind="stable")[:-missing]] -= 1
    return alloc


def two_level_kmeans(points: np.ndarray, k: int, weights: Optional[np.ndarray], seed: int,
                     flat: FlatKMeans, iters: int = 20, cells: Optional[int] = None
                     ) -> Tuple[np.ndarray, np.ndarray]:
    """``points [n, h]`` -> ``(centroids [k, h] float32, labels [n] int64)`` through ``cells``
    (default ``round(sqrt(k))``) coarse cells, each clustered by ``flat``, then up to ``iters``
    refining Lloyd iterations; see the module docstring."""
    c = min(int(cells or max(1, round(np.sqrt(k)))), k)
    coarse, cell = flat(points, c, weights, seed)
    order = np.argsort(cell, kind="stable")
    bounds = np.searchsorted(cell[order], np.arange(c + 1))
    kept = [j for j in range(c) if bounds[j + 1] > bounds[j]]  # a coarse centroid may end up with no point
    members = [order[bounds[j]:bounds[j + 1]] for j in kept]
    sizes = np.array([len(m) for m in members])
    distinct = np.array([len(np.unique(points[m], axis=0)) for m in members])
    if distinct.sum() < k:  # more centroids than distinct points: no cell split holds them, cluster flat
        return flat(points, k, weights, seed)
    alloc = allocate_centroids(sizes, distinct, k)
    centroids = np.empty((k, points.shape[1]), dtype=np.float32)
    labels = np.empty(len(points), dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(alloc)])  # cell j owns centroids starts[j] .. starts[j+1] - 1
    for j, m in enumerate(members):
        cj, lj = flat(points[m], int(alloc[j]), None if weights is None else weights[m], seed + 1 + j)
        centroids[starts[j]:starts[j + 1]] = cj
        labels[m] = lj + starts[j]
    return _refine(points, weights, centroids, labels, coarse[kept], members, starts, iters)


def _refine(points, weights, centroids, labels, coarse, members, starts, iters, chunk=8192):
    """Lloyd iterations where the points of cell ``j`` choose among the centroids of the
    ``PROBE_CELLS`` cells nearest to ``j``; stops early once the labels settle (``SETTLED``)."""
    x = torch.from_numpy(points)
    w = torch.ones(len(points), dtype=torch.float64) if weights is None else torch.from_numpy(weights).double()
    xw = x.double() * w[:, None]  # the weighted sums of the centroid updates, in float64
    cents = torch.from_numpy(centroids).clone()
    lab = torch.from_numpy(labels).clone()
    cc = torch.from_numpy(np.ascontiguousarray(coarse))
    near = torch.cdist(cc, cc).topk(min(PROBE_CELLS, len(cc)), largest=False).indices  # [c, p]
    candidates = [torch.cat([torch.arange(starts[i], starts[i + 1]) for i in row]) for row in near.tolist()]
    rows = [torch.from_numpy(m[i:i + chunk]) for m in members for i in range(0, len(m), chunk)]
    cells = [j for j, m in enumerate(members) for _ in range(0, len(m), chunk)]
    for _ in range(iters):
        new = lab.clone()
        for m, j in zip(rows, cells):  # the points of one cell, at most `chunk` at a time (memory)
            cs = cents[candidates[j]]
            dist = (cs * cs).sum(1)[None, :] - 2.0 * x[m] @ cs.t()  # + |x|^2, the same for every candidate
            new[m] = candidates[j][dist.argmin(1)]
        changed = int((new != lab).sum())
        lab = new
        mass = torch.zeros(len(cents), dtype=torch.float64).index_add_(0, lab, w)
        total = torch.zeros(cents.shape, dtype=torch.float64).index_add_(0, lab, xw)
        filled = mass > 0  # a centroid left without points keeps its place
        cents[filled] = (total[filled] / mass[filled, None]).float()
        if changed <= SETTLED * len(lab):
            break
    return cents.numpy(), lab.numpy()

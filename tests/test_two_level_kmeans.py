"""Two-level k-means (``modules/two_level_kmeans.py``), the slim fits' clustering at large
vocabularies: the share of centroids per cell, a quantisation error close to the flat fit's, and
``auto`` choosing two levels above the flat limit. (Exact recovery of a table built from a known
codebook, as by the flat fit: ``tests/test_compress.py``.)"""
import numpy as np
import pytest

from fairseq_compactemb.modules import table_fits
from fairseq_compactemb.modules.table_fits import kmeans
from fairseq_compactemb.modules.two_level_kmeans import allocate_centroids


def test_allocation_is_proportional_where_no_bound_binds():
    assert allocate_centroids(np.array([1, 2, 3, 4]), np.array([100] * 4), 20).tolist() == [2, 4, 6, 8]
    a = allocate_centroids(np.array([1.0, 1.0, 1.0]), np.array([10, 10, 10]), 10)
    assert a.sum() == 10 and a.max() - a.min() == 1  # the one left over goes to one cell


def test_allocation_respects_both_bounds_and_sums_to_k():
    # the big cell can hold only 3 (its distinct points): the rest goes to the others by share;
    # the empty-share cell still gets its one centroid
    a = allocate_centroids(np.array([100.0, 1.0, 1.0, 0.0]), np.array([3, 50, 50, 50]), 23)
    assert a.tolist() == [3, 9, 10, 1] or a.tolist() == [3, 10, 9, 1]
    rng = np.random.default_rng(0)
    for _ in range(50):
        c = int(rng.integers(1, 30))
        upper = rng.integers(1, 40, c)
        k = int(rng.integers(c, upper.sum() + 1))
        a = allocate_centroids(rng.random(c) * rng.integers(0, 2, c), upper, k)
        assert a.sum() == k and (a >= 1).all() and (a <= upper).all()


def test_allocation_refuses_an_impossible_split():
    with pytest.raises(ValueError, match="cannot give 7 centroids to 3 cells"):
        allocate_centroids(np.ones(3), np.array([2, 2, 2]), 7)
    with pytest.raises(ValueError, match="cannot give 2 centroids to 3 cells"):
        allocate_centroids(np.ones(3), np.array([2, 2, 2]), 2)


def weighted_error(x, w, centroids, labels):
    return float((w * ((x - centroids[labels]) ** 2).sum(1)).sum() / w.sum())


def test_two_level_error_is_close_to_the_flat_fit_and_labels_are_consistent():
    # sub-vectors with structure (rank 6 + noise), Zipf weights, 8 points per centroid as a slim fit
    rng = np.random.default_rng(0)
    n, h, k = 6000, 12, 750
    x = (rng.standard_normal((n, 6)) @ rng.standard_normal((6, h)) + 0.3 * rng.standard_normal((n, h))).astype(np.float32)
    w = (1.0 / np.arange(1, n + 1))[rng.permutation(n)].astype(np.float32)
    flat_c, flat_l = kmeans(x, k, w, method="flat")
    two_c, two_l = kmeans(x, k, w, method="two-level")
    assert two_c.shape == (k, h) and two_l.shape == (n,) and two_l.min() >= 0 and two_l.max() < k
    flat_err, two_err = weighted_error(x, w, flat_c, flat_l), weighted_error(x, w, two_c, two_l)
    # measured: +5% at this size; a fit without the refining iterations is ~+17%
    assert two_err < 1.12 * flat_err, (two_err, flat_err)
    # nearly every point's label is its nearest centroid overall (the search is over nearby cells)
    nearest = ((x[:, None, :] - two_c[None]) ** 2).sum(-1).argmin(1)
    assert (nearest == two_l).mean() > 0.97


def test_auto_clusters_in_two_levels_above_the_flat_limit(monkeypatch):
    calls = []
    real = table_fits.two_level_kmeans
    monkeypatch.setattr(table_fits, "two_level_kmeans", lambda *a, **kw: calls.append(a[1]) or real(*a, **kw))
    x = np.random.default_rng(1).standard_normal((400, 4)).astype(np.float32)
    kmeans(x, 50)  # 400 * 50 is far below the limit: flat
    assert calls == []
    monkeypatch.setattr(table_fits, "FLAT_KMEANS_LIMIT", 400 * 50 - 1)
    centroids, labels = kmeans(x, 50)
    assert calls == [50] and centroids.shape == (50, 4) and labels.shape == (400,)
    with pytest.raises(ValueError, match="k-means method 'fast'"):
        kmeans(x, 50, method="fast")


def test_refining_in_chunks_gives_the_same_fit(monkeypatch):
    from fairseq_compactemb.modules import two_level_kmeans

    x = np.random.default_rng(2).standard_normal((3000, 6)).astype(np.float32)
    whole = kmeans(x, 300, method="two-level")
    real = two_level_kmeans._refine
    monkeypatch.setattr(two_level_kmeans, "_refine", lambda *a, **kw: real(*a, chunk=37))
    chunked = kmeans(x, 300, method="two-level")
    assert np.array_equal(whole[1], chunked[1]) and np.array_equal(whole[0], chunked[0])


def test_more_centroids_than_distinct_points_falls_back_to_the_flat_fit():
    x = np.repeat(np.random.default_rng(3).standard_normal((50, 4)).astype(np.float32), 8, axis=0)
    flat = kmeans(x, 60, method="flat")
    two = kmeans(x, 60, method="two-level")  # no cell split can hold 60 centroids on 50 distinct points
    assert np.array_equal(flat[0], two[0]) and np.array_equal(flat[1], two[1])
    assert float(((x - two[0][two[1]]) ** 2).sum()) < 1e-3

"""NoiseSampler: support, distributions, expected counts, reproducible generator state."""
import math

import pytest
import torch

from fairseq_compactemb.modules.errors import CompactConfigError
from fairseq_compactemb.modules.noise_sampler import DISTRIBUTIONS, NoiseSampler

V = 30
EXCLUDE = [0, 1]  # bos, pad of a fairseq dictionary


def counts():
    g = torch.Generator().manual_seed(0)
    c = torch.randint(1, 500, (V,), generator=g).double()
    c[5] = 0  # a word never seen in training
    return c


def make(distribution, **kw):
    kw.setdefault("exclude", EXCLUDE)
    return NoiseSampler(V, distribution, counts=counts() if distribution == "unigram" else None, **kw)


@pytest.mark.parametrize("distribution", DISTRIBUTIONS)
@pytest.mark.parametrize("unique", [False, True])
def test_excluded_ids_never_drawn_and_q_sums_to_one(distribution, unique):
    s = make(distribution, unique=unique)
    q = s.probs()
    assert q[EXCLUDE].eq(0).all() and (q[2:] > 0).all()  # </s>, <unk> and count-0 words sampleable
    assert torch.isclose(q.sum(), torch.tensor(1.0, dtype=torch.float64), atol=1e-12)
    assert torch.equal(s.log_prob(torch.arange(V)), q.log())
    for _ in range(20):
        ids, tries = s.sample(20)
        assert ids.shape == (20,) and ids.dtype == torch.long
        assert not torch.isin(ids, torch.tensor(EXCLUDE)).any()
        assert ids.min() >= 2 and ids.max() < V
        if unique:
            assert ids.unique().numel() == 20 and tries >= 20
        else:
            assert tries == 20


@pytest.mark.parametrize("distribution", DISTRIBUTIONS)
def test_empirical_frequencies_match_q(distribution):
    s = make(distribution, seed=3)
    n = 200_000
    ids, _ = s.sample(n)
    observed = torch.bincount(ids, minlength=V).double()
    expected = n * s.probs()
    support = expected > 0
    chi2 = ((observed[support] - expected[support]) ** 2 / expected[support]).sum().item()
    dof = int(support.sum()) - 1
    # chi-square with 27 dof: mean 27, sd ~7.3; 80 is beyond 7 sd, a wrong q gives thousands.
    assert chi2 < 80, chi2
    assert observed[~support].sum() == 0 and dof == V - 3


def test_unigram_is_counts_to_the_alpha():
    c = counts()
    s = NoiseSampler(V, "unigram", counts=c, alpha=0.75, exclude=EXCLUDE)
    w = c.clone()
    w[5] = c[2:][c[2:] > 0].min()  # a count-0 word gets the smallest positive count
    w = w.pow(0.75)
    w[EXCLUDE] = 0
    torch.testing.assert_close(s.probs(), w / w.sum(), rtol=1e-12, atol=0)
    # alpha = 0 is uniform over the sampleable ids, and counts of excluded ids are ignored
    c[0] = 1e9
    u = NoiseSampler(V, "unigram", counts=c, alpha=0.0, exclude=EXCLUDE).probs()
    torch.testing.assert_close(u[2:], torch.full((V - 2,), 1.0 / (V - 2), dtype=torch.float64))


def test_loguniform_matches_the_zipfian_formula():
    s = NoiseSampler(V, "loguniform", exclude=EXCLUDE)
    R = V - 2
    r = torch.arange(R, dtype=torch.float64)
    formula = torch.log((r + 2) / (r + 1)) / math.log(R + 1)
    torch.testing.assert_close(s.probs()[2:], formula, rtol=1e-12, atol=0)
    assert (s.probs()[2:].diff() < 0).all()  # smaller id (more frequent word) = more likely


def test_expected_counts():
    s = make("unigram")
    q = s.probs()
    ids = torch.tensor([2, 3, 7, 29])
    # with replacement: S q
    torch.testing.assert_close(s.log_expected_count(ids, 50), (50 * q[ids]).log())
    # distinct ids after T tries: 1 - (1 - q)^T, and 1 once every word is returned
    u = make("unigram", unique=True)
    torch.testing.assert_close(u.log_expected_count(ids, 37), (1 - (1 - q[ids]) ** 37).log())
    assert u.log_expected_count(ids, math.inf).eq(0).all()
    assert u.log_expected_count(torch.tensor(EXCLUDE), 37).eq(-math.inf).all()
    ids, tries = u.sample(V - 2)  # every sampleable word
    assert tries == math.inf and sorted(ids.tolist()) == list(range(2, V))


def test_unique_tries_count_the_draws_until_the_last_new_id():
    # Replaying the generator through plain draws with replacement must show the S-th distinct
    # id appearing exactly at draw number `tries`.
    u = make("unigram", unique=True, seed=11)
    state = u.get_state()
    ids, tries = u.sample(15)
    u.set_state(state)
    replay = u._draw(64, u.generator)  # first chunk has max(2 * 15, 64) draws
    first_seen = []
    for x in replay.tolist():
        if x not in first_seen:
            first_seen.append(x)
    assert first_seen[:15] == ids.tolist()
    assert len(set(replay[:tries].tolist())) == 15 and len(set(replay[:tries - 1].tolist())) == 14


def test_generator_state_round_trip_reproduces_draws():
    s = make("unigram", unique=True, seed=5)
    s.sample(10)
    saved = s.state_dict()
    a = [s.sample(10).ids for _ in range(3)]
    t = make("unigram", unique=True, seed=999)
    t.load_state_dict(saved)
    b = [t.sample(10).ids for _ in range(3)]
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(make("unigram", seed=1).sample(10).ids, make("unigram", seed=2).sample(10).ids)
    # an explicit generator is used instead of the sampler's own, which is left untouched
    before = s.get_state()
    s.sample(10, generator=torch.Generator().manual_seed(0))
    assert torch.equal(s.get_state(), before)


def test_configuration_errors_name_the_flag():
    with pytest.raises(CompactConfigError, match="--noise-distribution: unknown choice 'zipf'"):
        NoiseSampler(V, "zipf")
    with pytest.raises(CompactConfigError, match="--noise-alpha"):
        NoiseSampler(V, "unigram", counts=counts(), alpha=-0.5)
    with pytest.raises(CompactConfigError, match="--noise-distribution.*counts"):
        NoiseSampler(V, "unigram")
    zero = torch.zeros(V)
    zero[0] = 10  # only an excluded id has a count
    with pytest.raises(CompactConfigError, match="--noise-distribution: all word counts"):
        NoiseSampler(V, "unigram", counts=zero, exclude=EXCLUDE)
    s = make("uniform")
    with pytest.raises(CompactConfigError, match="--noise-samples: 0 noise samples; use at least 1"):
        s.sample(0)
    assert s.sample(100).ids.shape == (100,)  # with replacement, more draws than words is legal
    with pytest.raises(CompactConfigError, match="--noise-samples: 29 distinct noise samples is more than the 28"):
        make("uniform", unique=True).sample(V - 1)

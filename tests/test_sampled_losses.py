"""The sampled losses (plain PyTorch): limits, consistency on a known distribution, masking, dtypes."""
import math

import pytest
import torch
import torch.nn.functional as F

from fairseq_compactemb.modules.noise_sampler import NoiseSampler
from fairseq_compactemb.modules.sampled_losses import nce_loss, sampled_softmax_loss
from fairseq_compactemb.modules.softmax_output import SoftmaxOutput

V, H, N = 40, 8, 24
EXCLUDE = [0, 1]


def setup(seed=0, scale=1.0):
    torch.manual_seed(seed)
    layer = SoftmaxOutput(V, H, bias=True)
    with torch.no_grad():
        layer.bias.normal_()
    hidden = scale * torch.randn(N, H)
    targets = torch.randint(2, V, (N,))
    return layer, hidden, targets


def full_loss(layer, hidden, targets, support):
    """Cross-entropy of the softmax over the sampleable words (the limit of the sampled loss)."""
    logits = layer.logits(hidden)[:, support]
    return torch.logsumexp(logits, 1) - layer.score_targets(hidden, targets)


def is_loss(layer, hidden, targets, sampler, num_samples, generator=None):
    ids, tries = sampler.sample(num_samples, generator)
    return sampled_softmax_loss(layer.score_targets(hidden, targets), layer.score(hidden, ids), targets, ids,
                                sampler.log_expected_count(ids, tries))


def test_importance_sampling_with_every_word_is_the_full_softmax():
    layer, hidden, targets = setup()
    sampler = NoiseSampler(V, "unigram", counts=torch.rand(V) * 100, exclude=EXCLUDE, unique=True)
    loss = is_loss(layer, hidden, targets, sampler, V - 2)  # every word once, Q = 1, the target masked
    torch.testing.assert_close(loss, full_loss(layer, hidden, targets, sampler.support), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("distribution,unique", [("uniform", False), ("unigram", False), ("unigram", True)])
def test_importance_sampling_gap_to_the_full_loss_shrinks_with_samples(distribution, unique):
    layer, hidden, targets = setup(1)
    counts = torch.arange(V, 0, -1).double() ** 2
    sampler = NoiseSampler(V, distribution, counts=counts, exclude=EXCLUDE, unique=unique, seed=0)
    exact = full_loss(layer, hidden, targets, sampler.support).mean()
    gaps = []  # root-mean-square difference between the sampled and the full batch loss
    for S in ([4, 16, 30] if unique else [4, 32, 256, 2048]):
        est = torch.stack([is_loss(layer, hidden, targets, sampler, S).mean() for _ in range(30)])
        gaps.append((est - exact).pow(2).mean().sqrt().item())
    assert all(a > 1.5 * b for a, b in zip(gaps, gaps[1:])), gaps
    assert gaps[-1] < (0.2 if unique else 0.05), gaps


def test_accidental_hits_are_masked():
    layer, hidden, targets = setup(2)
    sampler = NoiseSampler(V, "uniform", exclude=EXCLUDE)
    ids = torch.cat([targets[:3], torch.tensor([5, 6, 7])])  # rows 0-2 have their target among the noise
    lq_n = sampler.log_expected_count(ids, 6)
    s_t, s_n = layer.score_targets(hidden, targets), layer.score(hidden, ids)
    loss = sampled_softmax_loss(s_t, s_n, targets, ids, lq_n)
    hits = ids.unsqueeze(0) == targets.unsqueeze(1)
    assert hits[:3].any(1).all() and not hits[3:].all()
    for i in range(N):  # reference: drop the hit columns of row i by hand
        keep = ids != targets[i]
        logits = torch.cat([s_t[i].view(1), (s_n[i] - lq_n)[keep]]).float()
        torch.testing.assert_close(loss[i], torch.logsumexp(logits, 0) - logits[0])
    # the masked columns get no gradient, the others do
    s_n = s_n.detach().requires_grad_()
    sampled_softmax_loss(s_t.detach(), s_n, targets, ids, lq_n).sum().backward()
    assert s_n.grad[hits].eq(0).all() and s_n.grad[~hits].ne(0).all()
    unmasked = sampled_softmax_loss(s_t, s_n, targets, ids, lq_n, remove_accidental_hits=False)
    rows_hit = hits.any(1)
    assert (unmasked[rows_hit] > loss[rows_hit]).all() and torch.equal(unmasked[~rows_hit], loss[~rows_hit])


def test_nce_loss_matches_its_definition():
    g = torch.Generator().manual_seed(0)
    s_t, s_n = torch.randn(5, generator=g), torch.randn(5, 7, generator=g)
    lq_t, lq_n = torch.randn(5, generator=g), torch.randn(7, generator=g)
    sig = torch.sigmoid
    ref = -torch.log(sig(s_t - 0.3 - lq_t)) - torch.log(1 - sig(s_n - 0.3 - lq_n)).sum(1)
    torch.testing.assert_close(nce_loss(s_t, s_n, lq_t, lq_n, log_z=0.3), ref)
    s64 = torch.randn(3, dtype=torch.float64, requires_grad=True)
    n64 = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    # the losses compute in float32, so gradcheck the float64 pieces with a loose tolerance
    assert torch.autograd.gradcheck(lambda a, b: nce_loss(a, b, lq_t[:3].double(), lq_n[:4].double()).double(),
                                    (s64, n64), eps=1e-3, atol=1e-3, rtol=1e-3)


# -- a known distribution: one context, free logits over 20 words ---------------------------------
def _toy(seed=0):
    torch.manual_seed(seed)
    VT = 22  # ids 0, 1 excluded (bos, pad), 20 real words
    p = torch.zeros(VT)
    p[2:] = torch.softmax(1.5 * torch.randn(20), 0)
    counts = torch.zeros(VT)
    counts[2:] = (p[2:] * 1000).round() + 1  # a rough unigram estimate as noise
    return VT, p, counts


def _train(loss_fn, sampler, p, VT, steps, rows, S, lr):
    """Adam with a cosine schedule on free logits ``theta [VT]``; every row has the same context."""
    theta = torch.zeros(VT, requires_grad=True)
    opt = torch.optim.Adam([theta], lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    data = torch.Generator().manual_seed(1)
    for _ in range(steps):
        targets = torch.multinomial(p, rows, replacement=True, generator=data)
        ids, tries = sampler.sample(S)
        s_t, s_n = theta[targets], theta[ids].unsqueeze(0).expand(rows, S)
        lq_t, lq_n = sampler.log_expected_count(targets, tries), sampler.log_expected_count(ids, tries)
        loss = loss_fn(s_t, s_n, targets, ids, lq_t, lq_n).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        schedule.step()
    return theta.detach()


@pytest.mark.parametrize("distribution", ["unigram", "uniform"])
def test_nce_learns_the_self_normalised_data_distribution(distribution):
    VT, p, counts = _toy()
    sampler = NoiseSampler(VT, distribution, counts=counts, alpha=1.0, exclude=EXCLUDE, seed=2)
    theta = _train(lambda s_t, s_n, t, i, lq_t, lq_n: nce_loss(s_t, s_n, lq_t, lq_n), sampler, p, VT,
                   steps=1000, rows=1024, S=200, lr=0.1)
    learned = theta[2:].exp()  # log Z = 0: exp(score) itself is the model's probability
    assert abs(learned.sum().item() - 1) < 0.02  # self-normalised without ever computing Z
    tv = 0.5 * (learned - p[2:]).abs().sum().item()
    assert tv < 0.03, tv  # (measured 0.010 unigram, 0.019 uniform; the initial exp(0) = 1 per word is 0.95)


@pytest.mark.parametrize("unique", [False, True])
def test_importance_sampling_learns_the_data_distribution(unique):
    VT, p, counts = _toy()
    sampler = NoiseSampler(VT, "unigram", counts=counts, alpha=0.75, exclude=EXCLUDE, unique=unique, seed=2)
    theta = _train(lambda s_t, s_n, t, i, lq_t, lq_n: sampled_softmax_loss(s_t, s_n, t, i, lq_n),
                   sampler, p, VT, steps=400, rows=256, S=10 if unique else 200, lr=0.05)
    tv = 0.5 * (torch.softmax(theta[2:], 0) - p[2:]).abs().sum().item()
    assert tv < 0.03, tv


# -- numerics ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_finite_under_autocast_and_half_with_extreme_logits(dtype):
    layer, hidden, targets = setup(3, scale=1e4)  # scores of order 1e4: exp overflows any dtype
    sampler = NoiseSampler(V, "unigram", counts=torch.rand(V) + 0.1, exclude=EXCLUDE, seed=0)
    ids, tries = sampler.sample(16)
    ids[0] = targets[0]  # an accidental hit
    lq_t, lq_n = sampler.log_expected_count(targets, tries), sampler.log_expected_count(ids, tries)
    assert layer.logits(hidden).abs().max() > 1e4
    with torch.autocast("cpu", dtype=dtype):
        assert (hidden @ layer.weight.t()).dtype == dtype  # the scores are computed in low precision
        s_t, s_n = layer.score_targets(hidden, targets), layer.score(hidden, ids)
        for loss in (sampled_softmax_loss(s_t, s_n, targets, ids, lq_n), nce_loss(s_t, s_n, lq_t, lq_n)):
            assert loss.dtype == torch.float32 and torch.isfinite(loss).all()
    # a model cast to half precision (fairseq --fp16 / --bf16); scores of order 100 (larger
    # ones overflow the fp16 gradients themselves, which is fairseq's loss scaler's job)
    half = SoftmaxOutput(V, H, bias=True).to(dtype)
    h = (hidden / 100).to(dtype).requires_grad_()
    s_t, s_n = half.score_targets(h, targets), half.score(h, ids)
    total = sampled_softmax_loss(s_t, s_n, targets, ids, lq_n).sum() + nce_loss(s_t, s_n, lq_t, lq_n).sum()
    total.backward()
    assert torch.isfinite(total) and torch.isfinite(h.grad.float()).all()
    assert torch.isfinite(half.weight.grad.float()).all()

"""Adaptive input (Baevski & Auli 2019) and adaptive softmax (Grave et al. 2017), tied and untied."""
import re
from argparse import Namespace

import pytest
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from fairseq_compactemb.modules import (
    CompactConfigError,
    build_input_embedding,
    build_output_layer,
)
from fairseq_compactemb.modules.adaptive_bands import parse_cutoffs
from fairseq_compactemb.modules.adaptive_input import AdaptiveInput
from fairseq_compactemb.modules.adaptive_softmax_output import AdaptiveSoftmaxOutput
from fairseq_compactemb.modules.compact_input import count_unique_parameters
from fairseq_compactemb.modules.standard_embedding import StandardEmbedding

V, D = 13, 8
CUTS = [4, 8, 13]  # bands of 4, 4 and 5 words; dims 8, 4, 2 with factor 2


def cfg(**kw):
    base = dict(input_embedding="adaptive", output_layer="adaptive", adaptive_cutoffs="4,8",
                adaptive_factor=2.0, adaptive_softmax_dropout=0.0, tie_input_output=False,
                output_bias=False)
    base.update(kw)
    return Namespace(**base)


def build_pair(tie=False, bias=False, seed=0, dtype=torch.float32):
    torch.manual_seed(seed)
    c = cfg(tie_input_output=tie, output_bias=bias)
    inp = build_input_embedding(c, V, D, padding_idx=1)
    out = build_output_layer(c, V, D, inp)
    if bias:
        nn.init.normal_(out.bias)
    return inp.to(dtype), out.to(dtype)


def all_tokens_batch():
    return torch.tensor([[0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 12, 1], [11, 10, 3, 1, 4, 0]])


# -- adaptive input ----------------------------------------------------------------------------
def test_input_equals_indexing_materialised_band_table():
    inp, _ = build_pair()
    assert inp.cutoffs == CUTS and inp.band_dims == [8, 4, 2]
    assert [tuple(w.shape) for w in inp.band_weights] == [(4, 8), (4, 4), (5, 2)]
    assert [tuple(p.shape) for p in inp.band_projections] == [(8, 8), (8, 4), (8, 2)]
    # reference: every band's vectors by hand, stacked into one V x d table
    table = torch.cat([w @ p.T for w, p in zip(inp.band_weights, inp.band_projections)])
    tokens = all_tokens_batch()
    ref = table[tokens]
    ref[tokens == 1] = 0.0
    out = inp(tokens)
    assert out.shape == (3, 6, D)
    torch.testing.assert_close(out, ref)
    assert torch.all(out[tokens == 1] == 0)
    assert (out[tokens != 1].abs().sum(-1) > 0).all()


def test_padding_in_a_tail_band_is_zero_and_gets_no_gradient():
    torch.manual_seed(0)
    inp = AdaptiveInput(V, D, CUTS, factor=2, padding_idx=6)  # pad id in band 1 ([4, 8))
    assert torch.all(inp.band_weights[1][6 - 4] == 0)
    tokens = torch.tensor([6, 6, 5, 6])
    out = inp(tokens)
    assert torch.all(out[[0, 1, 3]] == 0) and out[2].abs().sum() > 0
    out.sum().backward()
    assert torch.all(inp.band_weights[1].grad[6 - 4] == 0)
    assert inp.band_weights[1].grad[5 - 4].abs().sum() > 0


def test_input_rejects_out_of_range_ids():
    inp, _ = build_pair()
    for bad in (torch.tensor([V]), torch.tensor([-1])):
        with pytest.raises((IndexError, RuntimeError)):
            inp(bad)


def test_input_gradcheck_float64():
    inp, _ = build_pair(dtype=torch.float64)
    tokens = all_tokens_batch()
    names = [n for n, _ in inp.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_() for p in inp.parameters())
    assert torch.autograd.gradcheck(lambda *ps: functional_call(inp, dict(zip(names, ps)), (tokens,)), params)


def test_input_keeps_every_parameter_in_the_graph_when_a_band_is_absent():
    inp, _ = build_pair()
    inp(torch.tensor([[0, 2, 3]])).sum().backward()  # band 0 only
    for name, p in inp.named_parameters():
        assert p.grad is not None, name
    assert torch.all(inp.band_weights[2].grad == 0) and inp.band_weights[0].grad.abs().sum() > 0


# -- adaptive softmax --------------------------------------------------------------------------
def reference_log_probs(out: AdaptiveSoftmaxOutput, h: torch.Tensor) -> torch.Tensor:
    """p(w) by hand, one word at a time, in float64: head prob, times in-cluster prob for tails."""
    h = h.double()
    head_w = torch.cat([out.head_word_weight, out.head_cluster_weight]).double()
    bias = out.bias.double() if out.bias is not None else torch.zeros(out.vocab_size, dtype=torch.float64)
    head_logits = h @ head_w.T
    head_logits[:, : out.cutoffs[0]] += bias[: out.cutoffs[0]]
    head_p = head_logits.exp() / head_logits.exp().sum(-1, keepdim=True)
    probs = torch.zeros(h.size(0), out.vocab_size, dtype=torch.float64)
    for w in range(out.vocab_size):
        if w < out.cutoffs[0]:
            probs[:, w] = head_p[:, w]
            continue
        i = next(k for k in range(out.num_tails) if w < out.cutoffs[k + 1])
        start = out.cutoffs[i]
        tail_logits = (h @ out.tail_projections[i].double()) @ out.tail_weights[i].double().T
        tail_logits = tail_logits + bias[start: out.cutoffs[i + 1]]
        tail_p = tail_logits.exp() / tail_logits.exp().sum(-1, keepdim=True)
        probs[:, w] = head_p[:, out.cutoffs[0] + i] * tail_p[:, w - start]
    return probs.log()


@pytest.mark.parametrize("tie,bias", [(False, False), (True, False), (False, True)])
def test_log_probs_normalised_and_equal_hand_reference(tie, bias):
    _, out = build_pair(tie=tie, bias=bias)
    h = torch.randn(2, 5, D)
    lp = out.log_probs(h)
    assert lp.shape == (2, 5, V) and lp.dtype == torch.float32
    torch.testing.assert_close(lp.exp().sum(-1), torch.ones(2, 5))
    torch.testing.assert_close(lp.reshape(-1, V).double(), reference_log_probs(out, h.reshape(-1, D)),
                               rtol=1e-5, atol=1e-5)


def test_matches_torch_adaptive_log_softmax_with_loss():
    """Same architecture as torch's AdaptiveLogSoftmaxWithLoss once the weights are copied."""
    _, out = build_pair()
    ref = nn.AdaptiveLogSoftmaxWithLoss(D, V, cutoffs=CUTS[:-1], div_value=2.0)
    with torch.no_grad():
        ref.head.weight.copy_(torch.cat([out.head_word_weight, out.head_cluster_weight]))
        for i, seq in enumerate(ref.tail):
            seq[0].weight.copy_(out.tail_projections[i].T)
            seq[1].weight.copy_(out.tail_weights[i])
    h = torch.randn(20, D)
    target = torch.arange(20) % V
    torch.testing.assert_close(out.log_probs(h), ref.log_prob(h))
    torch.testing.assert_close(out.loss(h, target), -ref(h, target).output.sum())


@pytest.mark.parametrize("tie", [False, True])
def test_loss_equals_summed_nll_of_log_probs_with_ignore_index(tie):
    _, out = build_pair(tie=tie)
    h = torch.randn(18, D)
    target = torch.tensor([0, 1, 3, 4, 7, 8, 12, 1, 2, 5, 9, 10, 11, 6, 1, 0, 12, 3])
    keep = target != 1
    lp = out.log_probs(h)
    expected = -lp[torch.arange(18), target][keep].sum()
    torch.testing.assert_close(out.loss(h, target, ignore_index=1), expected)
    per_row = out.loss(h, target, ignore_index=1, reduction="none")
    torch.testing.assert_close(per_row, torch.where(keep, -lp[torch.arange(18), target], 0.0))
    torch.testing.assert_close(out.loss(h, target), -lp[torch.arange(18), target].sum())
    # ignore_index outside the vocabulary (e.g. -100) is allowed too
    t2 = target.masked_fill(~keep, -100)
    torch.testing.assert_close(out.loss(h, t2, ignore_index=-100), expected)


def test_loss_runs_each_tail_only_on_its_targets(monkeypatch):
    _, out = build_pair()
    seen = []
    original = out._tail_logits
    monkeypatch.setattr(out, "_tail_logits", lambda i, x: (seen.append((i, x.size(0))), original(i, x))[1])
    target = torch.tensor([0, 5, 6, 12, 2, 1, 3, 4])  # tail 0: 3 rows (5, 6, 4), tail 1: 1 row (12)
    out.loss(torch.randn(8, D), target, ignore_index=1)
    assert seen == [(0, 3), (1, 1)]


def test_loss_rejects_out_of_range_target():
    _, out = build_pair()
    with pytest.raises((IndexError, RuntimeError)):
        out.loss(torch.randn(2, D), torch.tensor([0, V]))


class LossCall(nn.Module):
    """Routes forward() to .loss so torch.func.functional_call can swap the parameters."""

    def __init__(self, out):
        super().__init__()
        self.out = out

    def forward(self, hidden, target):
        return self.out.loss(hidden, target, ignore_index=1)


def test_loss_gradcheck_float64():
    _, out = build_pair(bias=True, dtype=torch.float64)
    wrapper = LossCall(out)
    h = torch.randn(6, D, dtype=torch.float64, requires_grad=True)
    target = torch.tensor([0, 5, 12, 1, 9, 3])
    names = [n for n, _ in wrapper.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_() for p in wrapper.parameters())

    def f(hh, *ps):
        return functional_call(wrapper, dict(zip(names, ps)), (hh, target))

    assert torch.autograd.gradcheck(f, (h, *params))


@pytest.mark.parametrize("tie,bias", [(False, False), (True, False), (False, True)])
def test_every_parameter_gets_a_grad_when_all_targets_are_head_words(tie, bias):
    inp, out = build_pair(tie=tie, bias=bias)
    tokens = torch.tensor([[0, 2, 3, 2]])  # band 0 only
    h = torch.tanh(inp(tokens)).reshape(-1, D)
    out.loss(h, torch.tensor([2, 3, 0, 1]), ignore_index=1).backward()
    for name, p in list(inp.named_parameters()) + list(out.named_parameters()):
        assert p.grad is not None, name
    for w in out.tail_weights:
        assert torch.all(w.grad == 0)  # in the graph, but no tail target
    assert out.head_word_weight.grad.abs().sum() > 0


def test_ddp_without_find_unused_parameters_accepts_head_only_batches(tmp_path):
    """The property fairseq's adaptive_loss lacks: PyTorch DDP (static graph check) works."""
    if dist.is_initialized():
        pytest.skip("a process group is already initialised")
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        class LM(nn.Module):
            def __init__(self, unused=False):
                super().__init__()
                self.inp, self.out = build_pair(tie=False)
                self.extra = nn.Parameter(torch.zeros(1)) if unused else None

            def forward(self, tokens, target):
                return self.out.loss(self.inp(tokens).reshape(-1, D), target.reshape(-1), ignore_index=1)

        tokens, target = torch.tensor([[0, 2, 3]]), torch.tensor([[2, 3, 0]])
        model = nn.parallel.DistributedDataParallel(LM(), find_unused_parameters=False)
        for _ in range(3):
            model(tokens, target).backward()
        # control: the same check does fire on a parameter that is really unused
        bad = nn.parallel.DistributedDataParallel(LM(unused=True), find_unused_parameters=False)
        bad(tokens, target).backward()
        with pytest.raises(RuntimeError, match="unused|finished reduction"):
            bad(tokens, target).backward()
    finally:
        dist.destroy_process_group()


# -- scores that the adaptive softmax cannot give -----------------------------------------------
@pytest.mark.parametrize("call", ["logits", "score", "score_targets"])
def test_subset_scoring_is_refused_with_the_fix(call):
    _, out = build_pair()
    h = torch.randn(3, D)
    args = {"logits": (h,), "score": (h, torch.tensor([0, 5])), "score_targets": (h, torch.tensor([0, 5, 9]))}
    with pytest.raises(CompactConfigError, match="--criterion") as err:
        getattr(out, call)(*args[call])
    msg = str(err.value)
    assert "--output-layer" in msg and "nce" in msg and "compact_adaptive_loss" in msg
    assert out.supports_sampling is False


# -- tying ----------------------------------------------------------------------------------------
def test_tied_layer_shares_storage_and_output_vectors_are_input_vectors():
    inp, out = build_pair(tie=True)
    assert out.head_word_weight.data_ptr() == inp.band_weights[0].data_ptr()
    for i in range(out.num_tails):
        assert out.tail_weights[i].data_ptr() == inp.band_weights[i + 1].data_ptr()
        assert out.tail_projections[i].data_ptr() == inp.band_projections[i + 1].data_ptr()
        # tail word logits are h . (input vector of the word), as with a tied softmax
        h = torch.randn(4, D)
        torch.testing.assert_close(out._tail_logits(i, h), h @ inp.band_vectors(i + 1).T)
    # the paper's head: h . band-0 table row (no band-0 projection on the output side)
    h = torch.randn(4, D)
    torch.testing.assert_close(out._head_logits(h)[:, :4], h @ inp.band_weights[0].T)
    # a training step on the output layer moves the input embedding
    before = inp(torch.tensor([9])).detach().clone()
    opt = torch.optim.SGD(out.parameters(), lr=1.0)
    out.loss(torch.randn(5, D), torch.tensor([9, 9, 9, 10, 2])).backward()
    opt.step()
    assert not torch.allclose(inp(torch.tensor([9])), before)


def input_params(d, bands, dims):
    return sum(s * e + d * e for s, e in zip(bands, dims))


def test_parameter_counts_by_formula_untied_and_tied():
    sizes, dims = [4, 4, 5], [8, 4, 2]
    inp, out = build_pair()
    assert inp.num_parameters() == input_params(D, sizes, dims) == 4 * 8 + 64 + 4 * 4 + 32 + 5 * 2 + 16
    head = (4 + 2) * D
    tails = sum(D * e + s * e for s, e in zip(sizes[1:], dims[1:]))
    assert out.num_parameters() == head + tails
    assert count_unique_parameters(nn.ModuleList([inp, out])) == inp.num_parameters() + head + tails
    inp_t, out_t = build_pair(tie=True)
    # tied: only the cluster logits (n_tails x H) are new, everything else is the input's
    assert count_unique_parameters(nn.ModuleList([inp_t, out_t])) == inp.num_parameters() + 2 * D
    assert out_t.num_parameters() == 4 * D + 2 * D + tails
    _, out_b = build_pair(bias=True)
    assert out_b.num_parameters() == head + tails + V


def test_wikitext103_adaptive_input_count_matches_the_paper_configuration():
    """ADP on WikiText-103: V=267,735, d=1024, cutoffs 20000,60000, factor 4 (embedding part only)."""
    c = Namespace(input_embedding="adaptive", output_layer="adaptive", adaptive_cutoffs="20000,60000",
                  adaptive_factor=4.0, tie_input_output=False)
    with torch.device("meta"):  # no memory needed to count
        inp = build_input_embedding(c, 267_735, 1024, padding_idx=1)
        out = build_output_layer(c, 267_735, 1024, inp)
        c.tie_input_output = True
        out_t = build_output_layer(c, 267_735, 1024, inp)
    assert inp.band_dims == [1024, 256, 64] and inp.cutoffs == [20000, 60000, 267_735]
    expected_in = input_params(1024, [20000, 40000, 207_735], [1024, 256, 64])
    assert inp.num_parameters() == expected_in == 45_391_296
    expected_out = 1024 * (20000 + 2) + (1024 * 256 + 40000 * 256) + (1024 * 64 + 207_735 * 64)
    assert out.num_parameters() == expected_out == 44_344_768
    tied_total = count_unique_parameters(nn.ModuleList([inp, out_t]))
    assert tied_total == expected_in + 2 * 1024
    print(f"\nWikiText-103 ADP embedding params: adaptive input {inp.num_parameters():,} "
          f"({100 * inp.num_parameters() / inp.standard_parameters():.1f}% of 267,735 x 1024); "
          f"adaptive softmax {out.num_parameters():,}; input+output untied "
          f"{inp.num_parameters() + out.num_parameters():,}, tied {tied_total:,} "
          f"(difference {inp.num_parameters() + out.num_parameters() - tied_total:,}; "
          f"paper: 291.3M ADP - 246.9M ADP-T = 44.4M)")


def test_tying_errors_name_the_flag():
    torch.manual_seed(0)
    c = cfg(tie_input_output=True)
    with pytest.raises(CompactConfigError, match="--tie-input-output.*standard"):
        build_output_layer(c, V, D, StandardEmbedding(V, D, 1))
    other = AdaptiveInput(V, D, [3, 8, 13], factor=2, padding_idx=1)
    with pytest.raises(CompactConfigError, match="--tie-input-output.*cutoffs"):
        build_output_layer(c, V, D, other)
    other = AdaptiveInput(V, D, CUTS, factor=4, padding_idx=1)
    with pytest.raises(CompactConfigError, match="--tie-input-output.*dims"):
        build_output_layer(c, V, D, other)
    other = AdaptiveInput(V, 2 * D, CUTS, factor=2, padding_idx=1)
    with pytest.raises(CompactConfigError, match="--tie-input-output.*dim 16 != .* 8"):
        build_output_layer(c, V, D, other)


# -- cutoff / factor validation -------------------------------------------------------------------
@pytest.mark.parametrize("spec,detail", [
    ("abc", "'abc'.*not an integer"),
    ("4,x", "'x'.*not an integer"),
    ("4,,8", "'' .*not an integer"),
    ("2.5", "'2.5'.*not an integer"),
    ("0,5", "<= 0"),
    ("-3", "<= 0"),
    ("5,5", "not strictly increasing"),
    ("8,4", "not strictly increasing"),
    ("4,13", "V=13.*automatically"),
    ("4,20", ">= the vocabulary size V=13"),
])
@pytest.mark.parametrize("side", ["input", "output"])
def test_bad_cutoffs_raise_with_the_flag(spec, detail, side):
    c = cfg(adaptive_cutoffs=spec)
    with pytest.raises(CompactConfigError, match="--adaptive-cutoffs") as err:
        if side == "input":
            build_input_embedding(c, V, D, 1)
        else:
            build_output_layer(c, V, D, None)
    assert re.search(detail, str(err.value)), str(err.value)


def test_empty_cutoffs_take_the_papers_fractions_of_the_vocabulary():
    assert parse_cutoffs("", 267_735) == [20080, 59973, 267_735]  # 7.5% and 22.4% (paper: 20000, 60000)
    assert parse_cutoffs("  ", 33_280) == [2496, 7455, 33_280]
    assert parse_cutoffs("", 13) == [1, 3, 13]
    assert parse_cutoffs(" 20000, 60000 ", 267_735) == [20000, 60000, 267_735]
    with pytest.raises(CompactConfigError, match="--adaptive-cutoffs: a vocabulary of V=1 words is too small"):
        parse_cutoffs("", 1)
    with pytest.raises(CompactConfigError, match=r"e.g. --adaptive-cutoffs 20080,59973"):
        parse_cutoffs("0", 267_735)


@pytest.mark.parametrize("factor", [0.5, 0.0, -2.0, float("nan")])
def test_factor_below_one_is_rejected(factor):
    for build in (lambda c: build_input_embedding(c, V, D, 1), lambda c: build_output_layer(c, V, D, None)):
        with pytest.raises(CompactConfigError, match="--adaptive-factor"):
            build(cfg(adaptive_factor=factor))


def test_factor_one_keeps_full_width_and_tiny_bands_keep_one_dim():
    inp = AdaptiveInput(V, D, CUTS, factor=1.0)
    assert inp.band_dims == [8, 8, 8]
    inp = AdaptiveInput(V, D, CUTS, factor=100.0)
    assert inp.band_dims == [8, 1, 1]
    assert inp(torch.tensor([12])).shape == (1, D)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_scores_are_normalised_in_float32(dtype):
    _, out = build_pair()
    ref_lp = out.log_probs(torch.ones(2, D))
    out = out.to(dtype)
    lp = out.log_probs(torch.ones(2, D, dtype=dtype))
    assert lp.dtype == torch.float32
    torch.testing.assert_close(lp.exp().sum(-1), torch.ones(2))
    torch.testing.assert_close(lp, ref_lp, atol=0.05, rtol=0.05)
    loss = out.loss(torch.ones(2, D, dtype=dtype), torch.tensor([0, 12]))
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, -(lp[0, 0] + lp[1, 12]))

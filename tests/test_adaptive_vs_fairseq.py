"""Our plain-PyTorch adaptive input / softmax compute what fairseq's modules compute.

fairseq's AdaptiveInput / AdaptiveSoftmax (with tie_adaptive_weights + tie_adaptive_proj) are
the reference implementation of Baevski & Auli (2019); with the same weights copied in, the
vectors, log-probabilities, losses and parameter counts must agree.
"""
import pytest
import torch
import torch.nn.functional as F
from fairseq.modules.adaptive_input import AdaptiveInput as FairseqAdaptiveInput
from fairseq.modules.adaptive_softmax import AdaptiveSoftmax as FairseqAdaptiveSoftmax
from torch import nn

from fairseq_compactemb.modules.adaptive_input import AdaptiveInput
from fairseq_compactemb.modules.adaptive_softmax_output import AdaptiveSoftmaxOutput
from fairseq_compactemb.modules.compact_input import count_unique_parameters

V, D, CUTS, FACTOR, PAD = 29, 16, [5, 12], 2.0, 1


def fairseq_input_like(ours: AdaptiveInput) -> FairseqAdaptiveInput:
    ref = FairseqAdaptiveInput(V, PAD, D, FACTOR, D, list(CUTS))
    with torch.no_grad():
        for i, seq in enumerate(ref.embeddings):
            seq[0].weight.copy_(ours.band_weights[i])
            seq[1].weight.copy_(ours.band_projections[i])
    return ref


def test_adaptive_input_matches_fairseq():
    torch.manual_seed(0)
    ours = AdaptiveInput(V, D, CUTS + [V], FACTOR, PAD)
    ref = fairseq_input_like(ours)
    tokens = torch.randint(0, V, (4, 9))
    tokens[0, :3] = PAD
    torch.testing.assert_close(ours(tokens), ref(tokens))
    assert ours.num_parameters() == count_unique_parameters(ref)


@pytest.mark.parametrize("tie", [False, True])
def test_adaptive_softmax_matches_fairseq(tie):
    torch.manual_seed(0)
    inp = AdaptiveInput(V, D, CUTS + [V], FACTOR, PAD)
    ours = AdaptiveSoftmaxOutput(V, D, CUTS + [V], FACTOR, tied_input=inp if tie else None)
    ref_inp = fairseq_input_like(inp)
    ref = FairseqAdaptiveSoftmax(V, D, list(CUTS), 0.0, factor=FACTOR,
                                 adaptive_inputs=ref_inp if tie else None, tie_proj=tie)
    with torch.no_grad():
        if tie:
            ref.head.class_proj.weight.copy_(ours.head_cluster_weight)
        else:
            ref.head.weight.copy_(torch.cat([ours.head_word_weight, ours.head_cluster_weight]))
            for i, seq in enumerate(ref.tail):
                seq[0].weight.copy_(ours.tail_projections[i].T)
                seq[2].weight.copy_(ours.tail_weights[i])
    ref.eval()
    h = torch.randn(3, 7, D)
    torch.testing.assert_close(ours.log_probs(h), ref.get_log_prob(h, None))
    # fairseq's adaptive_loss: cross-entropy of the head and of each tail on its own rows
    target = torch.randint(0, V, (3, 7))
    logits, new_target = ref(h, target)
    ref_loss = sum(F.cross_entropy(lg, t, reduction="sum") for lg, t in zip(logits, new_target)
                   if t is not None)
    torch.testing.assert_close(ours.loss(h.reshape(-1, D), target.reshape(-1)), ref_loss)
    ours_total = count_unique_parameters(nn.ModuleList([inp, ours]))
    ref_total = count_unique_parameters(nn.ModuleList([ref_inp, ref]))
    assert ours_total == ref_total

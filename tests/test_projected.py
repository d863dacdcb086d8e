"""``projected`` input embedding: V x e table then e -> d linear (ALBERT-style baseline)."""
from argparse import Namespace

import pytest
import torch
from torch.func import functional_call

from fairseq_compactemb.modules import CompactConfigError, build_input_embedding
from fairseq_compactemb.modules.projected_embedding import ProjectedEmbedding


def test_equals_table_times_projection_and_zeroes_padding():
    torch.manual_seed(0)
    emb = ProjectedEmbedding(11, 6, projected_dim=3, padding_idx=1)
    tokens = torch.tensor([[0, 1, 5, 10], [3, 3, 1, 7]])
    out = emb(tokens)
    assert out.shape == (2, 4, 6)
    ref = emb.weight[tokens] @ emb.projection.weight.T
    ref[tokens == 1] = 0.0
    torch.testing.assert_close(out, ref)
    assert torch.all(out[tokens == 1] == 0)
    assert not torch.all(out[tokens != 1] == 0, dim=-1).any()


def test_parameter_count_and_factory():
    cfg = Namespace(input_embedding="projected", projected_dim=128)
    emb = build_input_embedding(cfg, 267_735, 1024, padding_idx=1)
    assert isinstance(emb, ProjectedEmbedding)
    assert emb.num_parameters() == 267_735 * 128 + 128 * 1024 == 34_401_152
    assert emb.standard_parameters() == 267_735 * 1024


def test_gradcheck_float64():
    torch.manual_seed(0)
    emb = ProjectedEmbedding(7, 4, projected_dim=2, padding_idx=0).double()
    tokens = torch.tensor([[0, 3, 6], [2, 2, 5]])
    names = [n for n, _ in emb.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_() for p in emb.parameters())

    def f(*ps):
        return functional_call(emb, dict(zip(names, ps)), (tokens,))

    assert torch.autograd.gradcheck(f, params)


@pytest.mark.parametrize("bad", [0, -4])
def test_projected_dim_must_be_positive(bad):
    with pytest.raises(CompactConfigError, match="--projected-dim"):
        build_input_embedding(Namespace(input_embedding="projected", projected_dim=bad), 10, 8, 1)

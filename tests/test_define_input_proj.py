"""``--define-input-proj P``: the authors' dense projection of the map output (n -> P) before the
DeFINE levels, whose skip links and output block then take the projection."""
import argparse

import pytest
import torch
import torch.nn.functional as F

from fairseq_compactemb.modules import CompactConfigError, build_input_embedding
from fairseq_compactemb.modules.define_embedding import DeFINEEmbedding
from fairseq_compactemb.modules.define_input_projection import InputProjection

V, D, N, K, P = 50, 32, 16, 64, 24


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def unit(input_proj=P, **kw):
    return DeFINEEmbedding(V, D, 1, map_dim=N, expand_dim=K, levels=3, max_groups=4, input_proj=input_proj, **kw)


def test_the_levels_and_the_reduce_block_take_the_projection():
    emb, plain = unit(), unit(0)
    assert isinstance(emb.input_proj, InputProjection) and plain.input_proj is None
    assert emb.input_proj.linear.weight.shape == (P, N)
    assert emb.expand.plan[0].in_dim == P and emb.expand.map_dim == P
    assert all(s.in_dim == prev + P for s, prev in zip(emb.expand.plan[1:], emb.expand.widths))  # the skip carries P
    assert emb.reduce.in_features == D + P  # the authors' reduce: concat(projection, last level)
    # the authors' widths start at P: linspace(P, k, N)[1:], rounded up to multiples of 8
    assert emb.expand.widths == (48, 64, D) and plain.expand.widths == (40, 64, D)
    extra = (N * P + P) + 2 * P  # Linear + LayerNorm; the levels' and reduce's sizes change too
    assert sum(p.numel() for p in emb.input_proj.parameters()) == extra


def test_vectors_are_map_then_projection_then_levels_then_reduce():
    emb = unit().eval()
    ids = torch.tensor([[2, 5, 7], [7, 1, 3]])
    e = emb.map_layer(ids) * emb.map_scale
    x = F.gelu(F.layer_norm(e @ emb.input_proj.linear.weight.T + emb.input_proj.linear.bias, (P,),
                            emb.input_proj.norm.weight, emb.input_proj.norm.bias))
    y = emb.expand(x)
    want = F.gelu(emb.reduce_norm(emb.reduce(torch.cat([x, y], -1)))) * emb.out_scale
    want[ids == 1] = 0  # padding
    torch.testing.assert_close(emb(ids), want)


def test_starts_like_the_authors_dense_block_and_trains():
    emb = unit().train()
    proj = emb.input_proj
    assert torch.equal(proj.linear.bias, torch.zeros(P)) and torch.equal(proj.norm.weight, torch.ones(P))
    bound = (6 / (N + P)) ** 0.5  # Xavier-uniform
    assert proj.linear.weight.abs().max() <= bound and proj.linear.weight.std() > bound / 3
    emb(torch.randint(2, V, (4, 9))).square().sum().backward()
    for name, p in emb.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_dropout_also_follows_the_projection_and_compute_table_has_none():
    emb = unit(dropout=0.5).train()
    assert emb.input_proj.dropout.p == 0.5
    out = emb(torch.full((2, 6), 7))
    assert not torch.allclose(out, out[:, :1].expand_as(out))  # a mask per position
    torch.testing.assert_close(emb.compute_table(), emb.eval().compute_table())


def test_state_dict_round_trip_and_cached_table():
    emb = unit().eval()
    twin = unit()
    twin.load_state_dict(emb.state_dict())
    ids = torch.randint(0, V, (3, 5))
    torch.testing.assert_close(twin.eval()(ids), emb(ids))
    emb.cache_table()
    torch.testing.assert_close(emb(ids), twin(ids))


def test_flag_config_and_configs_without_it():
    cfg = argparse.Namespace(input_embedding="define", define_map_dim=N, define_expand_dim=K, define_levels=3,
                             define_max_groups=4, define_input_proj=P)
    emb = build_input_embedding(cfg, V, D, 1)
    assert emb.options["input_proj"] == P and emb.input_proj is not None
    del cfg.define_input_proj  # a config written before the flag: no projection, the unit it trained
    old = build_input_embedding(cfg, V, D, 1)
    assert old.input_proj is None and not any(k.startswith("input_proj") for k in old.state_dict())
    assert old.twin_sharing_map().input_proj is None and emb.twin_sharing_map().input_proj is not None


@pytest.mark.parametrize("bad", [-1, 2.5, True])
def test_bad_width_names_the_flag(bad):
    with pytest.raises(CompactConfigError) as e:
        unit(bad)
    assert e.value.flag == "--define-input-proj"


def test_a_width_the_groups_do_not_split_names_the_flag():
    with pytest.raises(CompactConfigError) as e:
        unit(30)  # 30 is not a multiple of the 4 groups its first level splits it into
    assert e.value.flag == "--define-input-proj" and "P=30" in str(e.value)
    with pytest.raises(CompactConfigError) as e:
        DeFINEEmbedding(V, D, 1, map_dim=18, expand_dim=K, levels=3, max_groups=4)
    assert e.value.flag == "--define-map-dim"  # without the projection it is still n's error

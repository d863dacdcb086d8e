"""``--define-map-dropout-mask``: DeFINE's map-layer dropout with a mask per token (``token``) or
per sequence (``sequence``, the authors' ``RecurrentDropout``), and the shared ``LockedDropout``."""
import argparse

import pytest
import torch

from fairseq_compactemb.modules import CompactConfigError, build_input_embedding
from fairseq_compactemb.modules.awd_regularization import LockedDropout
from fairseq_compactemb.modules.define_embedding import DeFINEEmbedding

V, D = 50, 32


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def unit(mask, map_dropout=0.5):
    return DeFINEEmbedding(V, D, 1, map_dim=16, expand_dim=64, levels=3, max_groups=4,
                           map_dropout=map_dropout, map_dropout_mask=mask)


def test_locked_dropout_shares_its_mask_over_time_and_falls_back_to_rows_without_a_time_axis():
    drop = LockedDropout(0.5).train()
    for shape in [(3, 7, 10), (2, 3, 7, 10)]:
        y = drop(torch.ones(shape))
        assert torch.equal(y, y[..., :1, :].expand(shape))  # the same mask at every time step
        assert set(y.unique().tolist()) <= {0.0, 2.0} and 0 < y.count_nonzero() < y.numel()
    y = drop(torch.ones(200, 10))  # [M, D]: a mask per row
    assert not torch.equal(y, y[:1].expand(200, 10))
    x = torch.randn(3, 7, 10)
    assert torch.equal(drop.eval()(x), x)


@pytest.mark.parametrize("mask", ["token", "sequence"])
def test_repeated_word_in_a_sequence_gets_one_vector_only_with_the_sequence_mask(mask):
    emb = unit(mask).train()
    tokens = torch.full((4, 9), 7)  # every position the same word
    out = emb(tokens)
    same_over_time = torch.allclose(out, out[:, :1].expand_as(out))
    assert same_over_time == (mask == "sequence")
    assert not torch.allclose(out[0], out[1])  # the sequences' masks differ either way
    out.square().sum().backward()
    assert emb.map_layer.weight.grad[7].abs().sum() > 0
    # eval: no dropout, both masks give the plain unit
    torch.testing.assert_close(emb.eval()(tokens), emb.vectors(torch.tensor([7])).expand(4, 9, D))


def test_compute_table_has_no_dropout_even_in_training_mode():
    emb = unit("sequence").train()
    table = emb.compute_table()
    assert emb.training
    torch.testing.assert_close(table, emb.eval().compute_table())


def test_the_mask_is_a_flag_a_config_and_checkpoints_without_it_get_token():
    cfg = argparse.Namespace(input_embedding="define", define_map_dim=16, define_expand_dim=64, define_levels=3,
                             define_max_groups=4, define_map_dropout=0.1, define_map_dropout_mask="sequence")
    emb = build_input_embedding(cfg, V, D, 1)
    assert isinstance(emb.map_dropout, LockedDropout) and emb.options["map_dropout_mask"] == "sequence"
    del cfg.define_map_dropout_mask  # a config written before the flag
    assert isinstance(build_input_embedding(cfg, V, D, 1).map_dropout, torch.nn.Dropout)
    with pytest.raises(CompactConfigError) as e:
        unit("word")
    assert e.value.flag == "--define-map-dropout-mask"

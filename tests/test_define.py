"""DeFINE (Mehta et al. 2020): group linear, mixer, HGT variants, embedding, cache, errors."""
import argparse

import pytest
import torch
import torch.nn.functional as F

from fairseq_compactemb.modules import CompactConfigError, build_input_embedding
from fairseq_compactemb.modules.define_embedding import DeFINEEmbedding
from fairseq_compactemb.modules.define_export import define_to_standard, replace_define_with_standard
from fairseq_compactemb.modules.hierarchical_group_transform import (
    VARIANTS,
    GroupLinear,
    HierarchicalGroupTransform,
    mix,
    plan_levels,
)
from fairseq_compactemb.modules.standard_embedding import StandardEmbedding


# our first unit (the norm reduce, no dropout): most tests below check its arithmetic by hand;
# the default (the authors' unit without dropout, the best measured in examples/ptb_awd_define)
# and the authors' whole unit (AUTHORS) have their own
OURS = dict(reduce="norm", widths="linear", level_norm="group", init="uniform", dropout=0.0, map_dropout=0.0)


def ours_unit(*args, **kw):
    return DeFINEEmbedding(*args, **dict(OURS, **kw))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def act(name, y, slope=None):
    if name == "gelu":
        return F.gelu(y)
    if name == "relu":
        return F.relu(y)
    return torch.where(y >= 0, y, slope * y)


def randomise(module):
    """Non-trivial LayerNorm affine / PReLU slopes so the references test them too."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if "norm" in name or "prelu" in name:
                p.uniform_(-1.5, 1.5)
    return module


# -- group linear ------------------------------------------------------------------------------
def test_group_linear_equals_block_diagonal_dense_matrix():
    lin = GroupLinear(12, 8, groups=4)
    assert lin.weight.shape == (4, 3, 2)  # one batched weight, not a loop of Linear modules
    dense = torch.block_diag(*[lin.weight[j].t() for j in range(4)])  # [out=8, in=12]
    assert dense.shape == (8, 12)
    x = torch.randn(2, 5, 12)
    torch.testing.assert_close(lin(x), F.linear(x, dense, lin.bias.reshape(-1)))
    # off-diagonal blocks really are zero: output chunk 0 ignores input chunk 1
    x2 = x.clone()
    x2[..., 3:6] += 1.0
    assert torch.equal(lin(x)[..., 0:2], lin(x2)[..., 0:2])
    assert not torch.equal(lin(x)[..., 2:4], lin(x2)[..., 2:4])


# -- mixer -------------------------------------------------------------------------------------
def test_mix_matches_hand_written_interleaving():
    e = torch.tensor([10.0, 11, 12, 13])        # n = 4
    y = torch.tensor([0.0, 1, 2, 3, 4, 5])      # w = 6
    assert mix(e, y, 2).tolist() == [10, 11, 0, 1, 2, 12, 13, 3, 4, 5]
    assert mix(e, y, 1).tolist() == [10, 11, 12, 13, 0, 1, 2, 3, 4, 5]
    # batched leading dims keep the same per-row order
    eb, yb = e.expand(3, 2, 4), y.expand(3, 2, 6)
    assert torch.equal(mix(eb, yb, 2), mix(e, y, 2).expand(3, 2, 10))


def level_ref(layer, x, activation):
    """Hand-built reference of one level: block-diagonal dense layer, LayerNorm per group, act."""
    g = layer.linear.groups
    dense = torch.block_diag(*[layer.linear.weight[j].t() for j in range(g)])
    y = F.linear(x, dense, layer.linear.bias.reshape(-1))
    chunks = y.chunk(g, dim=-1)
    out = []
    for j, c in enumerate(chunks):
        c = F.layer_norm(c, c.shape[-1:], layer.norm_weight[j], layer.norm_bias[j])
        out.append(act(activation, c, None if layer.prelu_weight is None else layer.prelu_weight[j]))
    return torch.cat(out, -1)


@pytest.mark.parametrize("activation", ["gelu", "relu", "prelu"])
def test_define_two_levels_against_hand_reference(activation):
    # n=4, k=12, N=2, g_max=2: level 0 (2 groups) 4 -> 8, level 1 (1 group) 4+8 -> 12
    hgt = randomise(HierarchicalGroupTransform(4, 12, 2, 2, "define", activation))
    assert hgt.widths == (8, 12) and hgt.groups == (2, 1)
    e = torch.randn(5, 4)
    y0 = level_ref(hgt.levels[0], e, activation)
    y1 = level_ref(hgt.levels[1], torch.cat([e, y0], -1), activation)
    torch.testing.assert_close(hgt(e), y1)


def test_define_mixer_vs_no_mixer_three_levels_against_hand_reference():
    # n=4, k=16, N=3, g_max=4: groups 4, 2, 1; widths 8, 12, 16 (no rounding needed)
    ref = {}
    for variant in ("define", "define_no_mixer"):
        torch.manual_seed(1)  # identical weights for both variants (same shapes)
        hgt = randomise(HierarchicalGroupTransform(4, 16, 3, 4, variant, "gelu"))
        assert hgt.widths == (8, 12, 16) and hgt.groups == (4, 2, 1)
        e = torch.arange(20.0).reshape(5, 4) / 7 - 1
        y0 = level_ref(hgt.levels[0], e, "gelu")
        if variant == "define":  # hand-written split + mix of e (2 chunks of 2) and y0 (2 of 4)
            x1 = torch.cat([e[:, 0:2], y0[:, 0:4], e[:, 2:4], y0[:, 4:8]], -1)
        else:
            x1 = torch.cat([e, y0], -1)
        y1 = level_ref(hgt.levels[1], x1, "gelu")
        y2 = level_ref(hgt.levels[2], torch.cat([e, y1], -1), "gelu")
        torch.testing.assert_close(hgt(e), y2)
        ref[variant] = hgt(e)
    assert not torch.allclose(ref["define"], ref["define_no_mixer"])


def test_hgt_group_and_linear_against_hand_reference():
    e = torch.randn(3, 8)
    hgt = randomise(HierarchicalGroupTransform(8, 16, 3, 4, "hgt", "relu"))
    grp = randomise(HierarchicalGroupTransform(8, 16, 3, 4, "group", "relu"))
    lin = randomise(HierarchicalGroupTransform(8, 16, 3, 4, "linear", "relu"))
    assert hgt.groups == (4, 2, 1) and grp.groups == (4, 4, 4) and lin.groups == (1, 1, 1)
    for m in (hgt, grp, lin):
        # no skip: the input of a level is the previous level's output
        assert [s.in_dim for s in m.plan] == [8] + [s.out_dim for s in m.plan[:-1]]
    assert [s.out_dim for s in hgt.plan] == [12, 14, 16]
    assert [s.out_dim for s in grp.plan] == [12, 16, 16]
    assert [s.out_dim for s in lin.plan] == [10, 13, 16]
    for m in (hgt, grp, lin):
        y = e
        for level in m.levels:
            y = level_ref(level, y, "relu")
        torch.testing.assert_close(m(e), y)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("activation,reduce", [("gelu", "norm"), ("relu", "linear"), ("prelu", "norm")])
def test_one_level_one_group_is_linear_layernorm_activation(variant, activation, reduce):
    """N=1, g=1: every variant is  act(LayerNorm(e W + b)), then reduce; built by hand."""
    emb = randomise(ours_unit(20, 6, None, map_dim=5, expand_dim=7, levels=1, max_groups=1,
                                    transform=variant, activation=activation, reduce=reduce))
    layer = emb.expand.levels[0]
    tokens = torch.tensor([[0, 3, 19], [7, 7, 1]])
    e = emb.map_layer.weight[tokens] * 5 ** 0.5  # the table is stored at 1/sqrt(n)
    y = e @ layer.linear.weight[0] + layer.linear.bias[0]
    y = F.layer_norm(y, (7,), layer.norm_weight[0], layer.norm_bias[0])
    y = act(activation, y, None if layer.prelu_weight is None else layer.prelu_weight[0, 0])
    ref = y @ emb.reduce.weight.t() + emb.reduce.bias
    if reduce == "norm":
        ref = F.layer_norm(ref, (6,), emb.reduce_norm.weight, emb.reduce_norm.bias)
    else:
        assert emb.reduce_norm is None
    torch.testing.assert_close(emb(tokens), ref)


# -- plan, shapes ------------------------------------------------------------------------------
def test_widths_rounding_rule():
    # raw widths 8 + 56*(l+1)//3 = 26, 45, 64; rounded up to multiples of groups 4, 2, 1
    plan = plan_levels(8, 64, 3, 4, "define")
    assert [(s.in_dim, s.out_dim, s.groups, s.skip) for s in plan] == [
        (8, 28, 4, "none"), (8 + 28, 46, 2, "mix"), (8 + 46, 64, 1, "mix")]
    assert [s.out_dim for s in plan_levels(8, 64, 3, 4, "group")] == [28, 48, 64]
    assert [s.out_dim for s in plan_levels(8, 64, 3, 4, "linear")] == [26, 45, 64]
    # PTB setting: n=128, k=1024, N=7, g_max=4 -> 256, 384, ..., 1024; groups 4, 2, 1, 1, ...
    ptb = plan_levels(128, 1024, 7, 4, "define")
    assert [s.out_dim for s in ptb] == [256, 384, 512, 640, 768, 896, 1024]
    assert [s.groups for s in ptb] == [4, 2, 1, 1, 1, 1, 1]
    # shrinking (k < n) is allowed
    assert [s.out_dim for s in plan_levels(16, 8, 2, 2, "hgt")] == [12, 8]


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("n,k,levels,g_max", [(8, 32, 1, 1), (8, 32, 3, 4), (16, 48, 4, 8), (4, 64, 5, 2)])
def test_output_shapes(variant, n, k, levels, g_max):
    emb = ours_unit(30, 10, 0, map_dim=n, expand_dim=k, levels=levels, max_groups=g_max,
                          transform=variant)
    assert emb.expand(torch.randn(2, 3, n)).shape == (2, 3, k)
    assert emb.expand.widths[-1] == k and len(emb.expand.levels) == levels
    tokens = torch.randint(0, 30, (4, 7))
    assert emb(tokens).shape == (4, 7, 10)
    assert emb(tokens[0, 0]).shape == (10,)  # 0-d ids work too


def test_padding_gives_zeros_and_no_map_gradient():
    emb = ours_unit(12, 6, padding_idx=2, map_dim=4, expand_dim=8, levels=2, max_groups=2)
    tokens = torch.tensor([[2, 5, 2, 7], [1, 2, 2, 2]])
    out = emb(tokens)
    assert torch.equal(out[tokens == 2], torch.zeros(5, 6))
    assert out[tokens != 2].abs().sum(-1).gt(0).all()
    out.sum().backward()
    assert torch.equal(emb.map_layer.weight.grad[2], torch.zeros(4))


def test_unique_id_path_equals_per_position_computation():
    emb = ours_unit(50, 6, None, map_dim=8, expand_dim=16, levels=3, max_groups=4)
    tokens = torch.randint(0, 50, (3, 11))
    per_position = emb.vectors(tokens.reshape(-1)).reshape(3, 11, 6)
    torch.testing.assert_close(emb(tokens), per_position)


# -- gradients ---------------------------------------------------------------------------------
@pytest.mark.parametrize("variant", VARIANTS)
def test_gradcheck_float64(variant):
    hgt = randomise(HierarchicalGroupTransform(4, 8, 3, 2, variant, "prelu")).double()
    names = [n for n, _ in hgt.named_parameters()]
    params = [p.detach().clone().requires_grad_(True) for p in hgt.parameters()]
    e = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)

    def f(e, *ps):
        return torch.func.functional_call(hgt, dict(zip(names, ps)), (e,))

    assert torch.autograd.gradcheck(f, (e, *params), eps=1e-6, atol=1e-5)


def test_gradcheck_embedding_map_table_float64():
    emb = randomise(ours_unit(6, 3, 1, map_dim=4, expand_dim=8, levels=2, max_groups=2,
                                    activation="gelu")).double()
    tokens = torch.tensor([[0, 1, 5], [5, 2, 3]])
    table = emb.map_layer.weight.detach().clone().requires_grad_(True)

    def f(table):
        return torch.func.functional_call(emb, {"map_layer.weight": table}, (tokens,))

    assert torch.autograd.gradcheck(f, (table,), eps=1e-6, atol=1e-5)


# -- inference cache / export ------------------------------------------------------------------
def make_emb():
    return ours_unit(40, 6, padding_idx=1, map_dim=8, expand_dim=16, levels=3, max_groups=4)


def test_cache_equals_uncached_and_is_a_lookup():
    emb = make_emb().eval()
    tokens = torch.randint(0, 40, (5, 9))
    tokens[0, :3] = 1
    uncached = emb(tokens)
    table = emb.cache_table(chunk_size=7)  # chunks not dividing V
    assert emb.is_cached and table.shape == (40, 6)
    assert "cached_table" not in emb.state_dict()
    assert emb.num_parameters() == sum(p.numel() for p in emb.parameters())
    torch.testing.assert_close(emb(tokens), uncached, rtol=0, atol=1e-6)
    # the cached path really is a lookup: it no longer touches the expansion
    emb.expand.forward = None
    torch.testing.assert_close(emb(tokens), uncached, rtol=0, atol=1e-6)


def test_cache_refused_in_training_and_dropped_by_train():
    emb = make_emb()
    with pytest.raises(RuntimeError, match="eval"):
        emb.cache_table()
    emb.eval()
    stale = emb.cache_table().clone()
    emb.train()
    assert not emb.is_cached
    opt = torch.optim.SGD(emb.parameters(), lr=1.0)
    tokens = torch.arange(40)
    emb(tokens).pow(2).sum().backward()
    opt.step()
    fresh = emb.vectors(tokens).masked_fill(tokens.eq(1).unsqueeze(-1), 0)
    out = emb(tokens)
    torch.testing.assert_close(out, fresh)
    assert not torch.allclose(out, stale)
    # and back in eval mode without a new cache_table(): still the fresh computation
    emb.eval()
    torch.testing.assert_close(emb(tokens), fresh)


def test_parent_train_drops_cache():
    model = torch.nn.Sequential(make_emb()).eval()
    model[0].cache_table()
    model.train()
    assert not model[0].is_cached


def test_cache_dropped_when_weights_change_in_eval_mode():
    emb = make_emb().eval()
    tokens = torch.arange(40)
    emb.cache_table()
    other = make_emb()
    emb.load_state_dict(other.state_dict())  # new weights while in eval mode
    with pytest.warns(UserWarning, match="cache_table"):
        out = emb(tokens)
    assert not emb.is_cached
    torch.testing.assert_close(out, other.eval()(tokens))


def test_export_to_standard_table():
    emb = make_emb()
    tokens = torch.randint(0, 40, (4, 6))
    tokens[0, 0] = 1
    std = define_to_standard(emb)
    assert isinstance(std, StandardEmbedding) and std.weight.shape == (40, 6)
    torch.testing.assert_close(std(tokens), emb(tokens), rtol=0, atol=1e-6)
    assert emb.training and not emb.is_cached  # no side effect on the source

    model = torch.nn.ModuleDict({"enc": emb, "dec": emb, "other": torch.nn.Linear(2, 2)})
    ref = emb(tokens)
    assert replace_define_with_standard(model) == 1
    assert isinstance(model["enc"], StandardEmbedding) and model["enc"] is model["dec"]
    torch.testing.assert_close(model["enc"](tokens), ref, rtol=0, atol=1e-6)


# -- config, registry, errors ------------------------------------------------------------------
def cfg(**kw):
    base = dict(input_embedding="define", define_map_dim=8, define_expand_dim=32, define_levels=3,
                define_max_groups=4, define_transform="define", define_activation="gelu")
    base.update(kw)
    return argparse.Namespace(**base)


def test_built_from_config_through_the_factory():
    emb = build_input_embedding(cfg(define_activation="prelu"), 50, 12, 1)
    assert isinstance(emb, DeFINEEmbedding)
    # the defaults: the authors' unit without its dropouts - their widths (linspace(8, 32, 3)[1:]
    # rounded to multiples of 8, the last level outputs d), groups 4, 2, 1, one LayerNorm per
    # level, Xavier weights and zero biases, their reduce reading concat(map output, last level)
    assert emb.expand.widths == (24, 32, 12) and emb.expand.groups == (4, 2, 1)
    assert emb.map_layer.weight.shape == (50, 8) and emb.reduce.weight.shape == (12, 12 + 8)
    assert emb.reduce_kind == "authors" and emb.options["dropout"] == emb.options["map_dropout"] == 0.0
    assert emb.options["level_norm"] == "shared" and emb.options["init"] == "xavier"
    level_biases = [p for n, p in emb.expand.named_parameters() if n.endswith("bias") and "norm" not in n]
    assert level_biases and all(bool((b == 0).all()) for b in level_biases)
    authors = build_input_embedding(cfg(define_dropout=0.1, define_map_dropout=0.1), 50, 12, 1)
    assert authors.expand.widths == emb.expand.widths and authors.any_dropout and not emb.any_dropout
    ours = build_input_embedding(cfg(define_reduce="norm", define_widths="linear", define_level_norm="group"), 50, 12, 1)
    assert ours.expand.widths == (16, 24, 32) and ours.reduce.weight.shape == (12, 32) and ours.reduce_norm is not None
    assert build_input_embedding(cfg(define_reduce="linear"), 50, 12, 1).reduce_norm is None


@pytest.mark.parametrize("overrides,flag", [
    (dict(define_map_dim=0), "--define-map-dim"),
    (dict(define_expand_dim=-3), "--define-expand-dim"),
    (dict(define_levels=0), "--define-levels"),
    (dict(define_max_groups=0), "--define-max-groups"),
    (dict(define_max_groups=6), "--define-max-groups"),
    (dict(define_transform="hgt2"), "--define-transform"),
    (dict(define_activation="tanh"), "--define-activation"),
    (dict(define_reduce="mlp"), "--define-reduce"),
    # map dim not divisible by g_max (first level / mixer split)
    (dict(define_map_dim=10), "--define-map-dim"),
    (dict(define_map_dim=10, define_transform="group"), "--define-map-dim"),
    # expand dim not divisible by the groups of the last level
    (dict(define_expand_dim=33, define_levels=2, define_widths="linear"), "--define-expand-dim"),  # last level: 2 groups
    (dict(define_expand_dim=30, define_transform="group", define_widths="linear"), "--define-expand-dim"),  # 4 groups
])
def test_config_errors_name_the_flag(overrides, flag):
    with pytest.raises(CompactConfigError, match=flag):
        build_input_embedding(cfg(**overrides), 50, 12, 1)


def test_valid_edge_configs_are_accepted():
    build_input_embedding(cfg(define_expand_dim=30), 50, 12, 1)  # N=3: last level has 1 group
    build_input_embedding(cfg(define_map_dim=10, define_transform="linear"), 50, 12, 1)


# -- parameter count ---------------------------------------------------------------------------
def test_parameter_count_by_hand():
    # V=100, d=16, n=8, k=64, N=3, g_max=4 -> widths 28, 46, 64; groups 4, 2, 1
    emb = ours_unit(100, 16, 1, map_dim=8, expand_dim=64, levels=3, max_groups=4)
    table = 100 * 8
    level0 = 8 * 28 // 4 + 28 + 2 * 28                # weight/g + bias + LayerNorm scale/shift
    level1 = (8 + 28) * 46 // 2 + 46 + 2 * 46         # input: map output mixed with level 0
    level2 = (8 + 46) * 64 + 64 + 2 * 64
    reduce = 64 * 16 + 16
    reduce_norm = 2 * 16                              # --define-reduce norm (the default)
    assert emb.num_parameters() == table + level0 + level1 + level2 + reduce + reduce_norm == 6626
    assert emb.standard_parameters() == 100 * 16
    prelu = ours_unit(100, 16, 1, map_dim=8, expand_dim=64, levels=3, max_groups=4,
                            activation="prelu")
    assert prelu.num_parameters() == 6626 + 4 + 2 + 1  # one slope per group
    linear = ours_unit(100, 16, 1, map_dim=8, expand_dim=64, levels=3, max_groups=4, reduce="linear")
    assert linear.num_parameters() == 6626 - reduce_norm


# -- the DeFINE paper's low-dimensional output layer: a softmax tied to the map table ---------
def test_softmax_tied_to_define_shares_the_map_table_exactly():
    from fairseq_compactemb.modules.softmax_output import SoftmaxOutput

    torch.manual_seed(0)
    emb = ours_unit(50, 24, padding_idx=1, map_dim=8, expand_dim=16, levels=2, max_groups=2)
    out = SoftmaxOutput(50, 8, tied_input=emb)
    assert out.weight is emb.map_layer.weight
    hidden = torch.randn(3, 5, 8)
    # the table as stored (N(0, 1/n), like an untied softmax); only the input side scales it
    torch.testing.assert_close(out.logits(hidden), hidden @ emb.map_layer.weight.t())
    ids = torch.tensor([3, 7, 7, 49])
    torch.testing.assert_close(out.score(hidden.view(-1, 8), ids), out.logits(hidden).view(-1, 50)[:, ids])
    targets = torch.randint(0, 50, (15,))
    full = out.logits(hidden).view(-1, 50)
    torch.testing.assert_close(out.score_targets(hidden.view(-1, 8), targets), full[torch.arange(15), targets])
    t_logits, s_logits = out.score_sample(hidden.view(-1, 8), targets, ids)
    torch.testing.assert_close(t_logits, full[torch.arange(15), targets])
    torch.testing.assert_close(s_logits, full[:, ids])
    # one tensor, so the output loss trains the map table the input uses
    out.logits(hidden).sum().backward()
    assert emb.map_layer.weight.grad is not None and emb.map_layer.weight.grad.abs().sum() > 0


def test_softmax_tied_to_define_with_wrong_dim_names_the_flags():
    from fairseq_compactemb.modules.softmax_output import SoftmaxOutput

    emb = ours_unit(50, 24, map_dim=8, expand_dim=16, levels=2, max_groups=2)
    with pytest.raises(CompactConfigError) as e:
        SoftmaxOutput(50, 24, tied_input=emb)
    assert e.value.flag == "--tie-input-output" and "--decoder-output-dim 8" in str(e.value)
    with pytest.raises(CompactConfigError, match="vocabulary"):
        SoftmaxOutput(51, 8, tied_input=emb)


@pytest.mark.parametrize("arch", ["awd_lstm_lm_ptb", "compact_lstm_lm"])
def test_lm_tied_to_define_outputs_map_dim_states(arch):
    from fairseq_compactemb.model_size import build_for_vocab, count_parameters

    flags = ["--input-embedding", "define", "--define-map-dim", "16", "--define-expand-dim", "32",
             "--define-levels", "2", "--define-max-groups", "2", "--decoder-embed-dim", "40",
             "--decoder-hidden-size", "48", "--decoder-layers", "2"]
    tied = build_for_vocab(arch, 1000, flags + ["--tie-input-output"])
    untied = build_for_vocab(arch, 1000, flags)
    out = tied.decoder.compact_output
    assert out.input_dim == 16 and out.weight is tied.decoder.embed_tokens.map_layer.weight
    # the tie saves the V x H output table, and the output table shrinks to the map size
    assert count_parameters(tied) < count_parameters(untied) - 1000 * 16


@pytest.mark.parametrize("d,n,k,levels,activation", [
    (256, 64, 512, 3, "gelu"), (200, 64, 256, 3, "relu"), (1024, 128, 1024, 7, "prelu")])
def test_initial_vectors_have_the_standard_table_scale(d, n, k, levels, activation):
    # models scale embeddings by sqrt(d) assuming a N(0, d^-0.5) table: DeFINE must start there too
    torch.manual_seed(0)
    emb = ours_unit(3000, d, padding_idx=1, map_dim=n, expand_dim=k, levels=levels,
                          max_groups=4, activation=activation)
    std = emb(torch.randint(4, 3000, (32, 16))).std().item()
    assert 0.7 * d ** -0.5 < std < 1.3 * d ** -0.5
    assert torch.count_nonzero(emb.reduce.bias) == 0


def test_translation_model_tied_to_define_projects_to_map_dim():
    from fairseq_compactemb.model_size import build_for_vocab, count_parameters

    flags = ["--share-all-embeddings", "--encoder-layers", "1", "--decoder-layers", "1",
             "--encoder-embed-dim", "32", "--decoder-embed-dim", "32", "--encoder-ffn-embed-dim", "64",
             "--decoder-ffn-embed-dim", "64", "--encoder-attention-heads", "2", "--decoder-attention-heads", "2",
             "--input-embedding", "define", "--define-map-dim", "8", "--define-expand-dim", "32",
             "--define-levels", "2", "--define-max-groups", "2"]
    tied = build_for_vocab("compact_transformer", 500, flags + ["--tie-input-output"])
    untied = build_for_vocab("compact_transformer", 500, flags + ["--no-tie-input-output"])
    out = tied.decoder.compact_output
    assert out.input_dim == 8 and out.weight is tied.encoder.embed_tokens.map_layer.weight
    assert count_parameters(untied) - count_parameters(tied) == 500 * 32 - 32 * 8  # V x d table out, d -> n in


# -- map table scale: stored at 1/sqrt(n), scaled by sqrt(n) on the input side only ------------
def test_map_table_is_stored_at_inverse_sqrt_n_and_scaled_on_input():
    torch.manual_seed(0)
    n = 64
    emb = ours_unit(4000, 32, padding_idx=1, map_dim=n, expand_dim=128, levels=2, max_groups=2)
    table = emb.map_layer.weight
    assert abs(table.std().item() - n ** -0.5) < 0.05 * n ** -0.5
    assert torch.equal(table[1], torch.zeros(n))
    assert emb.map_scale.item() == pytest.approx(n ** 0.5)
    assert "map_scale" in emb.state_dict()  # marks the layout in checkpoints
    # the expand step sees unit-scale vectors, as the LayerNorm-ed levels it is concatenated with
    seen = {}
    emb.expand.register_forward_pre_hook(lambda m, args: seen.setdefault("e", args[0]))
    emb(torch.arange(2, 4000))
    assert abs(seen["e"].std().item() - 1.0) < 0.05


def legacy_state_dict(emb):
    """The layout written before ``map_scale`` and ``--define-reduce`` existed: unit-scale table,
    no map_scale entry, plain linear reduce (no reduce_norm entries)."""
    assert emb.reduce_norm is None
    state = {k: v.clone() for k, v in emb.state_dict().items() if k != "map_scale"}
    state["map_layer.weight"] = state["map_layer.weight"] * emb.map_scale
    return state


def test_legacy_checkpoint_layout_loads_to_identical_embeddings_and_tied_logits():
    from fairseq_compactemb.modules.softmax_output import SoftmaxOutput

    torch.manual_seed(0)
    src = randomise(ours_unit(30, 12, padding_idx=1, map_dim=8, expand_dim=16, levels=2, max_groups=2,
                                    reduce="linear"))
    old = legacy_state_dict(src)
    # built as fairseq builds it from the old saved config (no define_reduce: the default, norm)
    dst = ours_unit(30, 12, padding_idx=1, map_dim=8, expand_dim=16, levels=2, max_groups=2)
    with pytest.warns(UserWarning, match="trained with --define-reduce linear --define-widths linear"):
        dst.load_state_dict(old)  # strict: map_scale is supplied, the reduce norm dropped
    assert dst.reduce_norm is None
    tokens = torch.randint(0, 30, (4, 6))
    torch.testing.assert_close(dst(tokens), src(tokens))
    hidden = torch.randn(5, 8)
    # the old tied softmax computed (hidden * n^-0.5) @ unit_table.T
    torch.testing.assert_close(SoftmaxOutput(30, 8, tied_input=dst).logits(hidden),
                               (hidden * 8 ** -0.5) @ old["map_layer.weight"].t())
    # nested prefix (a whole model's state dict) converts too; a current dict loads unchanged
    wrapper, wrapper2 = torch.nn.Sequential(dst), torch.nn.Sequential(src)
    wrapper.load_state_dict({"0." + k: v for k, v in legacy_state_dict(src).items()})
    torch.testing.assert_close(wrapper(tokens), src(tokens))
    wrapper.load_state_dict(wrapper2.state_dict())
    torch.testing.assert_close(wrapper(tokens), src(tokens))


def test_tied_output_trains_like_an_untied_softmax_under_sgd():
    """One SGD step on the output loss moves the tied logits exactly as it moves those of an
    untied softmax holding the same matrix (the old n^-0.5-scaled tie moved them n times less)."""
    from fairseq_compactemb.modules.softmax_output import SoftmaxOutput

    torch.manual_seed(0)
    emb = ours_unit(40, 12, None, map_dim=16, expand_dim=32, levels=2, max_groups=2)
    tied = SoftmaxOutput(40, 16, tied_input=emb)
    untied = SoftmaxOutput(40, 16)
    with torch.no_grad():
        untied.weight.copy_(emb.map_layer.weight)
    hidden, targets = torch.randn(6, 16), torch.randint(0, 40, (6,))
    for layer in (tied, untied):
        F.cross_entropy(layer.logits(hidden), targets).backward()
        with torch.no_grad():
            layer.weight -= 1.0 * layer.weight.grad
    torch.testing.assert_close(tied.logits(hidden), untied.logits(hidden))


def test_reduce_norm_bounds_the_vectors_whatever_the_reduce_weights():
    """With --define-reduce norm a runaway reduce layer (what SGD at lr 30 did to the plain
    linear one) cannot blow the vectors up: scaling its weights and bias changes nothing."""
    torch.manual_seed(0)
    emb = ours_unit(50, 24, None, map_dim=8, expand_dim=32, levels=2, max_groups=2)
    tokens = torch.arange(50)
    before = emb(tokens)
    assert abs(before.std().item() - 24 ** -0.5) < 0.2 * 24 ** -0.5  # the standard table's scale
    with torch.no_grad():
        emb.reduce.weight.mul_(100)
        emb.reduce.bias.mul_(100)
    # equal up to the LayerNorm eps (1e-5 against a pre-norm variance of ~5e-3 before scaling)
    torch.testing.assert_close(emb(tokens), before, rtol=1e-2, atol=2e-3)
    plain = ours_unit(50, 24, None, map_dim=8, expand_dim=32, levels=2, max_groups=2, reduce="linear")
    with torch.no_grad():
        plain.reduce.weight.mul_(100)
    assert plain(tokens).std() > 10 * before.std()


def test_unknown_reduce_step_names_the_flag():
    with pytest.raises(CompactConfigError, match="--define-reduce"):
        ours_unit(50, 24, None, map_dim=8, expand_dim=32, levels=2, max_groups=2, reduce="mlp")


# -- the authors' DeFINE unit, piece by piece (issue: DeFINE as its authors built it) -------------
AUTHORS = dict(widths="authors", reduce="authors", level_norm="shared", init="xavier", dropout=0.1, map_dropout=0.1)


@pytest.mark.parametrize("variant", [dict(AUTHORS), dict(reduce="authors"), dict(widths="authors"),
                                     dict(level_norm="shared"), dict(init="xavier"), dict(dropout=0.2, map_dropout=0.3)],
                         ids=["all", "reduce", "widths", "level-norm", "init", "dropout"])
def test_authors_variants_shapes_gradients_and_round_trip(variant):
    torch.manual_seed(0)
    emb = ours_unit(300, 24, padding_idx=1, map_dim=16, expand_dim=64, levels=3, max_groups=4, **variant)
    tokens = torch.randint(0, 300, (3, 7))
    tokens[0, 0] = 1
    out = emb(tokens)
    assert out.shape == (3, 7, 24) and torch.equal(out[0, 0], torch.zeros(24))
    out.pow(2).sum().backward()
    for name, p in emb.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    emb.eval()  # dropout off: deterministic, and the cached table equals the computed vectors
    again = ours_unit(300, 24, padding_idx=1, map_dim=16, expand_dim=64, levels=3, max_groups=4, **variant)
    again.load_state_dict(emb.state_dict())
    again.eval()
    with torch.no_grad():
        torch.testing.assert_close(again(tokens), emb(tokens))
        emb.cache_table()
        torch.testing.assert_close(emb(tokens), again(tokens))


def test_authors_layout_widths_groups_and_output_block():
    from fairseq_compactemb.modules.define_plan import authors_groups

    assert authors_groups(3, 4) == [4, 2, 1] and authors_groups(7, 4) == [1, 4, 2, 1, 4, 2, 1]
    plan = plan_levels(128, 1024, 7, 4, "define", layout="authors", out_dim=400)
    # linspace(128, 1024, 7)[1:] rounded up to multiples of max(g_l, g_l+1, 8); the last level gives d
    assert [s.out_dim for s in plan] == [280, 432, 576, 728, 880, 1024, 400]
    assert [s.in_dim for s in plan] == [128, 408, 560, 704, 856, 1008, 1152]  # + n: the skip to e
    emb = ours_unit(50, 40, map_dim=16, expand_dim=64, levels=3, max_groups=2, widths="authors",
                          reduce="authors", level_norm="shared")
    assert emb.reduce.in_features == 40 + 16  # concat(map output, last level)
    assert torch.equal(emb.reduce_norm.weight, torch.ones(40))  # LayerNorm gain 1
    lvl = emb.expand.levels[0]
    assert lvl.norm_weight.shape == (1, lvl.linear.out_dim // lvl.linear.groups)  # one affine for all groups
    assert max(emb.expand.levels[0].linear.bias.abs().max(), 0) > 0  # default init here: uniform biases
    x = ours_unit(50, 40, map_dim=16, expand_dim=64, levels=3, max_groups=2, init="xavier")
    assert all(float(l.linear.bias.abs().max()) == 0 for l in x.expand.levels)


def test_dropout_masks_are_per_position_in_training():
    torch.manual_seed(0)
    emb = ours_unit(30, 8, map_dim=8, expand_dim=16, levels=2, max_groups=2, dropout=0.5)
    tokens = torch.full((1, 6), 5)
    out = emb(tokens)[0]
    assert not all(torch.equal(out[0], out[i]) for i in range(1, 6))  # same word, different masks
    emb.eval()
    out = emb(tokens)[0]
    assert all(torch.equal(out[0], out[i]) for i in range(1, 6))


@pytest.mark.parametrize("kw,flag", [(dict(reduce="bogus"), "--define-reduce"), (dict(widths="x"), "--define-widths"),
                                     (dict(level_norm="x"), "--define-level-norm"), (dict(init="x"), "--define-init"),
                                     (dict(dropout=1.0), "--define-dropout"), (dict(map_dropout=-0.1), "--define-map-dropout"),
                                     (dict(widths="authors", levels=1), "--define-levels")])
def test_new_define_flags_errors_name_the_flag(kw, flag):
    args = dict(map_dim=16, expand_dim=64, levels=3, max_groups=4)
    args.update(kw)
    with pytest.raises(CompactConfigError, match=flag):
        ours_unit(50, 24, **args)


def test_defaults_are_the_best_measured_unit_in_the_module_and_the_flags():
    """The plain constructor and the fairseq flags default to the same unit, the best measured (the
    authors' unit without its dropouts); our first unit (OURS) and the authors' whole unit
    (AUTHORS, dropout included) are one set of flags away."""
    import inspect

    from fairseq_compactemb.modules.options import EmbeddingOptions

    torch.manual_seed(0)
    a = DeFINEEmbedding(100, 24, map_dim=16, expand_dim=64, levels=3, max_groups=4)
    b = DeFINEEmbedding(100, 24, map_dim=16, expand_dim=64, levels=3, max_groups=4, widths="authors",
                        reduce="authors", level_norm="shared", init="xavier", dropout=0.0, map_dropout=0.0)
    assert {k: v.shape for k, v in a.state_dict().items()} == {k: v.shape for k, v in b.state_dict().items()}
    assert a.options == b.options
    b.load_state_dict(a.state_dict())
    tokens = torch.randint(0, 100, (2, 5))
    torch.testing.assert_close(a.eval()(tokens), b.eval()(tokens))
    signature = inspect.signature(DeFINEEmbedding.__init__).parameters
    fields = EmbeddingOptions.__dataclass_fields__
    for name in ("reduce", "widths", "level_norm", "init", "dropout", "map_dropout", "transform", "activation"):
        assert fields["define_" + name].default == signature[name].default, name
    defaults = {k: signature[k].default for k in OURS}
    assert defaults == dict(AUTHORS, dropout=0.0, map_dropout=0.0) and defaults != OURS


MT_TINY = ["--encoder-layers", "1", "--decoder-layers", "1", "--encoder-embed-dim", "64", "--decoder-embed-dim", "64",
           "--encoder-ffn-embed-dim", "32", "--decoder-ffn-embed-dim", "32", "--encoder-attention-heads", "2",
           "--decoder-attention-heads", "2", "--share-all-embeddings", "--input-embedding", "define",
           "--define-map-dim", "16", "--define-expand-dim", "64", "--define-levels", "3", "--define-max-groups", "4"]
AUTHORS_FLAGS = ["--define-widths", "authors", "--define-reduce", "authors", "--define-level-norm", "shared",
                 "--define-init", "xavier"]


def unscaled_copy(emb):
    """The same unit with out_scale 1: what the authors' code feeds its transformer."""
    twin = ours_unit(emb.num_embeddings, emb.embedding_dim, emb.padding_idx, map_dim=emb.map_layer.embedding_dim,
                           expand_dim=64, levels=3, max_groups=4, **AUTHORS)
    state = dict(emb.state_dict(), out_scale=torch.tensor(1.0))
    twin.load_state_dict(state)
    return twin.eval()


def test_authors_unit_enters_fairseq_transformers_unscaled_as_in_the_authors_code():
    from fairseq_compactemb.model_size import build_for_vocab

    tokens = torch.randint(4, 200, (3, 5))
    m = build_for_vocab("compact_transformer", 200, MT_TINY + AUTHORS_FLAGS, meta=False).eval()
    emb = m.encoder.embed_tokens
    assert m.decoder.embed_tokens is emb and m.encoder.embed_scale == m.decoder.embed_scale == 8.0
    with torch.no_grad():  # what enters the first layer (before positions) = the unit's own output
        torch.testing.assert_close(m.encoder.embed_scale * emb(tokens), unscaled_copy(emb)(tokens))
    # --no-scale-embedding: nothing to undo
    m = build_for_vocab("compact_transformer", 200, MT_TINY + AUTHORS_FLAGS + ["--no-scale-embedding"], meta=False)
    assert m.encoder.embed_tokens.out_scale.item() == 1.0
    # the norm reduce starts at the standard table's scale, which assumes fairseq's sqrt(d): unchanged
    m = build_for_vocab("compact_transformer", 200, MT_TINY + ["--define-reduce", "norm"], meta=False)
    assert m.encoder.embed_tokens.out_scale.item() == 1.0
    # a language model's decoder and Transformer-XL undo their own scale; an LSTM has none
    lm_flags = ["--decoder-layers", "1", "--decoder-embed-dim", "64", "--decoder-ffn-embed-dim", "32",
                "--decoder-attention-heads", "2", *MT_TINY[MT_TINY.index("--input-embedding"):], *AUTHORS_FLAGS]
    lm = build_for_vocab("compact_transformer_lm", 200, lm_flags, meta=False)
    assert lm.decoder.embed_tokens.out_scale.item() * lm.decoder.embed_scale == pytest.approx(1.0)
    xl = build_for_vocab("compact_transformer_xl_wt103_define", 300, meta=False)
    assert xl.decoder.embed_tokens.out_scale.item() * xl.decoder.embed_scale == pytest.approx(1.0)
    awd = build_for_vocab("awd_lstm_lm_ptb_define", 300, meta=False)
    assert awd.decoder.embed_tokens.out_scale.item() == 1.0


def test_authors_unit_checkpoints_before_out_scale_load_as_they_were_trained():
    from fairseq_compactemb.model_size import build_for_vocab

    flags = MT_TINY + AUTHORS_FLAGS
    new = build_for_vocab("compact_transformer", 200, flags, meta=False).eval()
    old_state = {k: v for k, v in new.state_dict().items() if not k.endswith("out_scale")}
    old = build_for_vocab("compact_transformer", 200, flags, meta=False).eval()
    old.load_state_dict(old_state)  # strict: the missing entry is supplied (1: the old behaviour)
    assert old.encoder.embed_tokens.out_scale.item() == 1.0
    tokens = torch.randint(4, 200, (2, 6))
    with torch.no_grad():
        torch.testing.assert_close(old.encoder.embed_tokens(tokens), unscaled_copy(new.encoder.embed_tokens)(tokens))
    # a current checkpoint round-trips with its scale
    again = build_for_vocab("compact_transformer", 200, flags + ["--no-scale-embedding"], meta=False)
    again.load_state_dict(new.state_dict())
    assert again.encoder.embed_tokens.out_scale.item() == pytest.approx(1 / 8)


REDUCE_ON_OURS = dict(reduce="authors", widths="linear", level_norm="group", init="uniform")  # the former default


@pytest.mark.parametrize("unit", ["reduce-on-ours", "authors"])
@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("n,k,levels,g_max,d", [(8, 32, 3, 4, 16), (16, 48, 4, 8, 24), (4, 64, 5, 2, 10)])
def test_default_and_authors_unit_every_variant_shapes_padding_cache_and_gradients(unit, variant, n, k, levels,
                                                                                    g_max, d):
    """The authors' reduce on our levels (the former default) and the authors' whole unit in every
    expansion variant: the last level outputs k (ours) or d (the authors'), the reduce reads the map
    output beside it, padding rows are zero, the cached table equals the computation, dropout acts
    only in training, and every parameter gets a gradient."""
    emb = DeFINEEmbedding(30, d, 1, map_dim=n, expand_dim=k, levels=levels, max_groups=g_max, transform=variant,
                          **(AUTHORS if unit == "authors" else REDUCE_ON_OURS))
    last = d if unit == "authors" else k
    assert emb.expand.widths[-1] == last and emb.reduce.in_features == last + n
    tokens = torch.randint(0, 30, (3, 7))
    tokens[0, :2] = 1
    if unit == "authors":  # dropout 0.1 inside the unit: two training passes differ
        assert not torch.equal(emb(tokens), emb(tokens))
    out = emb(tokens)
    assert out.shape == (3, 7, d) and torch.equal(out[0, :2], torch.zeros(2, d))
    out.pow(2).sum().backward()
    assert all(p.grad is not None for p in emb.parameters())
    emb.eval()
    plain = emb(tokens)
    torch.testing.assert_close(emb(tokens), plain, rtol=0, atol=0)  # no dropout in eval
    emb.cache_table(chunk_size=7)
    torch.testing.assert_close(emb(tokens), plain, rtol=0, atol=1e-5)  # float32 rounding of another batch shape

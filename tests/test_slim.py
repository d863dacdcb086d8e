"""Slim embeddings (Li et al. 2018): assignment, input embedding, fast output layer."""
import io
import random
import re
from argparse import Namespace
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from conftest import MethodAsModule
from fairseq_compactemb.modules import (
    CompactConfigError,
    EmbeddingOptions,
    build_input_embedding,
    build_output_layer,
)
from fairseq_compactemb.modules import slim_kernel
from fairseq_compactemb.modules import slim_output as slim_output_module
from fairseq_compactemb.modules.slim_assignment import (
    balanced_assignment,
    disjoint_assignment,
    hash_assignment,
    make_assignment,
)
from fairseq_compactemb.modules.slim_embedding import SlimEmbedding
from fairseq_compactemb.modules.slim_output import SlimOutput
from fairseq_compactemb.modules.standard_embedding import StandardEmbedding


# -- references built by hand ------------------------------------------------------------------
def table_by_hand(assignment, pool):
    """The V x d word vectors, one concatenation per word (no library shortcut)."""
    return torch.stack([torch.cat([pool[int(r)] for r in row]) for row in assignment])


_M32 = 0xFFFFFFFF


def py_mix32(x):
    x &= _M32
    x = ((x >> 16) ^ x) * 0x45D9F3B & _M32
    x = ((x >> 16) ^ x) * 0x45D9F3B & _M32
    return (x >> 16) ^ x


def py_hash_assignment(V, K, M, seed):
    key = py_mix32((seed ^ (1 * 0x9E3779B9)) & _M32)
    return torch.tensor([[py_mix32(py_mix32(v ^ key) ^ py_mix32(k + 0x9E3779B9)) % M for k in range(K)]
                         for v in range(V)])


def random_shapes(count, seed):
    """(V, H, K, M) with M a multiple of K and K <= M <= V*K; V often prime."""
    rng = random.Random(seed)
    shapes = []
    for _ in range(count):
        V = rng.choice([7, 13, 97, 101, 211, rng.randint(5, 300)])
        K = rng.randint(1, 6)
        H = K * rng.randint(1, 5)
        M = K * rng.randint(1, V)
        shapes.append((V, H, K, M))
    return shapes


def roundtrip(state_dict):
    buf = io.BytesIO()
    torch.save(state_dict, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


# -- assignment --------------------------------------------------------------------------------
@pytest.mark.parametrize("V,K,M", [(100, 4, 50), (97, 8, 100), (10, 3, 7), (1000, 8, 999), (5, 2, 10),
                                   (13, 1, 13)])
def test_balanced_uses_every_pool_vector_within_one_of_kv_over_m(V, K, M):
    a = balanced_assignment(V, K, M, seed=3)
    assert a.shape == (V, K) and a.dtype == torch.long
    counts = torch.bincount(a.view(-1), minlength=M)
    assert counts.numel() == M and counts.sum() == V * K
    assert counts.min() >= (K * V) // M and counts.max() <= -(-(K * V) // M)
    # the paper's uniform shuffle: with enough words, consecutive ids do not share positions
    if V * K >= 1000:
        assert not torch.equal(a[:, 0].sort().values, a[:, 0])


@pytest.mark.parametrize("V,K,M", [(100, 4, 40), (97, 8, 96), (10, 3, 6), (13, 5, 65), (50, 1, 7)])
def test_disjoint_column_k_only_uses_pool_k_balanced(V, K, M):
    a = disjoint_assignment(V, K, M, seed=5)
    P = M // K
    for k in range(K):
        col = a[:, k]
        assert col.min() >= k * P and col.max() < (k + 1) * P
        counts = torch.bincount(col - k * P, minlength=P)
        assert counts.numel() == P
        assert counts.min() >= V // P and counts.max() <= -(-V // P)


def test_hash_assignment_is_a_fixed_function_of_word_position_seed():
    a = hash_assignment(40, 3, 17, seed=9)
    assert torch.equal(a, py_hash_assignment(40, 3, 17, 9))  # pure-Python re-implementation
    # pinned values: the same table in every process, run and torch version
    assert hash_assignment(3, 2, 1000, seed=1).tolist() == [[687, 591], [208, 354], [860, 442]]
    big = 1 << 31  # large M: the full 32-bit hash range is used, no int64 overflow
    assert torch.equal(hash_assignment(50, 4, big, seed=0), py_hash_assignment(50, 4, big, 0))


@pytest.mark.parametrize("kind", ["balanced", "disjoint", "hash"])
def test_same_seed_same_assignment_other_seed_other_and_global_rng_untouched(kind):
    state = torch.get_rng_state()
    a = make_assignment(kind, 200, 4, 40, seed=1)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(a, make_assignment(kind, 200, 4, 40, seed=1))
    assert not torch.equal(a, make_assignment(kind, 200, 4, 40, seed=2))


# -- input embedding ---------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["balanced", "disjoint", "hash"])
def test_embedding_equals_indexing_the_materialised_table(kind):
    torch.manual_seed(0)
    emb = SlimEmbedding(53, 12, padding_idx=1, subvectors=4, pool_size=20, assignment=kind, seed=7)
    tokens = torch.randint(0, 53, (3, 9))
    tokens[0, :2] = 1
    table = table_by_hand(emb.assignment, emb.pool.detach())
    expected = table[tokens]
    expected[tokens == 1] = 0.0
    assert torch.equal(emb(tokens), expected)
    assert emb.num_parameters() == 20 * 3 and emb.standard_parameters() == 53 * 12
    assert "assignment" in emb.state_dict() and "assignment" not in dict(emb.named_parameters())


def test_padding_is_zero_and_gets_no_gradient():
    emb = SlimEmbedding(30, 8, padding_idx=0, subvectors=2, pool_size=10)
    out = emb(torch.zeros(4, dtype=torch.long))
    assert torch.equal(out, torch.zeros(4, 8))
    out.sum().backward()
    assert torch.equal(emb.pool.grad, torch.zeros_like(emb.pool))


def test_embedding_gradcheck():
    torch.manual_seed(0)
    emb = SlimEmbedding(11, 6, padding_idx=2, subvectors=3, pool_size=9).double()
    tokens = torch.tensor([[0, 2, 5, 10], [5, 5, 1, 3]])
    pool = emb.pool.detach().clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda p: functional_call(emb, {"pool": p}, (tokens,)), (pool,))


def test_from_config_through_the_factory():
    cfg = EmbeddingOptions(input_embedding="slim", slim_subvectors=4, slim_pool=24,
                           slim_assignment="disjoint", slim_seed=3)
    emb = build_input_embedding(cfg, 50, 16, padding_idx=1)
    assert isinstance(emb, SlimEmbedding) and emb.pool.shape == (24, 4)
    assert torch.equal(emb.assignment, disjoint_assignment(50, 4, 24, seed=3))


# -- checkpoints: the saved assignment wins ----------------------------------------------------
@pytest.mark.parametrize("kind", ["balanced", "disjoint", "hash"])
def test_embedding_assignment_round_trips_into_a_model_with_another_seed(kind):
    saved = SlimEmbedding(40, 8, subvectors=4, pool_size=16, assignment=kind, seed=1)
    other = SlimEmbedding(40, 8, subvectors=4, pool_size=16, assignment=kind, seed=2)
    assert not torch.equal(saved.assignment, other.assignment)
    other.load_state_dict(roundtrip(saved.state_dict()))
    assert torch.equal(other.assignment, saved.assignment)
    tokens = torch.arange(40)
    assert torch.equal(other(tokens), saved(tokens))


def test_output_assignment_round_trips_into_a_model_with_another_seed():
    saved = SlimOutput(40, 8, subvectors=4, pool_size=16, seed=1, bias=True)
    other = SlimOutput(40, 8, subvectors=4, pool_size=16, seed=2, bias=True)
    other.load_state_dict(roundtrip(saved.state_dict()))
    assert torch.equal(other.assignment, saved.assignment)
    x = torch.randn(3, 8)
    assert torch.equal(other.logits(x), saved.logits(x))


@pytest.mark.parametrize("cls", ["input", "output"])
def test_bad_checkpoint_assignments_fail_clearly(cls):
    def build(**kw):
        args = dict(subvectors=4, pool_size=16, seed=1)
        args.update(kw)
        if cls == "input":
            return SlimEmbedding(40, 8, assignment="disjoint", **args)
        return SlimOutput(40, 8, **args)

    good = build().state_dict()

    def load(state, model=None):
        (model or build(seed=5)).load_state_dict(roundtrip(state))

    tampered = dict(good, assignment=good["assignment"].clone())
    tampered["assignment"][3, 1] = 16  # outside [0, M)
    with pytest.raises(ValueError, match="outside .0, M=16.*tampered"):
        load(tampered)
    swapped = dict(good, assignment=good["assignment"].flip(1).contiguous())  # in range, not disjoint
    with pytest.raises(ValueError, match="not disjoint"):
        load(swapped)
    missing = {k: v for k, v in good.items() if k != "assignment"}
    with pytest.raises(ValueError, match="slim assignment is missing"):
        load(missing)
    with pytest.raises(ValueError, match="covers 39 words but the dictionary has 40"):
        load(dict(good, assignment=good["assignment"][:39].clone()))
    with pytest.raises(ValueError, match="dtype"):
        load(dict(good, assignment=good["assignment"].float()))
    # a checkpoint trained with other flags names the flag and the value to use
    with pytest.raises(CompactConfigError, match="--slim-subvectors.*use --slim-subvectors 4"):
        load(good, build(subvectors=2, pool_size=16))
    with pytest.raises(CompactConfigError, match="--slim-pool.*use --slim-pool 16"):
        load(good, build(pool_size=32))


# -- output layer ------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.float64, 1e-12)])
@pytest.mark.parametrize("V,H,K,M", random_shapes(6, seed=0) + [(97, 12, 3, 24), (13, 6, 6, 6)])
def test_output_equals_hidden_times_materialised_matrix(V, H, K, M, dtype, tol):
    torch.manual_seed(V * 31 + H)
    layer = SlimOutput(V, H, subvectors=K, pool_size=M, seed=V, bias=True).to(dtype)
    with torch.no_grad():
        layer.bias.normal_()
    W = table_by_hand(layer.assignment, layer.pool.detach())  # [V, H]
    # column k of the output assignment is inside pool S_k
    assert torch.equal(layer.assignment // (M // K), torch.arange(K).expand(V, K))
    hidden = torch.randn(2, 5, H, dtype=dtype)
    ref = hidden @ W.t() + layer.bias.detach()
    torch.testing.assert_close(layer.logits(hidden), ref, rtol=tol, atol=tol)
    for grad in (True, False):  # autograd path and fused no-grad path
        with torch.set_grad_enabled(grad):
            lp = layer.log_probs(hidden)
        assert lp.dtype == torch.float32 and lp.shape == (2, 5, V)
        torch.testing.assert_close(lp, F.log_softmax(ref.float(), -1), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(lp.logsumexp(-1), torch.zeros(2, 5), rtol=0, atol=1e-5)
    flat = hidden.view(10, H)
    ids = torch.randint(0, V, (7,))
    torch.testing.assert_close(layer.score(flat, ids), ref.view(10, V)[:, ids], rtol=tol, atol=tol)
    targets = torch.randint(0, V, (10,))
    torch.testing.assert_close(layer.score_targets(flat, targets), ref.view(10, V)[torch.arange(10), targets],
                               rtol=tol, atol=tol)


def test_fused_log_probs_with_many_chunks_and_row_blocks(monkeypatch):
    torch.manual_seed(0)
    layer = SlimOutput(1000, 16, subvectors=4, pool_size=64, bias=True)
    with torch.no_grad():
        layer.bias.normal_()
        hidden = torch.randn(37, 16) * 3
        ref = F.log_softmax(layer.logits(hidden), -1)
        monkeypatch.setattr(slim_output_module, "_MIN_CHUNK", 7)
        monkeypatch.setattr(slim_output_module, "_CHUNK_ELEMS", 100)  # chunks of 7 words
        monkeypatch.setattr(slim_output_module, "_TABLE_ELEMS", 64 * 5)  # at most 5 rows; h = 4 rows
        monkeypatch.setattr(slim_output_module, "_MIN_ROWS", 1)
        assert layer._rows_per_block() == 4
        torch.testing.assert_close(layer.log_probs(hidden), ref, rtol=1e-5, atol=1e-5)
        targets = torch.randint(0, 1000, (37,))
        want = ref[torch.arange(37), targets]
        torch.testing.assert_close(layer.target_log_probs(hidden, targets), want, rtol=1e-5, atol=1e-5)
        with slim_kernel.disabled():  # the chunked PyTorch log-partition, blocks and chunks alike
            torch.testing.assert_close(layer.target_log_probs(hidden, targets), want, rtol=1e-5, atol=1e-5)


def test_row_blocks_are_whole_cache_lines_and_share_one_table_buffer(monkeypatch):
    # the One Billion Word shape of Table 7 (h = 64, M = 267,728): the 2**24-element bound alone
    # gives 62 rows, whose 248-byte table rows straddle cache lines
    shape = SimpleNamespace(sub_dim=64, pool_size=267_728)
    assert SlimOutput._rows_per_block(shape) == 48
    assert SlimOutput._rows_per_block(SimpleNamespace(sub_dim=4, pool_size=1 << 30)) == 32
    torch.manual_seed(0)
    layer = SlimOutput(1000, 16, subvectors=4, pool_size=64, bias=True)
    monkeypatch.setattr(slim_output_module, "_MIN_ROWS", 20)
    monkeypatch.setattr(slim_output_module, "_TABLE_ELEMS", 64 * 20)  # 20 rows -> 16: 16 + 16 + 5
    assert layer._rows_per_block() == 16
    storages = []
    original = SlimOutput.partial_table

    def recording(self, hidden, buffer=None):
        table = original(self, hidden, buffer)
        storages.append((hidden.size(0), table.untyped_storage().data_ptr()))
        return table

    monkeypatch.setattr(SlimOutput, "partial_table", recording)
    with torch.no_grad():
        layer.bias.normal_()
        hidden = torch.randn(37, 16) * 3
        ref = F.log_softmax(layer.logits(hidden), -1)
        storages.clear()
        torch.testing.assert_close(layer.log_probs(hidden), ref, rtol=1e-5, atol=1e-5)
        assert [n for n, _ in storages] == [16, 16, 5] and len({p for _, p in storages}) == 1
        targets = torch.randint(0, 1000, (37,))
        storages.clear()
        got = layer.target_log_probs(hidden, targets)
        torch.testing.assert_close(got, ref[torch.arange(37), targets], rtol=1e-5, atol=1e-5)
        assert [n for n, _ in storages] == [16, 16, 5] and len({p for _, p in storages}) == 1


def test_score_uses_the_cheaper_of_the_two_algorithms(monkeypatch):
    torch.manual_seed(0)
    layer = SlimOutput(97, 12, subvectors=3, pool_size=6, bias=True)
    hidden = torch.randn(4, 12)
    ref = layer.logits(hidden)
    calls = []
    original = SlimOutput.partial_table
    monkeypatch.setattr(SlimOutput, "partial_table", lambda self, h: calls.append(1) or original(self, h))
    one = torch.tensor([5])
    torch.testing.assert_close(layer.score(hidden, one), ref[:, one])  # 1 word: build its vector
    assert calls == []
    many = torch.randint(0, 97, (40,))
    torch.testing.assert_close(layer.score(hidden, many), ref[:, many])  # 40 words: partial table
    assert calls == [1]




def test_output_gradcheck():
    torch.manual_seed(0)
    layer = SlimOutput(13, 6, subvectors=3, pool_size=9, bias=True).double()
    hidden = torch.randn(3, 6, dtype=torch.float64, requires_grad=True)
    pool = layer.pool.detach().clone().requires_grad_()
    bias = torch.randn(13, dtype=torch.float64, requires_grad=True)
    ids, targets = torch.tensor([0, 4, 12, 4]), torch.tensor([1, 12, 5])
    for method, args in (("logits", ()), ("score", (ids,)), ("score_targets", (targets,)),
                         ("score", (torch.arange(13).repeat(3),))):  # both score algorithms
        call = MethodAsModule(layer, method)

        def fn(h, p, b):
            return functional_call(call, {"layer.pool": p, "layer.bias": b}, (h, *args))

        assert torch.autograd.gradcheck(fn, (hidden, pool, bias))
    # log_probs under autograd matches the gradient of log_softmax(logits)
    call_lp, call_logits = MethodAsModule(layer, "log_probs"), MethodAsModule(layer, "logits")
    params = {"layer.pool": pool, "layer.bias": bias}
    g1 = torch.autograd.grad(functional_call(call_lp, params, (hidden,))[:, 3].sum(), (hidden, pool, bias))
    g2 = torch.autograd.grad(F.log_softmax(functional_call(call_logits, params, (hidden,)), -1)[:, 3].sum(),
                             (hidden, pool, bias))
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b)


def test_output_from_config_and_tying():
    cfg = EmbeddingOptions(input_embedding="slim", output_layer="slim", tie_input_output=True,
                           slim_subvectors=4, slim_pool=40, slim_assignment="disjoint", slim_seed=4,
                           output_bias=True)
    emb = build_input_embedding(cfg, 60, 16, padding_idx=1)
    out = build_output_layer(cfg, 60, 16, emb)
    assert isinstance(out, SlimOutput)
    assert out.pool is emb.pool and out.assignment is emb.assignment
    assert out.num_parameters() == 40 * 4 + 60
    hidden = torch.randn(2, 16)
    torch.testing.assert_close(out.logits(hidden), hidden @ emb.materialize().t() + out.bias)
    # untied output uses its own K, M when the output overrides are set
    cfg2 = EmbeddingOptions(output_layer="slim", slim_subvectors=4, slim_pool=40, output_slim_subvectors=2,
                            output_slim_pool=10)
    out2 = build_output_layer(cfg2, 60, 16)
    assert out2.pool.shape == (10, 8) and out2.assignment.shape == (60, 2)


def test_tied_model_round_trips():
    emb = SlimEmbedding(30, 8, subvectors=2, pool_size=10, assignment="disjoint", seed=1)
    out = SlimOutput(30, 8, subvectors=2, pool_size=10, tied_input=emb)
    model = torch.nn.ModuleDict({"emb": emb, "out": out})
    emb2 = SlimEmbedding(30, 8, subvectors=2, pool_size=10, assignment="disjoint", seed=9)
    out2 = SlimOutput(30, 8, subvectors=2, pool_size=10, tied_input=emb2)
    model2 = torch.nn.ModuleDict({"emb": emb2, "out": out2})
    model2.load_state_dict(roundtrip(model.state_dict()))
    assert torch.equal(out2.assignment, emb.assignment) and torch.equal(emb2.assignment, emb.assignment)
    x = torch.randn(3, 8)
    assert torch.equal(model2["out"].logits(x), out.logits(x))


# -- configuration errors ----------------------------------------------------------------------
@pytest.mark.parametrize("kwargs,flag,text", [
    (dict(subvectors=7), "--slim-subvectors",
     r"K=7 does not divide the dimension 12; choose a divisor of 12, e\.g\. "),
    (dict(subvectors=0), "--slim-subvectors", "K=0"),
    (dict(pool_size=0), "--slim-pool", "M=0"),
    (dict(subvectors=4, pool_size=3), "--slim-pool", "smaller than K=4"),
    (dict(subvectors=4, pool_size=201), "--slim-pool", r"exceeds V\*K=200.*--input-embedding standard"),
    (dict(subvectors=4, pool_size=30, assignment="disjoint"), "--slim-pool",
     "use a multiple of 4, e.g. --slim-pool 28 or 32"),
    (dict(assignment="random"), "--slim-assignment", "balanced, disjoint, hash"),
])
def test_input_config_errors(kwargs, flag, text):
    args = dict(subvectors=4, pool_size=16)
    args.update(kwargs)
    with pytest.raises(CompactConfigError, match=flag) as err:
        SlimEmbedding(50, 12, **args)
    assert err.value.flag == flag
    assert re.search(text, str(err.value)), str(err.value)


def test_divisor_hint_lists_real_divisors():
    with pytest.raises(CompactConfigError, match="--slim-subvectors") as err:
        SlimEmbedding(50, 300, subvectors=7, pool_size=16)
    hint = str(err.value).split("e.g. ")[1]
    divisors = [int(q) for q in hint.split(", ")]
    assert len(divisors) >= 3 and all(300 % q == 0 for q in divisors)


def test_output_config_errors():
    def build(**kw):
        return build_output_layer(Namespace(output_layer="slim", **kw), 50, 12)

    with pytest.raises(CompactConfigError, match="--slim-pool.*multiple of 4"):
        build(slim_subvectors=4, slim_pool=30)
    with pytest.raises(CompactConfigError, match="--output-slim-pool.*--output-layer softmax"):
        build(slim_subvectors=4, output_slim_pool=400)
    with pytest.raises(CompactConfigError, match="--output-slim-subvectors"):
        build(output_slim_subvectors=5, slim_pool=20)
    with pytest.raises(CompactConfigError, match="--slim-subvectors"):
        build(slim_subvectors=5, slim_pool=20)


def _disjoint(V=50, d=12):
    return SlimEmbedding(V, d, subvectors=4, pool_size=16, assignment="disjoint")


@pytest.mark.parametrize("emb,out_kwargs,text", [
    (lambda: StandardEmbedding(50, 12), {}, "only be tied to --input-embedding slim"),
    (lambda: SlimEmbedding(50, 12, subvectors=4, pool_size=16), {},
     "balanced assignment.*--slim-assignment disjoint"),
    (_disjoint, dict(pool_size=32), "M=16 but output"),
    (_disjoint, dict(subvectors=2), "K=4"),
    (lambda: _disjoint(d=8), {}, "dim 8 != output layer input dim 12"),
    (lambda: _disjoint(V=49), {}, "vocabulary 49"),
])
def test_tie_errors(emb, out_kwargs, text):
    args = dict(subvectors=4, pool_size=16)
    args.update(out_kwargs)
    with pytest.raises(CompactConfigError, match=f"--tie-input-output.*{text}"):
        SlimOutput(50, 12, tied_input=emb(), **args)


def test_output_never_builds_the_v_by_h_matrix(monkeypatch):
    """logits / log_probs / score go through the [M, N] partial table, never word_vectors of all V."""
    layer = SlimOutput(500, 16, subvectors=4, pool_size=40)
    sizes = []
    original = slim_output_module.word_vectors
    monkeypatch.setattr(slim_output_module, "word_vectors",
                        lambda t, p: sizes.append(t.shape[0]) or original(t, p))
    hidden = torch.randn(3, 16)
    layer.logits(hidden)
    with torch.no_grad():
        layer.log_probs(hidden)
    layer.log_probs(hidden)
    layer.score(hidden, torch.arange(200))
    layer.score_targets(hidden, torch.tensor([1, 2, 3]))
    assert max(sizes) <= 3, sizes

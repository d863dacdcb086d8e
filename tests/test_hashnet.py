"""HashNet baseline (Chen et al. 2015): hashed virtual tables on the input and output side."""
import io
from argparse import Namespace

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
from fairseq_compactemb.modules.hashnet_embedding import HashNetEmbedding, hashed_index_and_sign
from fairseq_compactemb.modules.hashnet_output import HashNetOutput
from fairseq_compactemb.modules.slim_embedding import SlimEmbedding

_M32, _GOLDEN = 0xFFFFFFFF, 0x9E3779B9


def py_mix32(x):
    x &= _M32
    x = ((x >> 16) ^ x) * 0x45D9F3B & _M32
    x = ((x >> 16) ^ x) * 0x45D9F3B & _M32
    return (x >> 16) ^ x


def matrix_by_hand(weight, rows, cols, seed):
    """W[i, j] = sign(i, j) * weight[h(i, j)], every entry from a pure-Python hash."""
    key = py_mix32((seed ^ (2 * _GOLDEN)) & _M32)
    W = torch.empty(rows, cols, dtype=weight.dtype)
    for i in range(rows):
        for j in range(cols):
            h = py_mix32(py_mix32(i ^ key) ^ py_mix32(j + _GOLDEN))
            W[i, j] = (-1.0 if h >> 31 else 1.0) * weight[h % weight.numel()]
    return W


def roundtrip(state_dict):
    buf = io.BytesIO()
    torch.save(state_dict, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)




def test_hash_is_pinned():
    index, sign = hashed_index_and_sign(torch.arange(2), 3, 1000, 5)
    assert index.tolist() == [[768, 352, 691], [492, 435, 567]]
    assert sign.tolist() == [[-1, -1, 1], [1, 1, 1]]


def test_embedding_equals_materialised_hashed_matrix():
    torch.manual_seed(0)
    emb = HashNetEmbedding(23, 10, padding_idx=0, buckets=37, seed=3)
    W = matrix_by_hand(emb.weight.detach(), 23, 10, seed=3)
    assert (W < 0).any() and (W > 0).any()  # both signs occur
    tokens = torch.tensor([[0, 5, 22, 5], [1, 2, 3, 0]])
    expected = W[tokens]
    expected[tokens == 0] = 0.0
    assert torch.equal(emb(tokens), expected)
    assert torch.equal(emb.materialize(), W)
    assert emb.num_parameters() == 37 and emb.standard_parameters() == 230
    assert [n for n, _ in emb.named_parameters()] == ["weight"]


def test_padding_gets_no_gradient_and_gradcheck():
    emb = HashNetEmbedding(9, 4, padding_idx=2, buckets=7).double()
    emb(torch.full((3,), 2)).sum().backward()
    assert torch.equal(emb.weight.grad, torch.zeros(7, dtype=torch.float64))
    tokens = torch.tensor([0, 2, 8, 8, 4])
    w = emb.weight.detach().clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda p: functional_call(emb, {"weight": p}, (tokens,)), (w,))


def test_same_seed_same_matrix_other_seed_other_and_checkpoint_keeps_its_hash():
    a = HashNetEmbedding(20, 6, buckets=11, seed=1)
    b = HashNetEmbedding(20, 6, buckets=11, seed=2)
    with torch.no_grad():
        b.weight.copy_(a.weight)
    assert not torch.equal(a.materialize(), b.materialize())
    assert torch.equal(HashNetEmbedding(20, 6, buckets=11, seed=1).hash_key, a.hash_key)
    b.load_state_dict(roundtrip(a.state_dict()))  # b was built with seed 2: it gets a's hashing
    assert torch.equal(b.materialize(), a.materialize())
    with pytest.raises(CompactConfigError, match="--hashnet-buckets.*use --hashnet-buckets 11"):
        HashNetEmbedding(20, 6, buckets=12).load_state_dict(roundtrip(a.state_dict()))


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.float64, 1e-12)])
@pytest.mark.parametrize("chunk", [1, 4, 1000])
def test_output_equals_hidden_times_materialised_matrix(dtype, tol, chunk):
    torch.manual_seed(0)
    layer = HashNetOutput(31, 8, buckets=50, seed=7, bias=True).to(dtype)
    layer.chunk = chunk
    with torch.no_grad():
        layer.bias.normal_()
    W = matrix_by_hand(layer.weight.detach(), 31, 8, seed=7)
    hidden = torch.randn(2, 3, 8, dtype=dtype)
    ref = hidden @ W.t() + layer.bias.detach()
    torch.testing.assert_close(layer.logits(hidden), ref, rtol=tol, atol=tol)
    lp = layer.log_probs(hidden)
    assert lp.dtype == torch.float32
    torch.testing.assert_close(lp, F.log_softmax(ref.float(), -1), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(lp.logsumexp(-1), torch.zeros(2, 3), rtol=0, atol=1e-5)
    flat, ids, targets = hidden.view(6, 8), torch.tensor([30, 0, 7, 7]), torch.tensor([1, 2, 3, 30, 0, 5])
    torch.testing.assert_close(layer.score(flat, ids), ref.view(6, 31)[:, ids], rtol=tol, atol=tol)
    torch.testing.assert_close(layer.score_targets(flat, targets), ref.view(6, 31)[torch.arange(6), targets],
                               rtol=tol, atol=tol)
    assert layer.num_parameters() == 50 + 31


def test_output_gradcheck_through_the_chunked_backward():
    torch.manual_seed(0)
    layer = HashNetOutput(11, 5, buckets=13, bias=True).double()
    layer.chunk = 3  # several chunks, rebuilt in backward
    hidden = torch.randn(4, 5, dtype=torch.float64, requires_grad=True)
    weight = layer.weight.detach().clone().requires_grad_()
    bias = torch.randn(11, dtype=torch.float64, requires_grad=True)
    for method, args in (("logits", ()), ("score", (torch.tensor([0, 10, 3]),)),
                         ("score_targets", (torch.tensor([1, 2, 3, 4]),))):
        call = MethodAsModule(layer, method)

        def fn(h, w, b):
            return functional_call(call, {"layer.weight": w, "layer.bias": b}, (h, *args))

        assert torch.autograd.gradcheck(fn, (hidden, weight, bias))
    # only the hidden states need a gradient (frozen weights): backward skips the weight
    frozen = HashNetOutput(11, 5, buckets=13).double().requires_grad_(False)
    frozen.chunk = 3
    assert torch.autograd.gradcheck(frozen.logits, (hidden,))


def test_factory_and_tying():
    cfg = EmbeddingOptions(input_embedding="hashnet", output_layer="hashnet", tie_input_output=True,
                           hashnet_buckets=40, slim_seed=5)
    emb = build_input_embedding(cfg, 30, 8, padding_idx=1)
    out = build_output_layer(cfg, 30, 8, emb)
    assert out.weight is emb.weight and out.num_parameters() == 40
    hidden = torch.randn(3, 8)
    torch.testing.assert_close(out.logits(hidden), hidden @ emb.materialize().t())
    model = torch.nn.ModuleDict({"emb": emb, "out": out})
    other_emb = HashNetEmbedding(30, 8, buckets=40, seed=99)
    other_out = HashNetOutput(30, 8, buckets=40, tied_input=other_emb)
    other = torch.nn.ModuleDict({"emb": other_emb, "out": other_out})
    other.load_state_dict(roundtrip(model.state_dict()))
    assert torch.equal(other["out"].logits(hidden), out.logits(hidden))
    cfg = Namespace(output_layer="hashnet", hashnet_buckets=40, output_hashnet_buckets=20)
    untied = build_output_layer(cfg, 30, 8)
    assert untied.num_parameters() == 20


def test_config_errors():
    with pytest.raises(CompactConfigError, match="--hashnet-buckets: B=0"):
        HashNetEmbedding(10, 4, buckets=0)
    with pytest.raises(CompactConfigError, match=r"--hashnet-buckets: B=40 >= V\*d=40.*no compression.*"
                                                 r"--input-embedding standard or --hashnet-buckets < 40"):
        build_input_embedding(Namespace(input_embedding="hashnet", hashnet_buckets=40), 10, 4, None)
    with pytest.raises(CompactConfigError, match="--output-hashnet-buckets.*--output-layer softmax"):
        build_output_layer(Namespace(output_layer="hashnet", output_hashnet_buckets=400), 10, 4)
    with pytest.raises(CompactConfigError, match="--hashnet-buckets: B=-1"):
        build_output_layer(Namespace(output_layer="hashnet", hashnet_buckets=-1), 10, 4)
    for emb, text in [(SlimEmbedding(10, 4, subvectors=2, pool_size=4),
                       "only be tied to --input-embedding hashnet"),
                      (HashNetEmbedding(10, 4, buckets=7), "input B=7 but output B=8"),
                      (HashNetEmbedding(10, 6, buckets=8), "dim 6 != output layer input dim 4"),
                      (HashNetEmbedding(11, 4, buckets=8), "vocabulary 11")]:
        with pytest.raises(CompactConfigError, match=f"--tie-input-output.*{text}"):
            HashNetOutput(10, 4, buckets=8, tied_input=emb)

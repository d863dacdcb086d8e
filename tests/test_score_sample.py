"""``score_sample`` (the two scores of a sampled loss in one call) equals ``score_targets`` +
``score`` for every output layer that supports sampling, in value and gradient, and the
softmax layer's override gathers the ``N + S`` rows of its matrix once."""
import pytest
import torch
from torch.func import functional_call

from fairseq_compactemb.modules.adaptive_softmax_output import AdaptiveSoftmaxOutput
from fairseq_compactemb.modules.errors import CompactConfigError
from fairseq_compactemb.modules.hashnet_output import HashNetOutput
from fairseq_compactemb.modules.slim_output import SlimOutput
from fairseq_compactemb.modules.softmax_output import SoftmaxOutput

V, H, N = 23, 6, 5


def layers():
    return {
        "softmax": SoftmaxOutput(V, H, bias=True),
        "slim": SlimOutput(V, H, subvectors=3, pool_size=9, bias=True),
        "hashnet": HashNetOutput(V, H, buckets=40, bias=True),
    }


@pytest.mark.parametrize("name", ["softmax", "slim", "hashnet"])
def test_score_sample_equals_the_two_scores_with_gradients(name):
    torch.manual_seed(0)
    layer = layers()[name].double()
    with torch.no_grad():
        layer.bias.normal_()
    params = {k: p.detach().clone().requires_grad_() for k, p in layer.named_parameters()}
    hidden = torch.randn(N, H, dtype=torch.float64, requires_grad=True)
    targets = torch.tensor([0, 7, 7, 22, 3])
    ids = torch.tensor([7, 1, 22, 7, 0, 15])  # repeats, and words that are also targets

    def fused(h, *ps):
        return _call(layer, dict(zip(params, ps)), "score_sample", h, targets, ids)

    def separate(h, *ps):
        state = dict(zip(params, ps))
        return (_call(layer, state, "score_targets", h, targets), _call(layer, state, "score", h, ids))

    got, ref = fused(hidden, *params.values()), separate(hidden, *params.values())
    assert got[0].shape == (N,) and got[1].shape == (N, len(ids))
    for a, b in zip(got, ref):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    weights = [torch.randn(N, dtype=torch.float64), torch.randn(N, len(ids), dtype=torch.float64)]
    inputs = (hidden, *params.values())
    g_fused = torch.autograd.grad(sum((o * w).sum() for o, w in zip(fused(*inputs), weights)), inputs)
    g_sep = torch.autograd.grad(sum((o * w).sum() for o, w in zip(separate(*inputs), weights)), inputs)
    for a, b in zip(g_fused, g_sep):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    assert torch.autograd.gradcheck(fused, inputs)


def _call(layer, state, method, *args):
    class Call(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.layer = layer

        def forward(self, *a):
            return getattr(self.layer, method)(*a)

    return functional_call(Call(), {"layer." + k: v for k, v in state.items()}, args)


def test_softmax_score_sample_gathers_its_matrix_once(monkeypatch):
    layer = SoftmaxOutput(V, H)
    calls = []
    original = torch.nn.functional.embedding
    monkeypatch.setattr(torch.nn.functional, "embedding",
                        lambda i, w, *a, **k: calls.append(i.numel()) or original(i, w, *a, **k))
    t, s = layer.score_sample(torch.randn(N, H), torch.arange(N), torch.tensor([1, 2, 3]))
    assert calls == [N + 3]
    # and backward builds one dense gradient of the matrix, with every row's contributions
    (t.sum() + s.sum()).backward()
    assert layer.weight.grad.shape == (V, H)


def test_adaptive_softmax_cannot_score_a_sample():
    layer = AdaptiveSoftmaxOutput(V, H, [5, 12, V])
    with pytest.raises(CompactConfigError, match="--criterion"):
        layer.score_sample(torch.randn(N, H), torch.arange(N), torch.tensor([1, 2]))

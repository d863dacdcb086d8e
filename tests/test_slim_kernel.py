"""The fused C++ gather-sum + log-softmax of the slim output layer (CPU, float32, no grad):
the same numbers as the pure-PyTorch path and as the materialised matrix product."""
import os
import shutil

import pytest
import torch
import torch.nn.functional as F

from fairseq_compactemb.modules import slim_kernel
from fairseq_compactemb.modules.slim_output import SlimOutput


def test_kernel_builds_here():
    # where a C++ compiler exists (fairseq's own C extensions need one) a build failure must not
    # go unnoticed
    if os.environ.get("COMPACTEMB_NO_KERNELS"):
        pytest.skip("COMPACTEMB_NO_KERNELS is set")
    if shutil.which("c++") is None and shutil.which("g++") is None:
        pytest.skip("no C++ compiler on this machine: the slim output uses its PyTorch path")
    assert slim_kernel.load() is not None


def reference(layer, x):
    logits = x.double() @ layer.materialize().double().t()
    if layer.bias is not None:
        logits = logits + layer.bias.double()
    return F.log_softmax(logits, dim=-1)


@pytest.mark.parametrize("V,H,K,M,N,bias,scale", [
    (1, 8, 2, 2, 1, False, 1.0),            # one word: log-prob 0
    (97, 16, 4, 8, 1, True, 1.0),           # prime V, one row
    (5003, 96, 4, 1000, 37, True, 3.0),     # several chunks, odd N
    (20000, 128, 8, 4096, 3, False, 1.0),
    (3001, 64, 8, 24000, 64, True, 30.0),   # M = V*K (no sharing), large logits
    (4099, 32, 1, 7, 5, False, 1.0),        # K=1: M words share 7 vectors
])
def test_kernel_equals_pytorch_path_and_materialised_product(V, H, K, M, N, bias, scale):
    if slim_kernel.load() is None:
        pytest.skip("C++ kernel not available (COMPACTEMB_NO_KERNELS or no compiler)")
    torch.manual_seed(V + N)
    layer = SlimOutput(V, H, subvectors=K, pool_size=M, bias=bias).eval()
    if bias:
        torch.nn.init.normal_(layer.bias, std=2.0)
    x = torch.randn(N, H) * scale
    with torch.no_grad():
        assert slim_kernel.usable(layer.partial_table(x))
        fast = layer.log_probs(x)
        with slim_kernel.disabled():
            assert not slim_kernel.usable(layer.partial_table(x))
            slow = layer.log_probs(x)
    ref = reference(layer, x)
    assert fast.shape == (N, V) and fast.dtype == torch.float32
    assert torch.isfinite(fast).all()
    tol = 2e-5 * max(1.0, ref.abs().max().item())
    assert (fast.double() - ref).abs().max().item() < tol
    assert (fast - slow).abs().max().item() < tol
    # rows are normalised: logsumexp of log-probs is 0
    torch.testing.assert_close(torch.logsumexp(fast.double(), -1), torch.zeros(N, dtype=torch.float64),
                               atol=1e-5, rtol=0)


def test_kernel_sees_a_reloaded_assignment():
    if slim_kernel.load() is None:
        pytest.skip("C++ kernel not available")
    a, b = SlimOutput(500, 16, 4, 40, seed=1).eval(), SlimOutput(500, 16, 4, 40, seed=2).eval()
    x = torch.randn(3, 16)
    with torch.no_grad():
        a.log_probs(x)  # builds a's int32 copy of the assignment
        a.load_state_dict(b.state_dict())  # replaces the assignment in place
        torch.testing.assert_close(a.log_probs(x), b.log_probs(x), rtol=0, atol=0)
        torch.testing.assert_close(a.log_probs(x).double(), reference(b, x), atol=1e-5, rtol=0)


def test_kernel_rejects_out_of_range_rows():
    module = slim_kernel.load()
    if module is None:
        pytest.skip("C++ kernel not available")
    table = torch.randn(10, 3)
    bad = torch.tensor([[0, 10]], dtype=torch.int32)
    with pytest.raises(RuntimeError, match="out of range"):
        module.slim_log_softmax(table, bad, table.new_empty(0), torch.empty(3, 1))


def test_grad_and_low_precision_paths_do_not_use_the_kernel_but_agree():
    torch.manual_seed(0)
    layer = SlimOutput(300, 32, 4, 40)
    x = torch.randn(5, 32, requires_grad=True)
    y = layer.log_probs(x)  # autograd path
    assert y.requires_grad
    y.sum().backward()
    assert x.grad is not None
    with torch.no_grad():
        torch.testing.assert_close(layer.log_probs(x), y.detach(), atol=1e-5, rtol=0)
        low = layer.to(torch.bfloat16).log_probs(x.bfloat16())  # bf16 GEMM, float32 gather + softmax
    assert low.dtype == torch.float32 and (low - y.detach()).abs().max().item() < 0.1


def test_disabled_by_environment(monkeypatch):
    monkeypatch.setenv("COMPACTEMB_NO_KERNELS", "1")
    assert slim_kernel.load() is None
    assert not slim_kernel.usable(torch.zeros(2, 2))

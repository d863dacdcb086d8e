"""fairseq_compactemb.modules as plain PyTorch: public classes importable, every layer an
ordinary nn.Module, and the README's pure-PyTorch example (slim input + slim output + NCE LSTM
LM) trains with fairseq blocked from import."""
import re
import subprocess
import sys

import torch

from conftest import REPO

BLOCK_FAIRSEQ = """
import importlib.abc, sys
class _Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "fairseq" or name.startswith(("fairseq.", "fairseq_cli")):
            raise ImportError("fairseq is blocked in this test")
sys.meta_path.insert(0, _Block())
"""


def run_blocked(code: str):
    return subprocess.run([sys.executable, "-c", BLOCK_FAIRSEQ + code], capture_output=True, text=True,
                          timeout=300, cwd=REPO, env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})


def test_readme_example_trains_without_fairseq():
    code = ("import runpy, sys; sys.argv = ['x', '--steps', '40'];"
            "runpy.run_path('examples/plain_pytorch/slim_lstm_nce.py', run_name='__main__');"
            "assert not any(m == 'fairseq' or m.startswith('fairseq.') for m in sys.modules), 'fairseq imported'")
    proc = run_blocked(code)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    ppl = [float(x) for x in re.findall(r"perplexity ([0-9.]+)", proc.stdout)]
    assert len(ppl) >= 4 and ppl[-1] < 0.5 * ppl[0], proc.stdout  # it learns
    readme = (REPO / "README.md").read_text()
    assert "## Plain PyTorch" in readme and "examples/plain_pytorch/slim_lstm_nce.py" in readme


def test_public_classes_import_without_fairseq_and_are_modules():
    code = """
import torch
from fairseq_compactemb.modules import (AdaptiveInput, AdaptiveSoftmaxOutput, DeFINEEmbedding, HashNetEmbedding,
    HashNetOutput, ProjectedEmbedding, SlimEmbedding, SlimOutput, SoftmaxOutput, StandardEmbedding)
V, d = 50, 8
tokens = torch.randint(0, V, (2, 5))
for emb in [StandardEmbedding(V, d), ProjectedEmbedding(V, d, 4), AdaptiveInput(V, d, [10, V]),
            DeFINEEmbedding(V, d, map_dim=4, expand_dim=16, levels=2, max_groups=2), SlimEmbedding(V, d, subvectors=2, pool_size=20),
            HashNetEmbedding(V, d, buckets=100)]:
    assert isinstance(emb, torch.nn.Module) and emb(tokens).shape == (2, 5, d), type(emb)
h = torch.randn(2, 5, d)
for out in [SoftmaxOutput(V, d), AdaptiveSoftmaxOutput(V, d, [10, V]), SlimOutput(V, d, subvectors=2, pool_size=20), HashNetOutput(V, d, buckets=100)]:
    lp = out(h)
    assert lp.shape == (2, 5, V) and torch.allclose(lp.exp().sum(-1), torch.ones(2, 5), atol=1e-5), type(out)
    assert torch.allclose(out(h, tokens), lp.gather(-1, tokens.unsqueeze(-1)).squeeze(-1), atol=1e-5)
print("ok")
"""
    proc = run_blocked(code)
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr[-3000:]


def test_module_all_lists_only_real_names():
    import fairseq_compactemb.modules as m

    for name in m.__all__:
        assert hasattr(m, name), name
    assert isinstance(m.SlimOutput(20, 4, subvectors=2, pool_size=10), torch.nn.Module)

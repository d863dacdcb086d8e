"""scripts/embedding_correlation.py: the correlation matrix equals numpy's Pearson correlation,
and on tiny trained checkpoints (standard and DeFINE input) the script writes a PNG and prints a
mean absolute off-diagonal correlation in [0, 1] computed from the model's real embedding table."""
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO, TINY_LM_TRAIN, USER_DIR, run_cli

sys.path.insert(0, str(REPO / "scripts"))
import embedding_correlation as ec  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_correlation_matches_numpy_and_handles_constant_dimensions():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 6))
    x[:, 3] = 0.5 * x[:, 0] + 0.1 * rng.normal(size=50)   # correlated pair
    np.testing.assert_allclose(ec.correlation(x), np.corrcoef(x, rowvar=False), atol=1e-12)
    off = np.abs(np.corrcoef(x, rowvar=False))[~np.eye(6, dtype=bool)].mean()
    assert ec.mean_abs_off_diagonal(ec.correlation(x)) == pytest.approx(off)
    x[:, 5] = 2.0                                           # constant: no correlation, no NaN
    c = ec.correlation(x)
    assert np.isfinite(c).all() and c[5, 5] == 1.0 and not c[5, :5].any()
    assert ec.mean_abs_off_diagonal(np.eye(4)) == 0.0
    assert ec.mean_abs_off_diagonal(np.ones((4, 4))) == 1.0


def test_top_variance_share():
    rng = np.random.default_rng(1)
    low = rng.normal(size=(200, 2)) @ rng.normal(size=(2, 8)) + 3.0   # rank 2 around an offset
    assert ec.top_variance_share(low, 2) == pytest.approx(1.0)
    x = rng.normal(size=(400, 8)) * np.array([4.0, 2.0, 1, 1, 1, 1, 1, 1])
    power = np.sort(np.linalg.eigvalsh(np.cov(x, rowvar=False)))[::-1]
    assert ec.top_variance_share(x, 3) == pytest.approx(power[:3].sum() / power.sum())
    assert ec.top_variance_share(x, 8) == pytest.approx(1.0)


@pytest.fixture(scope="module")
def checkpoints(ptb_bin, tmp_path_factory):
    """Two tiny LMs trained a few updates: standard and DeFINE input embeddings."""
    out = {}
    for name, flags in [("standard", []),
                        ("define", ["--input-embedding", "define", "--define-map-dim", 8, "--define-expand-dim", 32,
                                    "--define-levels", 2, "--define-max-groups", 2])]:
        save = tmp_path_factory.mktemp(name)
        run_cli("fairseq-train", ptb_bin, "--user-dir", USER_DIR, "--arch", "compact_lstm_lm",
                "--decoder-hidden-size", 16, "--decoder-layers", 1, "--max-update", 3, "--save-dir", save,
                *flags, *TINY_LM_TRAIN)
        out[name] = save / "checkpoint_last.pt"
    return out


@pytest.mark.parametrize("name", ["standard", "define"])
def test_script_writes_png_and_prints_mean_abs_correlation(name, checkpoints, ptb_bin, tmp_path):
    png = tmp_path / f"{name}.png"
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "embedding_correlation.py"), str(checkpoints[name]),
                           "--data", str(ptb_bin), "--out", str(png)], capture_output=True, text=True,
                          env=dict(os.environ, OMP_NUM_THREADS="1"), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert png.read_bytes()[:8] == PNG_MAGIC and png.stat().st_size > 5000
    value = float(re.search(r"mean \|off-diagonal correlation\|: ([0-9.]+)", proc.stdout).group(1))
    assert 0.0 <= value <= 1.0
    assert f"{name}: V=4988 words x d=16 dimensions" in proc.stdout  # 4,992 ids minus 4 specials

    # the printed number is the one of the model's own V x d table
    embedding, dictionary = ec.load_embedding(str(checkpoints[name]), ptb_bin)
    matrix = ec.embedding_matrix(embedding, len(dictionary))
    assert matrix.shape == (4992, 16)
    if name == "define":  # compute_table == the module's forward on every id
        import torch
        with torch.no_grad():
            np.testing.assert_allclose(matrix, embedding(torch.arange(4992)[None])[0].numpy(), atol=1e-5)
    assert ec.mean_abs_off_diagonal(ec.correlation(matrix[4:])) == pytest.approx(value, abs=1e-4)

    # the variance shares: every stage of the DeFINE unit, the output's share that of the table
    line = re.search(r"share of the variance in the top 5 directions: (.*)", proc.stdout).group(1)
    stages = ec.stage_matrices(embedding, len(dictionary), skip=4)
    names = [n for n, _ in stages]
    assert names == (["map", "level 1", "level 2", "output"] if name == "define" else ["output"])
    for n, m in stages:
        assert m.shape[0] == 4988
        printed = float(re.search(re.escape(n) + r" \(\d+-d\) ([0-9.]+)", line).group(1))
        assert printed == pytest.approx(ec.top_variance_share(m, 5), abs=1e-3)
    np.testing.assert_allclose(stages[-1][1], matrix[4:])
    if name == "define":  # the map stage is the scaled map table the HGT reads
        np.testing.assert_allclose(stages[0][1], (embedding.map_layer.weight[4:] * embedding.map_scale).detach().numpy(),
                                   atol=1e-6)

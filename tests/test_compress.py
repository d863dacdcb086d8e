"""Compressing a trained checkpoint (``python -m fairseq_compactemb.compress``) and the fits
behind it: k-means recovers a table built from a known codebook exactly, the SVD fit is the
best rank-r approximation, the HashNet fit is the least-squares solution, the compressed
checkpoint's logits are its materialised matrix product, and the result loads in every
fairseq CLI, in from_pretrained, and fine-tunes; pretrained assignments for training from
scratch (``--slim-assignment kmeans:CHECKPOINT`` / ``file:``)."""
import re

import pytest
import torch

from conftest import USER_DIR, compress_cli, run_cli
from fairseq_compactemb.modules.table_fits import hashed_mean_fit, kmeans, low_rank_fit, product_quantize


def known_codebook_table(V=300, K=4, M=40, h=3, shared=True, seed=0):
    g = torch.Generator().manual_seed(seed)
    codebook = torch.randn(M, h, generator=g) * 10  # well separated
    if shared:
        assignment = torch.randint(0, M, (V, K), generator=g)
        assignment[: M // K].view(-1)[:M] = torch.arange(M)  # every codeword used
    else:
        per = M // K
        assignment = torch.randint(0, per, (V, K), generator=g)
        assignment[:per] = torch.arange(per)[:, None]
        assignment = assignment + torch.arange(K) * per
    return codebook[assignment].reshape(V, K * h), assignment


@pytest.mark.parametrize("method", ["flat", "two-level"])  # two-level: tests/test_two_level_kmeans.py
@pytest.mark.parametrize("backend", ["faiss", "sklearn"])
@pytest.mark.parametrize("shared", [True, False], ids=["shared", "disjoint"])
def test_kmeans_recovers_a_table_built_from_a_known_codebook_exactly(method, backend, shared, monkeypatch):
    if backend == "faiss":
        pytest.importorskip("faiss")
    else:
        from fairseq_compactemb.modules import table_fits

        monkeypatch.setattr(table_fits, "kmeans_backend", lambda: "sklearn")
    table, _ = known_codebook_table(shared=shared)
    weights = torch.rand(table.size(0)) + 0.5
    pool, assignment = product_quantize(table, 4, 40, weights, shared=shared, iters=30, method=method)
    assert pool.shape == (40, 3) and assignment.shape == (300, 4)
    torch.testing.assert_close(pool[assignment].reshape(300, 12), table, rtol=0, atol=1e-4)
    if not shared:  # column k stays inside pool S_k
        assert torch.equal(torch.div(assignment, 10, rounding_mode="floor"), torch.arange(4).expand(300, 4))


def test_kmeans_with_as_many_centroids_as_points_is_exact():
    x = torch.randn(20, 5).numpy()
    centroids, labels = kmeans(x, 20)
    assert (centroids[labels] == x).all()


def test_low_rank_fit_is_the_best_rank_r_approximation():
    torch.manual_seed(0)
    table = torch.randn(50, 12) @ torch.randn(12, 12)
    a, b = low_rank_fit(table, 4)
    u, s, vt = torch.linalg.svd(table.double(), full_matrices=False)
    best = (u[:, :4] * s[:4]) @ vt[:4]
    torch.testing.assert_close((a @ b).double(), best, rtol=1e-4, atol=1e-4)
    # weighted: exactly optimal for the weighted norm (better there than the unweighted optimum)
    w = torch.rand(50) ** 4 + 1e-3
    aw, bw = low_rank_fit(table, 4, w)
    err = lambda approx: float((w[:, None] * (table - approx) ** 2).sum())  # noqa: E731
    assert err(aw @ bw) <= err(best.float()) + 1e-4
    sw = w.double().sqrt()[:, None]
    uw, swv, vtw = torch.linalg.svd(table.double() * sw, full_matrices=False)
    torch.testing.assert_close((aw @ bw).double(), ((uw[:, :4] * swv[:4]) @ vtw[:4]) / sw, rtol=1e-4, atol=1e-4)
    a8, b8 = low_rank_fit(table, 20)  # rank above min(n, d): exact, zero-padded
    assert a8.shape == (50, 20) and b8.shape == (20, 12)
    torch.testing.assert_close(a8 @ b8, table, rtol=1e-4, atol=1e-4)


def test_hashed_mean_fit_is_the_weighted_least_squares_solution():
    torch.manual_seed(0)
    V, d, B = 30, 6, 17
    table, w = torch.randn(V, d), torch.rand(V) + 0.1
    index = torch.randint(0, B, (V, d))
    sign = torch.randint(0, 2, (V, d)) * 2 - 1
    fit = hashed_mean_fit(table, index, sign, B + 1, w)  # bucket B is never used: 0
    design = torch.zeros(V * d, B + 1, dtype=torch.float64)
    design[torch.arange(V * d), index.reshape(-1)] = sign.reshape(-1).double()
    sw = w.double().repeat_interleave(d).sqrt()
    ls = torch.linalg.lstsq(design[:, :B] * sw[:, None], table.double().reshape(-1) * sw).solution
    torch.testing.assert_close(fit[:B].double(), ls, rtol=1e-5, atol=1e-6)
    assert fit[B] == 0


# -- the command on real checkpoints ---------------------------------------------------------------
LSTM = ["--task", "language_modeling", "--arch", "compact_lstm_lm", "--decoder-hidden-size", 16, "--decoder-layers", 1,
        "--tokens-per-sample", 16, "--max-tokens", 256, "--optimizer", "adam", "--lr", 0.003, "--no-progress-bar",
        "--num-workers", 0, "--seed", 1, "--no-epoch-checkpoints", "--max-valid-steps", 2]
EVAL = ["--tokens-per-sample", 16, "--max-tokens", 512, "--gen-subset", "valid", "--max-valid-steps", 3]


@pytest.fixture(scope="module")
def tied_lm(ptb_bin, tmp_path_factory):
    save = tmp_path_factory.mktemp("tied_lm")
    run_cli("fairseq-train", ptb_bin, "--user-dir", USER_DIR, *LSTM, "--tie-input-output", "--max-update", 20,
            "--save-dir", save)
    return save / "checkpoint_last.pt"


def eval_ppl(ptb_bin, ckpt):
    out = run_cli("fairseq-eval-lm", ptb_bin, "--user-dir", USER_DIR, "--path", ckpt, *EVAL)
    return float(re.findall(r"Perplexity: ([0-9.]+)", out.stdout + out.stderr)[-1])


@pytest.mark.parametrize("flags", [
    # K=4 and 1/16 pools: the k-means stays small (1,248 seeds among 19,968 sub-vectors)
    ["--input-embedding", "slim", "--output-layer", "slim", "--slim-subvectors", "4", "--slim-pool", "1/16",
     "--output-slim-subvectors", "4", "--output-slim-pool", "1/16"],
    ["--input-embedding", "slim", "--output-layer", "slim", "--slim-assignment", "disjoint", "--tie-input-output"],
    ["--input-embedding", "adaptive", "--output-layer", "adaptive", "--tie-input-output", "--adaptive-factor", "2"],
    ["--input-embedding", "projected", "--projected-dim", "8", "--output-layer", "hashnet"],
], ids=["slim-io", "slim-tied", "adaptive-tied", "projected-hashnet"])
def test_compressed_checkpoint_loads_evaluates_and_fine_tunes(flags, tied_lm, ptb_bin, tmp_path):
    import fairseq_compactemb

    out = tmp_path / "compressed.pt"
    proc = compress_cli(tied_lm, out, "--data", ptb_bin, *flags)
    assert re.search(r"parameters: [0-9,]+ -> [0-9,]+", proc.stdout) and "fits:" in proc.stdout
    ppl = eval_ppl(ptb_bin, out)
    assert 1 < ppl < 1e5
    hub = fairseq_compactemb.from_pretrained(str(out), str(ptb_bin))
    scores = hub.score("the market")["positional_scores"]
    assert scores.numel() >= 2 and torch.isfinite(scores).all()
    run_cli("fairseq-train", ptb_bin, "--user-dir", USER_DIR, *LSTM, *flags, "--finetune-from-model", out,
            "--max-update", 2, "--save-dir", tmp_path / "ft")
    assert (tmp_path / "ft" / "checkpoint_last.pt").exists()


@pytest.mark.parametrize("method", ["auto", "two-level"])
def test_compressed_slim_output_is_the_fitted_matrix_and_logits_are_its_product(method, tied_lm, ptb_bin, tmp_path):
    from fairseq import checkpoint_utils

    out = tmp_path / "slim.pt"
    proc = compress_cli(tied_lm, out, "--data", ptb_bin, "--input-embedding", "slim", "--output-layer", "slim",
                        "--output-slim-subvectors", 4, "--output-slim-pool", "1/2", "--fit-weights", "uniform",
                        "--kmeans", method)
    assert re.search(rf"k-means: \w+, {method}", proc.stdout), proc.stdout
    (old,), _, _ = checkpoint_utils.load_model_ensemble_and_task([str(tied_lm)], arg_overrides={"data": str(ptb_bin)})
    (new,), _, _ = checkpoint_utils.load_model_ensemble_and_task([str(out)], arg_overrides={"data": str(ptb_bin)})
    layer = new.decoder.compact_output
    h = torch.randn(7, 16)
    with torch.no_grad():
        torch.testing.assert_close(layer.logits(h), h @ layer.materialize().t(), rtol=1e-5, atol=1e-5)
        # the fitted matrix approximates the trained one (1/2 of its parameters)
        trained = old.decoder.compact_output.weight
        err = (layer.materialize() - trained).norm() / trained.norm()
        assert err < 0.6, float(err)
    # every other tensor is copied as trained
    for name, p in old.decoder.lstm.state_dict().items():
        assert torch.equal(p, new.decoder.lstm.state_dict()[name])


def test_compress_refuses_define_and_non_standard_sources(tied_lm, ptb_bin, tmp_path):
    bad = compress_cli(tied_lm, tmp_path / "x.pt", "--data", ptb_bin, "--input-embedding", "define", expect_ok=False)
    assert bad.returncode == 2 and "--input-embedding: define has no closed-form fit" in bad.stderr
    slim = tmp_path / "slim.pt"
    compress_cli(tied_lm, slim, "--data", ptb_bin, "--input-embedding", "slim", "--slim-subvectors", 4,
                 "--slim-pool", "1/16")
    again = compress_cli(slim, tmp_path / "y.pt", "--data", ptb_bin, "--input-embedding", "projected", expect_ok=False)
    assert again.returncode == 2 and "compress starts from a standard input and a softmax output" in again.stderr


def test_translation_checkpoint_compresses_and_generates(multi30k_bin, tmp_path):
    mt = ["--arch", "compact_transformer", "--encoder-layers", 1, "--decoder-layers", 1, "--encoder-embed-dim", 16,
          "--decoder-embed-dim", 16, "--encoder-ffn-embed-dim", 32, "--decoder-ffn-embed-dim", 32,
          "--encoder-attention-heads", 2, "--decoder-attention-heads", 2, "--share-all-embeddings",
          "--optimizer", "adam", "--lr", 0.005, "--max-tokens", 1000, "--max-update", 4, "--no-progress-bar",
          "--num-workers", 0, "--no-epoch-checkpoints", "--seed", 1]
    run_cli("fairseq-train", multi30k_bin, "--user-dir", USER_DIR, *mt, "--save-dir", tmp_path / "mt")
    out = tmp_path / "mt-slim.pt"
    compress_cli(tmp_path / "mt" / "checkpoint_last.pt", out, "--data", multi30k_bin, "--input-embedding", "slim",
                 "--slim-subvectors", 4, "--output-layer", "slim", "--output-slim-subvectors", 4)
    gen = run_cli("fairseq-generate", multi30k_bin, "--user-dir", USER_DIR, "--path", out, "--beam", 2,
                  "--max-len-b", 5, "--batch-size", 20, "--required-batch-size-multiple", 1)
    assert "BLEU" in gen.stdout + gen.stderr


def test_pretrained_assignments_for_training_from_scratch(tied_lm, ptb_bin, tmp_path, monkeypatch):
    from fairseq import checkpoint_utils

    from fairseq_compactemb.modules.pretrained_assignment import pretrained_assignment

    monkeypatch.setenv("COMPACTEMB_CACHE", str(tmp_path / "cache"))
    save = tmp_path / "km"
    run_cli("fairseq-train", ptb_bin, "--user-dir", USER_DIR, *LSTM, "--input-embedding", "slim", "--slim-subvectors", 4,
            "--slim-assignment", f"kmeans:{tied_lm}", "--output-layer", "slim", "--output-slim-subvectors", 4,
            "--output-slim-assignment", f"kmeans:{tied_lm}", "--max-update", 2, "--save-dir", save,
            env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "COMPACTEMB_CACHE": str(tmp_path / "cache")})
    state = torch.load(save / "checkpoint_last.pt", map_location="cpu", weights_only=False)["model"]
    (old,), _, _ = checkpoint_utils.load_model_ensemble_and_task([str(tied_lm)], arg_overrides={"data": str(ptb_bin)})
    V = old.decoder.embed_tokens.weight.size(0)
    m_in, m_out = state["decoder.embed_tokens.pool"].size(0), state["decoder.compact_output.pool"].size(0)
    want_in = pretrained_assignment(f"kmeans:{tied_lm}", V, 4, m_in, True, "--slim-assignment")
    want_out = pretrained_assignment(f"kmeans:{tied_lm}", V, 4, m_out, False, "--output-slim-assignment")
    assert torch.equal(state["decoder.embed_tokens.assignment"], want_in)
    assert torch.equal(state["decoder.compact_output.assignment"], want_out)
    # the same table from a saved file; a missing pretrained file only warns (the checkpoint has the table)
    saved = tmp_path / "assignment.pt"
    torch.save(want_in, saved)
    assert torch.equal(pretrained_assignment(f"file:{saved}", V, 4, m_in, True, "--slim-assignment"), want_in)
    with pytest.warns(UserWarning, match="not found"):
        assert pretrained_assignment(f"kmeans:{tmp_path}/gone.pt", V, 4, m_in, True, "--slim-assignment") is None

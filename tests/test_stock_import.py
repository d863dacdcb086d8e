"""Checkpoints trained by stock fairseq, without the plugin, read by ``compress``
(``fairseq_compactemb/stock_import.py``): read as the plugin's model they give the same
log-probs (post-norm and pre-norm, tied and untied LMs, a translation model with all embeddings
shared), the identity compression scores exactly as the stock checkpoint in fairseq-eval-lm, a
compressed stock translation model generates, a wrong translation of the config is caught, and
what cannot be read is refused in one line."""
import copy
import re
from argparse import Namespace

import pytest
import torch

from conftest import USER_DIR, compress_cli, run_cli
from fairseq_compactemb.modules import CompactCheckpointError

STOCK_LM = ["--task", "language_modeling", "--arch", "transformer_lm", "--decoder-layers", 1,
            "--decoder-embed-dim", 16, "--decoder-input-dim", 16, "--decoder-output-dim", 16,
            "--decoder-ffn-embed-dim", 32, "--decoder-attention-heads", 2, "--tokens-per-sample", 16,
            "--max-tokens", 512, "--optimizer", "adam", "--lr", 0.005, "--max-update", 3, "--no-progress-bar",
            "--num-workers", 0, "--no-epoch-checkpoints", "--seed", 1]
NORMS = {"post-norm-untied": [], "pre-norm-tied": ["--decoder-normalize-before", "--share-decoder-input-output-embed"]}


def train_stock(data, save_dir, *flags):
    """fairseq-train with no --user-dir: a checkpoint of fairseq's own model."""
    run_cli("fairseq-train", data, *flags, "--save-dir", save_dir)
    return save_dir / "checkpoint_last.pt"


def load(path, data):
    from fairseq import checkpoint_utils, tasks

    state = checkpoint_utils.load_checkpoint_to_cpu(str(path), arg_overrides={"data": str(data)})
    return state, tasks.setup_task(state["cfg"].task)


def valid_batch(task):
    task.load_dataset("valid")
    itr = task.get_batch_iterator(task.dataset("valid"), max_tokens=256).next_epoch_itr(shuffle=False)
    return next(iter(itr))["net_input"]


def log_probs(model, net_input):
    """``[tokens, V]`` at the batch's real tokens (a padding position scores nothing)."""
    with torch.no_grad():
        lprobs = model.eval().get_normalized_probs(model(**net_input), log_probs=True)
    return lprobs[net_input["src_tokens"] != model.decoder.dictionary.pad()]


@pytest.fixture(scope="module", params=list(NORMS))
def stock_lm(request, tiny_bin, tmp_path_factory):
    import fairseq_compactemb  # noqa: F401

    return request.param, train_stock(tiny_bin, tmp_path_factory.mktemp("stock_lm"), *STOCK_LM, *NORMS[request.param])


def test_a_stock_lm_read_as_the_plugins_gives_the_same_log_probs(stock_lm, tiny_bin):
    from fairseq_compactemb.stock_import import import_stock

    name, path = stock_lm
    state, task = load(path, tiny_bin)
    stock = task.build_model(copy.deepcopy(state["cfg"].model))
    stock.load_state_dict(state["model"], strict=True)
    ours, cfg = import_stock(state, task, str(path))
    assert cfg._name == "compact_transformer_lm" and type(ours).__module__.startswith("fairseq_compactemb.")
    assert bool(cfg.tie_input_output) == ("tied" in name and "untied" not in name)
    net_input = valid_batch(task)
    torch.testing.assert_close(log_probs(ours, net_input), log_probs(stock, net_input), rtol=1e-5, atol=1e-5)
    if name == "post-norm-untied":  # the norm placement matters: read pre-norm, the function changes
        assert not stock.decoder.layers[0].normalize_before
        pre = copy.deepcopy(cfg)
        pre.keep_decoder_normalize_before = False
        wrong = task.build_model(pre)
        wrong.load_state_dict(state["model"], strict=False)
        assert not torch.allclose(log_probs(wrong, net_input), log_probs(stock, net_input), atol=1e-3)


def test_a_wrong_translation_of_the_config_is_refused_not_written(stock_lm, tiny_bin, monkeypatch):
    from fairseq_compactemb import stock_import

    name, path = stock_lm
    if name != "post-norm-untied":
        pytest.skip("the post-norm checkpoint is the one that a pre-norm reading gets wrong")
    right = stock_import.compact_config

    def pre_norm(model_cfg, p):  # the same tensors (no final norm either), another function
        cfg = right(model_cfg, p)
        cfg.keep_decoder_normalize_before, cfg.no_decoder_final_norm = False, True
        return cfg

    monkeypatch.setattr(stock_import, "compact_config", pre_norm)
    state, task = load(path, tiny_bin)
    with pytest.raises(CompactCheckpointError, match="does not compute what stock fairseq computes"):
        stock_import.import_stock(state, task, str(path))


def test_identity_compression_of_a_stock_lm_scores_as_the_stock_checkpoint(stock_lm, tiny_bin, tmp_path):
    name, path = stock_lm
    if name != "post-norm-untied":
        pytest.skip("one round trip through the CLIs: stock fairseq's default (post-norm, untied)")
    out = tmp_path / "same.pt"
    proc = compress_cli(path, out, "--data", tiny_bin, "--input-embedding", "standard", "--output-layer", "softmax")
    assert "compress:" in proc.stdout

    def ppl(checkpoint, *user_dir):
        run = run_cli("fairseq-eval-lm", tiny_bin, *user_dir, "--path", checkpoint, "--gen-subset", "valid",
                      "--tokens-per-sample", 16, "--max-tokens", 512)
        return float(re.search(r"Perplexity: ([0-9.]+)", run.stdout + run.stderr).group(1))

    assert ppl(out, "--user-dir", USER_DIR) == ppl(path)


def test_a_stock_translation_model_compresses_and_generates(multi30k_bin, tmp_path):
    mt = ["--task", "translation", "--arch", "transformer", "--encoder-layers", 1, "--decoder-layers", 1,
          "--encoder-embed-dim", 16, "--decoder-embed-dim", 16, "--encoder-ffn-embed-dim", 32,
          "--decoder-ffn-embed-dim", 32, "--encoder-attention-heads", 2, "--decoder-attention-heads", 2,
          "--share-all-embeddings", "--optimizer", "adam", "--lr", 0.005, "--max-tokens", 1000, "--max-update", 3,
          "--no-progress-bar", "--num-workers", 0, "--no-epoch-checkpoints", "--seed", 1]
    path = train_stock(multi30k_bin, tmp_path / "mt", *mt)
    out = tmp_path / "mt-slim.pt"
    proc = compress_cli(path, out, "--data", multi30k_bin, "--input-embedding", "slim", "--slim-subvectors", 4,
                        "--output-layer", "slim", "--output-slim-subvectors", 4)
    before, after = (int(x.replace(",", "")) for x in re.search(r"parameters: ([0-9,]+) -> ([0-9,]+)", proc.stdout).groups())
    assert after < before
    gen = run_cli("fairseq-generate", multi30k_bin, "--user-dir", USER_DIR, "--path", out, "--beam", 2,
                  "--max-len-b", 5, "--batch-size", 20, "--required-batch-size-multiple", 1)
    assert "BLEU" in gen.stdout + gen.stderr


def test_what_cannot_be_read_is_refused_in_one_line(tiny_bin, tmp_path):
    import fairseq_compactemb  # noqa: F401
    from fairseq_compactemb.stock_import import compact_config

    lstm = train_stock(tiny_bin, tmp_path / "lstm", "--task", "language_modeling", "--arch", "lstm_lm",
                       "--decoder-embed-dim", 16, "--decoder-hidden-size", 16, "--decoder-out-embed-dim", 16,
                       "--tokens-per-sample", 16, "--max-tokens", 512, "--optimizer", "adam", "--max-update", 1,
                       "--no-progress-bar", "--num-workers", 0, "--no-epoch-checkpoints")
    bad = compress_cli(lstm, tmp_path / "x.pt", "--data", tiny_bin, "--input-embedding", "slim", expect_ok=False)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert "is a checkpoint of fairseq's 'lstm_lm' model, which compress cannot read" in bad.stderr
    assert not (tmp_path / "x.pt").exists()
    adaptive = Namespace(arch="transformer_lm_wiki103", adaptive_input=True)
    with pytest.raises(CompactCheckpointError, match="stock fairseq's --adaptive-input"):
        compact_config(adaptive, "wiki103.pt")

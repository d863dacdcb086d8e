"""Every bad configuration gets ONE clear line through the real ``fairseq-train`` CLI.

Table-driven: each case is one ``fairseq-train`` process on tiny real data (PTB cut, V=4,992)
that must exit with status 2 before any training step, print exactly one error line naming
the flag (``fairseq-compactemb: error: --flag: problem; fix`` from the plugin's excepthook, or
argparse's ``error: argument --flag: invalid choice`` for an unknown choice) and no traceback.
Cases that used to end in an assert or a bare ValueError (bad dropout, heads that do not divide
the dimension, compact_adaptive_loss without an adaptive softmax, noticed only in the first
training step) are validated at build time now.
"""
import subprocess
import sys

import pytest

from conftest import TINY_LM_TRAIN, USER_DIR, run_cli

LSTM = ["--arch", "compact_lstm_lm", "--decoder-hidden-size", 16, "--decoder-layers", 1]
TLM = ["--arch", "compact_transformer_lm", "--decoder-embed-dim", 16, "--decoder-layers", 1,
       "--decoder-ffn-embed-dim", 32, "--decoder-attention-heads", 2]
ADAPTIVE_OUT = ["--output-layer", "adaptive", "--adaptive-cutoffs", "300,1500"]

# id: (flags, flag the error must name, words the problem must contain)
CASES = {
    "slim-K-does-not-divide-d": (LSTM + ["--input-embedding", "slim", "--slim-subvectors", 5, "--slim-pool", 64],
                                 "--slim-subvectors", "does not divide the dimension 16"),
    "slim-M-below-K": (LSTM + ["--input-embedding", "slim", "--slim-subvectors", 4, "--slim-pool", 2],
                       "--slim-pool", "smaller than K=4"),
    "slim-M-above-VK": (LSTM + ["--input-embedding", "slim", "--slim-subvectors", 4, "--slim-pool", 100000],
                        "--slim-pool", "exceeds V*K=19968"),
    "slim-output-pool-not-disjoint": (LSTM + ["--output-layer", "slim", "--output-slim-subvectors", 4,
                                              "--output-slim-pool", 66], "--output-slim-pool", "4 does not divide 66"),
    "cutoffs-unsorted": (LSTM + ["--input-embedding", "adaptive", "--adaptive-cutoffs", "1500,300"],
                         "--adaptive-cutoffs", "not strictly increasing"),
    "cutoffs-duplicate": (LSTM + ADAPTIVE_OUT[:2] + ["--adaptive-cutoffs", "300,300", "--criterion",
                                                     "compact_adaptive_loss"],
                          "--adaptive-cutoffs", "not strictly increasing"),
    "cutoffs-reach-vocab": (LSTM + ["--input-embedding", "adaptive", "--adaptive-cutoffs", "300,4992"],
                            "--adaptive-cutoffs", ">= the vocabulary size V=4992"),
    "tie-define-to-slim": (LSTM + ["--input-embedding", "define", "--output-layer", "slim", "--tie-input-output"],
                           "--tie-input-output", "can only be tied to --input-embedding slim"),
    "define-expand-not-divisible": (LSTM + ["--input-embedding", "define", "--define-map-dim", 8,
                                            "--define-expand-dim", 31, "--define-levels", 2,
                                            "--define-max-groups", 4, "--define-widths", "linear"],
                                    "--define-expand-dim", "k=31 is not divisible"),
    "define-authors-one-level": (LSTM + ["--input-embedding", "define", "--define-levels", 1, "--define-widths", "authors"],
                                 "--define-levels", "the authors' layout has at least 2 levels"),
    "nce-more-noise-than-vocab": (LSTM + ["--criterion", "nce", "--noise-samples", 100000],
                                  "--noise-samples", "only 4990 words can be sampled"),
    "adaptive-loss-without-adaptive-softmax": (LSTM + ["--criterion", "compact_adaptive_loss"],
                                               "--criterion", "needs --output-layer adaptive, got softmax"),
    "nce-with-adaptive-softmax": (LSTM + ADAPTIVE_OUT + ["--criterion", "nce", "--noise-samples", 20],
                                  "--criterion", "--output-layer adaptive cannot"),
    "hashnet-no-compression": (LSTM + ["--output-layer", "hashnet", "--output-hashnet-buckets", 10 ** 8],
                               "--output-hashnet-buckets", "gives no compression"),
    "dropout-above-1": (LSTM + ["--dropout", 1.5], "--dropout", "not a dropout probability"),
    "heads-do-not-divide-dim": (TLM[:-1] + [3], "--decoder-attention-heads", "3 heads do not divide"),
    "fairseq-adaptive-input": (TLM + ["--adaptive-input"], "--adaptive-input", "fairseq's own embedding option"),
    "fairseq-share-decoder-embed": (TLM + ["--share-decoder-input-output-embed"],
                                    "--share-decoder-input-output-embed", "fairseq's own embedding option"),
    "unknown-input-embedding": (LSTM + ["--input-embedding", "bogus"], "--input-embedding", "invalid choice: 'bogus'"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_configuration_is_one_clear_line(case, ptb_bin, tmp_path):
    flags, flag, problem = CASES[case]
    out = run_cli("fairseq-train", ptb_bin, "--user-dir", USER_DIR, *flags, *TINY_LM_TRAIN,
                  "--max-update", 2, "--save-dir", tmp_path, expect_ok=False)
    log = out.stdout + out.stderr
    assert out.returncode == 2, f"exit {out.returncode}\n{out.stderr[-3000:]}"
    assert "Traceback" not in out.stderr, out.stderr[-3000:]
    assert "begin training epoch" not in log and "num_updates" not in log  # before any step
    errors = [line for line in out.stderr.splitlines() if ": error: " in line]
    assert len(errors) == 1, out.stderr[-3000:]
    if case == "unknown-input-embedding":  # argparse itself, with the valid choices
        assert errors[0].startswith(f"fairseq-train: error: argument {flag}: {problem}")
        assert "'slim'" in errors[0]
    else:
        prefix = f"fairseq-compactemb: error: {flag}: "
        assert errors[0].startswith(prefix), errors[0]
        assert problem in errors[0], errors[0]
        assert "; " in errors[0][len(prefix):]  # "problem; fix"
    assert not list(tmp_path.glob("*.pt"))


def test_adaptive_softmax_dropout_is_checked_at_build_time():
    from argparse import Namespace

    from fairseq_compactemb.modules import CompactConfigError, build_output_layer

    cfg = Namespace(output_layer="adaptive", adaptive_cutoffs="10,20", adaptive_softmax_dropout=2.0)
    with pytest.raises(CompactConfigError, match="^--adaptive-softmax-dropout: 2.0 is not a dropout"):
        build_output_layer(cfg, 40, 16)
    cfg.adaptive_softmax_dropout = 0.2
    assert build_output_layer(cfg, 40, 16).dropout.p == 0.2


@pytest.mark.parametrize("tool", ["compress", "report", "model_size"])
def test_every_tool_prints_its_help(tool):
    """``--help`` formats every option's help (argparse %-expands it: a bare '%' crashes it)."""
    proc = subprocess.run([sys.executable, "-m", f"fairseq_compactemb.{tool}", "--help"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert proc.stdout.startswith("usage: python -m fairseq_compactemb.")
    if tool == "compress":  # the compact layers' flags, with their help texts
        assert "--adaptive-cutoffs" in proc.stdout and "percent of the vocabulary" in proc.stdout

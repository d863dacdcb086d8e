"""Adaptive input + tied adaptive softmax through the real fairseq CLIs (compact_adaptive_loss)."""
import math
import re
from types import SimpleNamespace

import pytest
import torch

from conftest import TINY_LM_TRAIN, USER_DIR, run_cli
from test_cli_plugin import eval_lm_ppl
from test_safe_loading import _allowlisted_names, unsafe_globals

import fairseq_compactemb  # noqa: F401  (registers the criterion)
from fairseq_compactemb.criterions.compact_adaptive_loss import adaptive_output_layer
from fairseq_compactemb.modules import CompactConfigError
from fairseq_compactemb.modules.adaptive_softmax_output import AdaptiveSoftmaxOutput
from fairseq_compactemb.modules.softmax_output import SoftmaxOutput

ADAPTIVE = ["--arch", "compact_lstm_lm", "--decoder-hidden-size", 32, "--decoder-layers", 1,
            "--input-embedding", "adaptive", "--output-layer", "adaptive",
            "--adaptive-cutoffs", "500,2000", "--adaptive-factor", 2]


def test_criterion_refuses_a_non_adaptive_output_layer():
    softmax_model = SimpleNamespace(decoder=SimpleNamespace(compact_output=SoftmaxOutput(10, 4)))
    with pytest.raises(CompactConfigError, match="--criterion: compact_adaptive_loss needs "
                                                 "--output-layer adaptive, got softmax"):
        adaptive_output_layer(softmax_model)
    with pytest.raises(CompactConfigError, match="--criterion.*without a fairseq-compactemb output layer"):
        adaptive_output_layer(SimpleNamespace(decoder=SimpleNamespace()))
    layer = AdaptiveSoftmaxOutput(10, 4, [3, 10])
    assert adaptive_output_layer(SimpleNamespace(decoder=SimpleNamespace(compact_output=layer))) is layer


def test_tied_adaptive_lm_trains_with_pytorch_ddp_backend_and_evaluates(ptb_bin, tmp_path):
    out = run_cli("fairseq-train", ptb_bin, "--user-dir", USER_DIR, *ADAPTIVE, "--tie-input-output",
                  "--criterion", "compact_adaptive_loss", "--ddp-backend", "pytorch_ddp",
                  "--max-update", 8, "--save-dir", tmp_path, *TINY_LM_TRAIN)
    log = out.stdout + out.stderr
    # V=4992: bands 500 x 32, 1500 x 16, 2992 x 8, each with its projection to 32
    n_in = 500 * 32 + 32 * 32 + 1500 * 16 + 32 * 16 + 2992 * 8 + 32 * 8
    assert f"embedding params: {n_in:,} (" in log, log[-3000:]
    losses = [float(x) for x in re.findall(r"\| loss ([0-9.]+) \|", log)]
    assert losses and all(math.isfinite(x) for x in losses), log[-3000:]
    ckpt = tmp_path / "checkpoint_last.pt"
    state = torch.load(ckpt, map_location="cpu", weights_only=False)["model"]
    assert any(k.startswith("decoder.compact_output.tail_weights") for k in state)
    assert unsafe_globals(ckpt) <= _allowlisted_names()
    ev = run_cli("fairseq-eval-lm", ptb_bin, "--user-dir", USER_DIR, "--path", ckpt,
                 "--tokens-per-sample", 32, "--max-tokens", 512)
    ppl = eval_lm_ppl(ev.stdout + ev.stderr)
    assert math.isfinite(ppl) and 1 < ppl < 4992 * 2


def test_cli_refuses_compact_adaptive_loss_with_softmax_output(ptb_bin, tmp_path):
    out = run_cli("fairseq-train", ptb_bin, "--user-dir", USER_DIR, "--arch", "compact_lstm_lm",
                  "--decoder-hidden-size", 16, "--decoder-layers", 1, "--criterion", "compact_adaptive_loss",
                  "--max-update", 1, "--save-dir", tmp_path, *TINY_LM_TRAIN, expect_ok=False)
    assert out.returncode == 2, out.stderr[-3000:]
    assert out.stderr.strip().splitlines()[-1] == (
        "fairseq-compactemb: error: --criterion: compact_adaptive_loss needs --output-layer adaptive, "
        "got softmax; use --output-layer adaptive or --criterion cross_entropy")


def test_cli_derives_the_cutoffs_when_not_given(ptb_bin, tmp_path):
    out = run_cli("fairseq-train", ptb_bin, "--user-dir", USER_DIR, "--arch", "compact_lstm_lm",
                  "--decoder-hidden-size", 16, "--input-embedding", "adaptive", "--output-layer", "adaptive",
                  "--tie-input-output", "--max-update", 1, "--save-dir", tmp_path, *TINY_LM_TRAIN)
    log = out.stdout + out.stderr
    assert "--adaptive-cutoffs not given: 374,1118 (7.5% and 22.4% of V=4,992" in log and "num_updates 1" in log

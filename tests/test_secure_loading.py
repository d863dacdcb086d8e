"""Checkpoints load securely (``weights_only=True``) and completely in every loader, and a bad
checkpoint fails with one line naming what is wrong.

Secure: every load below runs with ``TORCH_FORCE_WEIGHTS_ONLY_LOAD=1``, which makes torch use
its weights-only unpickler even where a caller passed ``weights_only=False``, through
fairseq-eval-lm, fairseq-generate, fairseq-interactive, ``fairseq_compactemb.from_pretrained``
and fairseq's own ``Model.from_pretrained``; a pickled payload is refused by the hub loader too.

Complete: the loaded model holds the checkpoint's non-trainable state (the slim ``[V, K]``
assignment buffer), not one re-drawn by the loading process.

Clear failures: a tampered (out-of-range) or missing slim assignment, or a checkpoint used with
another dictionary (eval-lm, hub, resumed fairseq-train), raise ``CompactCheckpointError`` in
the module's ``_load_from_state_dict`` before anything is copied; the CLIs print it as
``fairseq-compactemb: error: <tensor>: problem; fix`` (exit status 1, no traceback).
"""
import math
import os
import re

import pytest
import torch

from conftest import USER_DIR, run_cli
from test_cli_plugin import eval_lm_ppl
from test_safe_loading import _allowlisted_names, _Payload, unsafe_globals

WEIGHTS_ONLY = dict(os.environ, OMP_NUM_THREADS="1", TORCH_FORCE_WEIGHTS_ONLY_LOAD="1")
WEIGHTS_ONLY.pop("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", None)

LM = ["--task", "language_modeling", "--arch", "compact_lstm_lm", "--decoder-hidden-size", 16,
      "--decoder-layers", 1, "--output-layer", "slim", "--output-slim-subvectors", 4,
      "--output-slim-pool", 128, "--tokens-per-sample", 16, "--max-tokens", 256, "--optimizer", "adam",
      "--lr", 0.003, "--no-progress-bar", "--num-workers", 0, "--seed", 1, "--no-epoch-checkpoints",
      "--max-valid-steps", 2]
EVAL = ["--tokens-per-sample", 16, "--max-tokens", 256]
OUT_ASSIGNMENT = "decoder.compact_output.assignment"


@pytest.fixture(scope="module")
def lm_ckpt(ptb_bin, tmp_path_factory):
    """A standard-input, slim-output LSTM LM trained for 3 updates on the PTB cut."""
    save = tmp_path_factory.mktemp("lm")
    run_cli("fairseq-train", ptb_bin, "--user-dir", USER_DIR, *LM, "--max-update", 3, "--save-dir", save)
    return save / "checkpoint_last.pt"


@pytest.fixture(scope="module")
def other_bin(ptb_bin, tmp_path_factory):
    """A data-bin whose dictionary (built from PTB valid) has another size than ptb_bin's."""
    work = tmp_path_factory.mktemp("other")
    run_cli("fairseq-preprocess", "--only-source", "--trainpref", ptb_bin.parent / "valid.txt",
            "--validpref", ptb_bin.parent / "valid.txt", "--destdir", work / "bin", "--workers", 1)
    return work / "bin"


def one_line_error(proc, what):
    """The run failed with exit 1 and exactly one plugin error line about ``what``."""
    assert proc.returncode == 1, f"exit {proc.returncode}\n{proc.stderr[-3000:]}"
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and errors[0].startswith(f"fairseq-compactemb: error: {what}: "), proc.stderr[-2000:]
    return errors[0]


def edited_checkpoint(src, dst, edit):
    state = torch.load(src, map_location="cpu")
    state["model"] = dict(state["model"])
    edit(state["model"])
    torch.save(state, dst)
    return dst


# -- secure and complete ----------------------------------------------------------------------
def test_lm_checkpoint_loads_weights_only_in_eval_lm_and_hub(lm_ckpt, ptb_bin, monkeypatch):
    assert unsafe_globals(lm_ckpt) <= _allowlisted_names()
    ev = run_cli("fairseq-eval-lm", ptb_bin, "--user-dir", USER_DIR, "--path", lm_ckpt, *EVAL, env=WEIGHTS_ONLY)
    ppl = eval_lm_ppl(ev.stdout + ev.stderr)
    assert math.isfinite(ppl) and 1 < ppl < 2 * 4992

    monkeypatch.setenv("TORCH_FORCE_WEIGHTS_ONLY_LOAD", "1")  # torch reads it at every load
    import fairseq_compactemb
    from fairseq_compactemb.models.compact_lstm_lm import CompactLSTMLanguageModel

    saved = torch.load(lm_ckpt, map_location="cpu")["model"]
    hubs = [fairseq_compactemb.from_pretrained(str(lm_ckpt), str(ptb_bin)),
            CompactLSTMLanguageModel.from_pretrained(str(lm_ckpt.parent), checkpoint_file=lm_ckpt.name,
                                                     data_name_or_path=str(ptb_bin))]
    for hub in hubs:
        model = hub.models[0]
        # complete: the trained assignment and weights, not this process's fresh draw
        assert torch.equal(model.decoder.compact_output.assignment, saved[OUT_ASSIGNMENT])
        assert torch.equal(model.decoder.embed_tokens.weight, saved["decoder.embed_tokens.weight"])
        scored = hub.score("the market closed higher")
        targets, scores = scored["tokens"], scored["positional_scores"]
        assert len(targets) >= 4 and torch.isfinite(scores).all() and (scores < 0).all()
        # the hub's scores are the loaded model's own log-probabilities of each next word
        src = torch.cat([torch.tensor([hub.task.source_dictionary.eos()]), targets[:-1]])[None]
        with torch.no_grad():
            lprobs = model.get_normalized_probs(model(src), log_probs=True)[0]
        torch.testing.assert_close(scores, lprobs.gather(1, targets[:, None]).squeeze(1))
    torch.testing.assert_close(hubs[0].score("stocks fell")["positional_scores"],
                               hubs[1].score("stocks fell")["positional_scores"])


def test_hub_refuses_a_pickled_payload(lm_ckpt, ptb_bin, tmp_path):
    import fairseq_compactemb

    state = torch.load(lm_ckpt, map_location="cpu")
    marker = tmp_path / "pwned"
    state["extra_state"]["payload"] = _Payload(marker)
    evil = tmp_path / "evil.pt"
    torch.save(state, evil)
    with pytest.raises(Exception, match="Weights only load failed"):
        fairseq_compactemb.from_pretrained(str(evil), str(ptb_bin))
    assert not marker.exists()


def test_translation_checkpoint_loads_weights_only_in_generate_and_interactive(multi30k_bin, tmp_path):
    import subprocess

    from conftest import cli

    run_cli("fairseq-train", multi30k_bin, "--user-dir", USER_DIR, "--arch", "compact_transformer",
            "--encoder-layers", 1, "--decoder-layers", 1, "--encoder-embed-dim", 16, "--decoder-embed-dim", 16,
            "--encoder-ffn-embed-dim", 32, "--decoder-ffn-embed-dim", 32, "--encoder-attention-heads", 2,
            "--decoder-attention-heads", 2, "--input-embedding", "slim", "--slim-subvectors", 4,
            "--slim-pool", 64, "--output-layer", "slim", "--output-slim-pool", 128, "--optimizer", "adam",
            "--lr", 0.002, "--max-tokens", 500, "--max-update", 3, "--no-progress-bar", "--num-workers", 0,
            "--no-epoch-checkpoints", "--seed", 1, "--save-dir", tmp_path)
    ckpt = tmp_path / "checkpoint_last.pt"
    needed = unsafe_globals(ckpt)
    assert "argparse.Namespace" in needed and needed <= _allowlisted_names()  # argparse-configured model
    gen = run_cli("fairseq-generate", multi30k_bin, "--user-dir", USER_DIR, "--path", ckpt, "--beam", 2,
                  "--batch-size", 16, "--max-len-b", 8, env=WEIGHTS_ONLY)
    assert sum(line.startswith("H-") for line in gen.stdout.splitlines()) == 40
    proc = subprocess.run([cli("fairseq-interactive"), str(multi30k_bin), "--user-dir", str(USER_DIR),
                           "--path", str(ckpt), "--beam", "2", "--source-lang", "en", "--target-lang", "de",
                           "--max-len-b", "8"], input="a man is riding a bike .\n", capture_output=True,
                          text=True, timeout=300, env=WEIGHTS_ONLY)
    assert proc.returncode == 0, proc.stderr[-3000:]
    hyps = [line for line in proc.stdout.splitlines() if line.startswith("H-")]
    assert len(hyps) == 1 and math.isfinite(float(hyps[0].split("\t")[1]))


# -- bad checkpoints: one line ----------------------------------------------------------------
def _tamper(model):
    table = model[OUT_ASSIGNMENT].clone()
    table[7, 2] = 10 ** 6
    model[OUT_ASSIGNMENT] = table


def _drop(model):
    del model[OUT_ASSIGNMENT]


@pytest.mark.parametrize("edit,problem", [(_tamper, r"has entries outside \[0, M=128\).*tampered"),
                                          (_drop, r"slim assignment is missing.*tampered")],
                         ids=["tampered", "missing"])
def test_bad_slim_assignment_is_one_line(edit, problem, lm_ckpt, ptb_bin, tmp_path):
    bad = edited_checkpoint(lm_ckpt, tmp_path / "bad.pt", edit)
    proc = run_cli("fairseq-eval-lm", ptb_bin, "--user-dir", USER_DIR, "--path", bad, *EVAL,
                   env=WEIGHTS_ONLY, expect_ok=False)
    line = one_line_error(proc, OUT_ASSIGNMENT)
    assert re.search(problem, line), line
    # the hub loader raises the same error (a ValueError subclass) for Python callers
    import fairseq_compactemb
    from fairseq_compactemb.modules import CompactCheckpointError

    with pytest.raises(CompactCheckpointError, match=problem):
        fairseq_compactemb.from_pretrained(str(bad), str(ptb_bin))


def test_other_vocabulary_is_one_line(lm_ckpt, ptb_bin, other_bin, tmp_path):
    other_size = len((other_bin / "dict.txt").read_text().splitlines()) + 4  # + 4 special symbols
    proc = run_cli("fairseq-eval-lm", other_bin, "--user-dir", USER_DIR, "--path", lm_ckpt, *EVAL,
                   env=WEIGHTS_ONLY, expect_ok=False)
    line = one_line_error(proc, "decoder.embed_tokens.weight")
    assert f"the checkpoint has a 4,992-word vocabulary (shape [4992, 16]) but the dictionary has " \
           f"{other_size:,} words; load it with the data directory (dict.txt) it was trained with" in line
    # resuming training on another data-bin: fairseq's trainer re-raises the load failure as
    # "Cannot load model parameters ..."; the plugin still prints our one line
    (tmp_path / "resume").mkdir()
    (tmp_path / "resume" / "checkpoint_last.pt").write_bytes(lm_ckpt.read_bytes())
    proc = run_cli("fairseq-train", other_bin, "--user-dir", USER_DIR, *LM, "--max-update", 5,
                   "--save-dir", tmp_path / "resume", expect_ok=False)
    assert "vocabulary" in one_line_error(proc, "decoder.embed_tokens.weight")
    assert "num_updates 4" not in proc.stdout


# -- broken files: one line naming the file -----------------------------------------------------
def _truncated(src, dst):
    data = src.read_bytes()
    dst.write_bytes(data[: len(data) * 2 // 3])  # a partial copy / download


def _text(src, dst):
    dst.write_text("this is not a checkpoint\nbut a text file\n")


def _empty(src, dst):
    dst.write_bytes(b"")


@pytest.mark.parametrize("make,problem", [(_truncated, r"is truncated \([0-9,]+ bytes"),
                                          (_text, r"is not a PyTorch checkpoint \(it starts with 'this is not a"),
                                          (_empty, r"is empty \(0 bytes\)")],
                         ids=["truncated", "text", "empty"])
def test_broken_checkpoint_file_is_one_line_in_every_cli(make, problem, lm_ckpt, ptb_bin, multi30k_bin, tmp_path):
    bad = tmp_path / "checkpoint_best.pt"
    make(lm_ckpt, bad)
    for name, args in [("fairseq-eval-lm", [ptb_bin, "--path", bad, *EVAL]),
                       ("fairseq-generate", [multi30k_bin, "--path", bad, "--beam", 2]),
                       ("fairseq-interactive", [multi30k_bin, "--path", bad, "--beam", 2])]:
        proc = run_cli(name, *args, "--user-dir", USER_DIR, env=WEIGHTS_ONLY, expect_ok=False)
        line = one_line_error(proc, str(bad))
        assert re.search(problem, line) and "copy or download the file again" in line, (name, line)
    # fairseq-train resuming from a broken checkpoint_last.pt
    resume = tmp_path / "resume"
    resume.mkdir()
    make(lm_ckpt, resume / "checkpoint_last.pt")
    proc = run_cli("fairseq-train", ptb_bin, "--user-dir", USER_DIR, *LM, "--max-update", 5, "--save-dir", resume,
                   expect_ok=False)
    assert re.search(problem, one_line_error(proc, str(resume / "checkpoint_last.pt")))
    import fairseq_compactemb
    from fairseq_compactemb.modules import CompactCheckpointError

    with pytest.raises(CompactCheckpointError, match=problem):
        fairseq_compactemb.from_pretrained(str(bad), str(ptb_bin))

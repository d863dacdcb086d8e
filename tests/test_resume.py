"""Resuming from checkpoint_last.pt is exact, through the real fairseq-train.

For each configuration: one uninterrupted run of N+M updates, and the same run stopped after N
updates and restarted (same --save-dir, --max-update N+M). The resumed run must log the same
per-update training losses and gradient norms (``--log-interval 1 --log-format json``) and end
with bit-identical model tensors (``torch.equal``), criterion state and data position. The
corpus is cut so that one epoch is ~20 updates: the interruption is mid-epoch (fairseq restores
the epoch iterator position) and the resumed part crosses an epoch boundary.

What makes it exact (two configurations: slim in/out + NCE, DeFINE + HashNet + importance
sampling):
* dropout: fairseq re-seeds torch with ``--seed + num_updates`` before every update;
* slim: the ``[V, K]`` assignment is a checkpointed buffer; the resumed process is even started
  with another ``--slim-seed`` and must still train exactly like the uninterrupted one;
* nce / importance_sampling: noise words come from a generator seeded from that per-update RNG
  (no sampler state to save), and the learned ``log Z`` (``--nce-learn-log-z``) is criterion
  state that fairseq saves because the criterion has parameters.
"""
import json

import pytest
import torch

from conftest import USER_DIR, run_cli

N, M = 12, 14  # stop after N updates, then M more; one epoch of the tiny corpus is ~21 updates

COMMON = ["--task", "language_modeling", "--tokens-per-sample", 16, "--max-tokens", 128,
          "--optimizer", "adam", "--lr", 0.003, "--no-progress-bar", "--log-interval", 1,
          "--log-format", "json", "--num-workers", 0, "--seed", 3, "--no-epoch-checkpoints",
          "--max-valid-steps", 1]
CONFIGS = {
    # slim input + slim output (checkpointed [V, K] assignments), NCE with a learned log Z
    "slim-nce": ["--arch", "compact_lstm_lm", "--decoder-hidden-size", 16, "--decoder-layers", 2,
                 "--dropout", 0.3, "--input-embedding", "slim", "--slim-subvectors", 4, "--slim-pool", 64,
                 "--output-layer", "slim", "--output-slim-subvectors", 4, "--output-slim-pool", 128,
                 "--output-bias", "--criterion", "nce", "--noise-samples", 20, "--nce-learn-log-z"],
    # DeFINE input, HashNet output, importance sampling, transformer dropouts
    "define-is": ["--arch", "compact_transformer_lm", "--decoder-embed-dim", 16, "--decoder-layers", 1,
                  "--decoder-ffn-embed-dim", 32, "--decoder-attention-heads", 2, "--dropout", 0.2,
                  "--attention-dropout", 0.1, "--input-embedding", "define", "--define-map-dim", 8,
                  "--define-expand-dim", 32, "--define-levels", 2, "--define-max-groups", 2,
                  "--output-layer", "hashnet", "--output-hashnet-buckets", 4096,
                  "--criterion", "importance_sampling", "--noise-samples", 30],
}
# flags of the resumed process only: a different assignment seed must not matter
RESUME_EXTRA = {"slim-nce": ["--slim-seed", 99]}
LOGGED = ("loss", "gnorm", "lr", "num_updates", "epoch")


@pytest.fixture(scope="module")
def tiny_bin(ptb_bin, tmp_path_factory):
    """120 PTB training lines with the full PTB dictionary (about 21 updates per epoch here)."""
    work = tmp_path_factory.mktemp("ptb_tiny")
    lines = (ptb_bin.parent / "train.txt").read_text().splitlines()[:120]
    (work / "train.txt").write_text("\n".join(lines) + "\n")
    run_cli("fairseq-preprocess", "--only-source", "--srcdict", ptb_bin / "dict.txt",
            "--trainpref", work / "train.txt", "--validpref", ptb_bin.parent / "valid.txt",
            "--destdir", work / "bin", "--workers", 1)
    return work / "bin"


def train(data, save_dir, max_update, flags):
    """Run fairseq-train; return the per-update train_inner records (only the compared fields)."""
    out = run_cli("fairseq-train", data, "--user-dir", USER_DIR, *COMMON, *flags,
                  "--max-update", max_update, "--save-dir", save_dir)
    records = []
    for line in (out.stdout + out.stderr).splitlines():
        if "| train_inner | " in line:
            rec = json.loads(line.split("| train_inner | ", 1)[1])
            records.append({k: rec[k] for k in LOGGED if k in rec})
    return records


def load(path):
    return torch.load(path, map_location="cpu")  # weights_only=True (the torch default)


@pytest.mark.parametrize("config", list(CONFIGS))
def test_resume_equals_uninterrupted_run(config, tiny_bin, tmp_path):
    flags = CONFIGS[config]
    full = train(tiny_bin, tmp_path / "full", N + M, flags)
    first = train(tiny_bin, tmp_path / "resumed", N, flags)
    second = train(tiny_bin, tmp_path / "resumed", N + M, flags + RESUME_EXTRA.get(config, []))
    assert [int(r["num_updates"]) for r in full] == list(range(1, N + M + 1))
    assert [int(r["num_updates"]) for r in first + second] == list(range(1, N + M + 1))
    assert int(second[-1]["epoch"]) == 2  # the resumed part crossed an epoch boundary
    assert first + second == full

    a, b = load(tmp_path / "full" / "checkpoint_last.pt"), load(tmp_path / "resumed" / "checkpoint_last.pt")
    assert a["model"].keys() == b["model"].keys()
    for name in a["model"]:
        assert torch.equal(a["model"][name], b["model"][name]), name
    assert a["extra_state"]["train_iterator"] == b["extra_state"]["train_iterator"]
    if config == "slim-nce":  # learned log Z lives in the criterion's state
        assert set(a["criterion"]) == {"log_z"} and torch.equal(a["criterion"]["log_z"], b["criterion"]["log_z"])
        assert a["criterion"]["log_z"].item() != 0.0  # it was trained
    if config == "slim-nce":  # the checkpoint kept the seed-1 table, not the resumed process's seed-99 one
        from fairseq_compactemb.modules.slim_assignment import make_assignment

        assert torch.equal(b["model"]["decoder.embed_tokens.assignment"],
                           make_assignment("balanced", 4992, 4, 64, seed=1))

        # control: the logged losses do depend on the random stream (dropout masks, noise
        # words, init): another --seed changes them, so equal trajectories are not an
        # artefact of the 3-decimal logging
        other = train(tiny_bin, tmp_path / "other-seed", 3, flags + ["--seed", 4])
        assert [r["loss"] for r in other] != [r["loss"] for r in full[:3]]

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


# --patience across a resume (fairseq_compactemb/early_stop_resume.py). On 120 training lines
# the tiny model overfits at once: the validation loss is lowest after epoch 1 (9.46; 9.8-10.3
# after epochs 2-6), so --patience 3 stops an uninterrupted run at epoch 4.
PATIENCE = ["--arch", "transformer_lm", "--decoder-layers", 1, "--decoder-embed-dim", 16,
            "--decoder-ffn-embed-dim", 32, "--decoder-attention-heads", 2, "--task", "language_modeling",
            "--tokens-per-sample", 16, "--max-tokens", 512, "--optimizer", "adam", "--lr", 0.003,
            "--no-progress-bar", "--log-format", "json", "--num-workers", 0, "--seed", 3,
            "--no-epoch-checkpoints", "--max-valid-steps", 1, "--patience", 3]


def epochs_run(save_dir, data, max_epoch, plugin=True):
    """Train (resuming from save_dir's checkpoint_last.pt if any); return (validated epochs,
    whether fairseq logged an early stop)."""
    user_dir = ["--user-dir", USER_DIR] if plugin else []
    out = run_cli("fairseq-train", data, *user_dir, *PATIENCE, "--max-epoch", max_epoch, "--save-dir", save_dir)
    log = out.stdout + out.stderr
    epochs = [json.loads(line.split("| valid | ", 1)[1])["epoch"] for line in log.splitlines() if "| valid | " in line]
    return epochs, "early stop since valid performance hasn't improved" in log


def test_patience_counts_on_across_a_resume(tiny_bin, tmp_path):
    import shutil

    full, stopped = epochs_run(tmp_path / "full", tiny_bin, 20)
    assert full == [1, 2, 3, 4] and stopped

    first, stopped = epochs_run(tmp_path / "first", tiny_bin, 2)  # cut off after epoch 2 of 4
    assert first == [1, 2] and not stopped
    state = load(tmp_path / "first" / "checkpoint_last.pt")["extra_state"]
    assert state["compactemb_early_stop"]["num_runs"] == 1
    assert state["compactemb_early_stop"]["best"] == state["best"]
    for name in ("resumed", "stripped", "stock"):
        shutil.copytree(tmp_path / "first", tmp_path / name)

    resumed, stopped = epochs_run(tmp_path / "resumed", tiny_bin, 20)
    assert resumed == [3, 4] and stopped  # where the uninterrupted run stopped

    # a checkpoint written without the plugin: patience counts from its best value (epoch 1's)
    path = tmp_path / "stripped" / "checkpoint_last.pt"
    ckpt = load(path)
    del ckpt["extra_state"]["compactemb_early_stop"]
    torch.save(ckpt, path)
    stripped, stopped = epochs_run(tmp_path / "stripped", tiny_bin, 20)
    assert stripped == [3, 4, 5] and stopped

    # control, stock fairseq (no --user-dir): its count restarts at the first validation after
    # the resume (fairseq issue #3531), so it trains past the uninterrupted run's last epoch
    # (capped at 7 here: epoch 4 improves on epoch 3, so it could not stop before epoch 7)
    stock, stopped = epochs_run(tmp_path / "stock", tiny_bin, 7, plugin=False)
    assert stock == [3, 4, 5, 6, 7]  # its early stop comes at epoch 7, three after its reset at 4

"""scripts/stop_reason.py names the rule that ended a real fairseq-train run, from its log.

Each run is logged as examples/common.sh logs a row (``+ fairseq-train ...`` then fairseq's
output, appended on a resume), on the tiny PTB cut (about 21 updates per epoch)."""
import subprocess
import sys

import pytest

from conftest import REPO, train_logged

sys.path.insert(0, str(REPO / "scripts"))
from stop_reason import stop_reason  # noqa: E402


def test_each_stopping_rule_is_named(tiny_bin, tmp_path):
    # a slow learning rate: validation improves at every one of the 3 epochs, then the cap
    log = tmp_path / "a.log"
    text = train_logged(log, tiny_bin, tmp_path / "a", "--lr", 1e-4, "--max-epoch", 3)
    assert stop_reason(text) == "epoch cap, still improving"

    # resumed (log appended) with a fast rate that overfits 120 lines: --patience ends it; the
    # last run's rule is the one named
    text = train_logged(log, tiny_bin, tmp_path / "a", "--lr", 0.01, "--max-epoch", 30, "--patience", 2)
    assert "early stop since" in text and stop_reason(text) == "patience"

    # the learning rate cut below --stop-min-lr by reduce_lr_on_plateau
    text = train_logged(tmp_path / "b.log", tiny_bin, tmp_path / "b", "--lr", 0.01, "--max-epoch", 30,
                        "--lr-scheduler", "reduce_lr_on_plateau", "--lr-shrink", 0.1, "--lr-patience", 0,
                        "--stop-min-lr", 0.0002)
    assert stop_reason(text) == "lr floor"

    # --max-update inside the first epoch; the excerpt save_row.sh keeps without fairseq's
    # "Stopping" line is still read as the update cap, from the command's --max-update
    text = train_logged(tmp_path / "c.log", tiny_bin, tmp_path / "c", "--lr", 1e-4, "--max-update", 5)
    assert stop_reason(text) == "update cap"
    kept = "\n".join(line for line in text.splitlines() if "Stopping training" not in line)
    assert stop_reason(kept) == "update cap"

    # a run that has not finished (cut off: no "done training") gets no reason
    assert stop_reason(text.split("done training")[0]) == ""


def log_of(validations, metric="loss", flags="--max-epoch 3"):
    return "\n".join([f"+ fairseq-train data {flags}"] + [
        f"| INFO | valid | epoch 00{e} | valid on 'valid' subset | loss {loss} | bleu {bleu} | best_{metric} {best}"
        for e, (loss, bleu, best) in enumerate(validations, 1)] + ["done training in 3.0 seconds"])


def test_still_improving_follows_the_checkpoint_metric():
    # the cap came after the best epoch (by loss): converged for this purpose
    assert stop_reason(log_of([(7.0, 20, 7.0), (6.5, 21, 6.5), (6.6, 22, 6.5)])) == "epoch cap"
    # --best-checkpoint-metric bleu --maximize-best-checkpoint-metric: the last BLEU is the best
    # even though the loss went up
    assert stop_reason(log_of([(7.0, 20, 20), (6.5, 21, 21), (6.6, 22, 22)], "bleu")) == "epoch cap, still improving"
    assert stop_reason(log_of([(7.0, 20, 20), (6.5, 23, 23), (6.4, 22, 23)], "bleu")) == "epoch cap"


def test_a_cap_before_patience_ran_out_is_still_improving():
    # --patience 3: the cap came 2 validations after the best one, early stopping had not fired
    losses = [(7.0, 0, 7.0), (6.5, 0, 6.5), (6.6, 0, 6.5), (6.7, 0, 6.5)]
    assert stop_reason(log_of(losses, flags="--max-epoch 4 --patience 3")) == \
        "epoch cap, still improving (best validation 2 before the last; --patience 3 had not run out)"
    # 3 validations after the best one: as far as --patience 3 goes, the row had converged
    assert stop_reason(log_of(losses + [(6.8, 0, 6.5)], flags="--max-epoch 5 --patience 3")) == "epoch cap"
    # without --patience only the last validation counts, as before
    assert stop_reason(log_of(losses, flags="--max-epoch 4")) == "epoch cap"


@pytest.mark.parametrize("args, message", [([], "usage"), (["/no/such/train.log"], "no such log")])
def test_cli_errors_are_one_line(args, message):
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "stop_reason.py"), *args],
                          capture_output=True, text=True)
    assert proc.returncode == 1 and message in proc.stderr and "Traceback" not in proc.stderr

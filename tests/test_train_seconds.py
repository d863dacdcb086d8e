"""scripts/train_seconds.py: a resumed row's training seconds are every run's, not the last run's.

fairseq's ``wall`` starts again at 0 in each process, so a row cut off and resumed used to report
only its last run (a Multi30k row of ~3.5 h reported 3,115 s). Checked on synthetic logs with
known answers, on a real resumed fairseq-train run, and on the excerpt examples/save_row.sh keeps."""
import re
import shutil
import subprocess
import sys

import pytest

from conftest import REPO, train_logged

sys.path.insert(0, str(REPO / "scripts"))
from train_seconds import training_seconds  # noqa: E402

START = "{} | INFO | fairseq_cli.train | {{'_name': None, 'common': {{}}}}"
VALID = "{} | INFO | valid | epoch {:03d} | valid on 'valid' subset | loss 5.0 | ppl 32.0 | num_updates {}"
TRAIN = "{} | INFO | train | epoch {:03d} | loss 5.0 | ppl 32.0 | wall {}"


def test_each_runs_last_wall_is_summed():
    log = "\n".join([
        "+ fairseq-train data", START.format("2026-12-06 04:30:55"),
        TRAIN.format("2026-12-06 04:38:33", 1, 458), VALID.format("2026-12-06 04:38:40", 1, 664),
        "+ fairseq-train data", START.format("2026-12-06 05:21:22"),  # resumed: wall from 0 again
        TRAIN.format("2026-12-06 05:28:31", 2, 429), VALID.format("2026-12-06 05:28:38", 2, 1328),
        TRAIN.format("2026-12-06 05:34:19", 3, 777), "done training in 790.1 seconds"])
    assert training_seconds(log) == 458 + 777


def test_the_kept_excerpt_is_timed_from_each_runs_start_to_its_last_validation():
    # save_row.sh lists every validation first, then the runs' config lines
    log = "\n".join([
        VALID.format("2026-12-05 16:15:13", 1, 124), VALID.format("2026-12-05 16:20:18", 2, 248),
        VALID.format("2026-12-05 19:20:00", 3, 372), VALID.format("2026-12-05 20:06:28", 4, 496),
        START.format("2026-12-05 16:11:05"), START.format("2026-12-05 19:14:33"),
        "2026-12-05 20:06:28 | INFO | fairseq_cli.train | done training in 3113.7 seconds"])
    assert training_seconds(log) == (9 * 60 + 13) + (51 * 60 + 55)
    # a validation older than every kept start: an earlier run was not kept, so no figure
    assert training_seconds(VALID.format("2026-12-05 15:00:00", 1, 124) + "\n" + log) is None
    assert training_seconds("+ fairseq-train data\nnothing timed here") is None


def test_a_real_resumed_run_and_its_kept_excerpt_agree(tiny_bin, tmp_path):
    """Two real fairseq-train runs of one row (the second resumes from checkpoint_last.pt), then
    save_row.sh's excerpt of their log: the excerpt's figure is the full log's, to the second per run."""
    work = tmp_path / "work"
    (work / "logs").mkdir(parents=True)
    log = work / "logs" / "train.r1.log"
    train_logged(log, tiny_bin, work / "ckpt", "--lr", 1e-4, "--max-epoch", 2)
    text = train_logged(log, tiny_bin, work / "ckpt", "--lr", 1e-4, "--max-epoch", 4)
    runs = text.split("+ fairseq-train")[1:]
    walls = [[int(w) for w in re.findall(r"\| train \| epoch .*\| wall (\d+)", run)] for run in runs]
    assert [len(w) for w in walls] == [2, 2], "the second run should resume at epoch 3"
    assert training_seconds(text) == walls[0][-1] + walls[1][-1]

    repo = tmp_path / "repo"
    (repo / "examples").mkdir(parents=True)
    (repo / "scripts").mkdir()
    shutil.copy(REPO / "examples" / "save_row.sh", repo / "examples")
    shutil.copy(REPO / "scripts" / "stop_reason.py", repo / "scripts")
    (work / "results.tsv").write_text("r1\tepochs\t4\nr1\tppl\t900.00\n")
    subprocess.run(["bash", str(repo / "examples" / "save_row.sh"), "demo", "r1", str(work)],
                   check=True, capture_output=True, text=True)
    kept = (repo / "examples" / "demo" / "results" / "r1.log").read_text()
    assert "| train | epoch" not in kept and kept.count("| fairseq_cli.train | {") == 2
    assert abs(training_seconds(kept) - training_seconds(text)) <= 2 * 2


@pytest.mark.parametrize("args, message", [([], "usage"), (["/no/such/train.log"], "no such log")])
def test_cli_errors_are_one_line(args, message):
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "train_seconds.py"), *args],
                          capture_output=True, text=True)
    assert proc.returncode == 1 and message in proc.stderr and "Traceback" not in proc.stderr

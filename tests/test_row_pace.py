"""``scripts/row_pace.py``: a reduced row's time per update, from the exact flags of its recipe."""
import subprocess
import sys

import pytest

from conftest import REPO

sys.path.insert(0, str(REPO / "scripts"))
import row_pace  # noqa: E402


def test_flags_are_the_rows_fairseq_train_command_without_data_and_folders():
    flags = row_pace.train_flags("ptb_slim", "in300-M10K", "/nonexistent/data")
    assert flags[:2] == ["--arch", "compact_lstm_lm_ptb_300"]
    assert row_pace.flag(flags, "--slim-pool") == "10000" and row_pace.flag(flags, "--batch-size") == "20"
    assert "--save-dir" not in flags and "--user-dir" not in flags
    assert not any(f.startswith(row_pace.WORK) for f in flags)  # the data folder is gone


def test_times_a_row_built_from_its_flags_and_keeps_the_figures_for_the_report(capsys, tmp_path):
    import row_readings

    out_file = tmp_path / "examples" / "ptb_slim" / "row_pace.tsv"
    out_file.parent.mkdir(parents=True)
    assert row_pace.main(["ptb_slim:in300-std", "--vocab", "300", "--repeats", "1", "--out", str(out_file)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert " torch thread(s), V = 300" in out[0]  # the CPU and threads come first
    assert out[1].startswith("ptb_slim:in300-std") and out[1].endswith(
        "s per update (20 x 35 tokens, forward, backward, clipping, optimizer step)")
    seconds = float(out[1].split()[1])
    lines = out_file.read_text().splitlines()
    assert lines[0].startswith("# python scripts/row_pace.py ptb_slim:in300-std") and lines[2] == "row\ts_per_update\tran"
    item, kept, ran = lines[3].split("\t")
    assert item == "ptb_slim:in300-std" and abs(float(kept) - seconds) < 1e-3 and ran.startswith("20")
    # the report puts it into the row that ran, with the day and the CPU's short name
    tables = {"ptb_slim": {"in300-std": {"ppl": "90"}}, "ptb_awd_define": {"in300-std": {}}}
    row_readings.add_pace(tables, tmp_path)
    got = tables["ptb_slim"]["in300-std"]
    assert float(got["pace_s"]) == float(kept) and got["pace_ran"].split(", ")[0] == ran.split(", ")[0]
    assert "(R)" not in got["pace_ran"] and tables["ptb_awd_define"]["in300-std"] == {}  # another recipe's row


@pytest.mark.parametrize("update_freq", [1, 2])
def test_an_update_is_fairseq_trainers_whole_step(update_freq):
    """Forward and backward of --update-freq batches, the gradient divided by the sample size and
    clipped to --clip-norm, then the row's optimizer (SGD, lr 35 for the PTB rows): the parameters
    move exactly as that step by hand moves a copy."""
    import copy

    import benchmark_training
    import torch

    benchmark_training.quiet_imports()
    dictionary = benchmark_training.zipf_dictionary(300)
    flags = row_pace.train_flags("ptb_slim", "in300-std", "/nonexistent/data")
    model, criterion, optimizer, clip, freq = row_pace.trainer_parts(dictionary, flags)
    assert clip == float(row_pace.flag(flags, "--clip-norm")) and freq == 1 and type(optimizer).__name__ == "SGD"
    by_hand = copy.deepcopy(model)
    sample = benchmark_training.zipf_batch(dictionary, 2, 35)
    torch.manual_seed(0)
    row_pace.update(model, criterion, optimizer, clip, update_freq, sample)
    by_hand.train()
    torch.manual_seed(0)
    for _ in range(update_freq):
        criterion(by_hand, sample)[0].backward()
    params = [p for p in by_hand.parameters() if p.grad is not None]
    with torch.no_grad():
        for p in params:
            p.grad /= update_freq * sample["ntokens"]
    assert torch.nn.utils.clip_grad_norm_(params, clip) > clip  # the clipping did something
    with torch.no_grad():
        for p in params:
            p -= float(row_pace.flag(flags, "--lr")) * p.grad
    for (name, a), b in zip(model.named_parameters(), by_hand.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)


def test_update_freq_is_read_from_the_rows_flags():
    import benchmark_training

    flags = row_pace.train_flags("ptb_slim", "in300-std", "/nonexistent/data")
    _, _, _, _, freq = row_pace.trainer_parts(benchmark_training.zipf_dictionary(300), flags + ["--update-freq", "3"])
    assert freq == 3


@pytest.mark.parametrize("row,message", [
    ("ptb_slim:no-such-row", "ptb_slim:no-such-row: its recipe's dry run printed no fairseq-train command"),
    ("wmt14_en_de:base", "wmt14_en_de:base trains --task translation; only language-model rows are timed"),
    ("ptb_slim", "'ptb_slim' is not recipe:row"),
])
def test_bad_rows_get_one_line(row, message):
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "row_pace.py"), row, "--vocab", "100"],
                          capture_output=True, text=True)
    assert proc.returncode != 0 and message in proc.stderr and "Traceback" not in proc.stderr


def test_out_into_a_missing_folder_is_one_line_before_any_timing(tmp_path):
    out = tmp_path / "no-such-folder" / "row_pace.tsv"
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "row_pace.py"), "ptb_slim:in300-std", "--vocab", "100",
                           "--out", str(out)], capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].endswith(f"--out {out}: no folder {out.parent}; create it or give another path")

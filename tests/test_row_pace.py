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


def test_times_a_row_built_from_its_flags(capsys):
    assert row_pace.main(["ptb_slim:in300-std", "--vocab", "300", "--repeats", "1"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert " torch thread(s), V = 300" in out[0]  # the CPU and threads come first
    assert out[1].startswith("ptb_slim:in300-std") and out[1].endswith("s per update (20 x 35 tokens, forward + backward)")


@pytest.mark.parametrize("row,message", [
    ("ptb_slim:no-such-row", "ptb_slim:no-such-row: its recipe's dry run printed no fairseq-train command"),
    ("wmt14_en_de:base", "wmt14_en_de:base trains --task translation; only language-model rows are timed"),
    ("ptb_slim", "'ptb_slim' is not recipe:row"),
])
def test_bad_rows_get_one_line(row, message):
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "row_pace.py"), row, "--vocab", "100"],
                          capture_output=True, text=True)
    assert proc.returncode != 0 and message in proc.stderr and "Traceback" not in proc.stderr

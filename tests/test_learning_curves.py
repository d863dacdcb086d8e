"""scripts/learning_curves.py reads the validation perplexity per epoch from real fairseq-train logs,
save_row.sh keeps every validation line of a row, and the report draws one figure per experiment."""
import math
import re
import subprocess
import sys

import pytest

from conftest import REPO

sys.path.insert(0, str(REPO / "scripts"))
import learning_curves  # noqa: E402
import reduced_report  # noqa: E402
from test_stop_reason import train_logged  # noqa: E402


def test_curve_of_a_real_run_resumed_in_the_same_log(tiny_bin, tmp_path):
    log = tmp_path / "train.row-a.log"
    train_logged(log, tiny_bin, tmp_path / "a", "--lr", 1e-3, "--max-epoch", 2)
    text = train_logged(log, tiny_bin, tmp_path / "a", "--lr", 1e-3, "--max-epoch", 3)  # resumes at epoch 3
    curve = learning_curves.valid_curve(text)
    assert [e for e, _ in curve] == [1, 2, 3]
    # fairseq's ppl is 2 ** loss (base 2) on the same line
    losses = [float(x) for x in re.findall(r"valid on 'valid' subset \| loss ([0-9.]+)", text)]
    assert all(math.isclose(p, 2 ** l, rel_tol=0.01) for (_, p), l in zip(curve, losses))
    # an epoch logged again (a run cut off after validating, then resumed) keeps its last value
    again = text + text.split("\n")[[i for i, t in enumerate(text.split("\n")) if "epoch 002 | valid on" in t][0]] \
        .replace(f"ppl {curve[1][1]:g} ", "ppl 1.5 ") + "\n"
    assert dict(learning_curves.valid_curve(again))[2] == 1.5
    assert learning_curves.row_name(log) == "row-a"

    out = tmp_path / "curves.png"
    learning_curves.main([str(log), "--out", str(out)])
    assert out.stat().st_size > 1000


def test_table_gives_each_rows_values_and_its_gap_to_the_first_row(tmp_path, capsys):
    curves = {"a": [(1, 200.0), (2, 100.0), (3, 50.0)], "b": [(1, 220.0), (2, 90.0)]}
    table = learning_curves.markdown_table(curves, [1, 3])
    assert table.splitlines() == ["| epoch | 1 | 3 |", "|---|---:|---:|", "| `a` | 200.00 | 50.00 |",
                                  "| `b` | 220.00 | - |", "| `b` vs `a` | +10.0% | - |"]
    assert learning_curves.default_epochs({"a": [(e, 1.0) for e in range(1, 26)]}) == [1, 7, 13, 19, 25]
    assert learning_curves.default_epochs(curves) == [1, 2, 3]
    # the command line: logs in, the table printed (no figure asked for, none written)
    logs = []
    for row, curve in curves.items():
        logs.append(tmp_path / f"train.{row}.log")
        logs[-1].write_text("".join(f"x | valid | epoch {e:03d} | valid on 'valid' subset | loss 1 | ppl {p} | wps 1\n"
                                    for e, p in curve))
    learning_curves.main([str(x) for x in logs] + ["--table", "2"])
    assert capsys.readouterr().out.splitlines()[-3:] == ["| `a` | 100.00 |", "| `b` | 90.00 |", "| `b` vs `a` | -10.0% |"]
    assert not list(tmp_path.glob("*.png"))


def test_cli_errors_are_one_line(tmp_path):
    script = str(REPO / "scripts" / "learning_curves.py")
    missing = subprocess.run([sys.executable, script, str(tmp_path / "nope.log"), "--out", str(tmp_path / "c.png")],
                             capture_output=True, text=True)
    assert missing.returncode == 1 and missing.stderr.strip().endswith("not found (a fairseq-train log or a kept results/<row>.log)")
    empty = tmp_path / "train.x.log"
    empty.write_text("+ fairseq-train data\n")
    proc = subprocess.run([sys.executable, script, str(empty), "--out", str(tmp_path / "c.png")],
                          capture_output=True, text=True)
    assert proc.returncode == 1 and "nothing to plot" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    for flags, says in ((["--table", "1,x"], "--table: '1,x' is not a list of epochs"), ([], "nothing to do")):
        bad = subprocess.run([sys.executable, script, str(empty)] + flags, capture_output=True, text=True)
        assert bad.returncode == 2 and says in bad.stderr.strip().splitlines()[-1]


def test_save_row_keeps_every_validation_line(tmp_path):
    work = tmp_path / "work"
    (work / "logs").mkdir(parents=True)
    (work / "results.tsv").write_text("r1\tppl\t90.00\nr1\tstopped\tpatience\nother\tppl\t1\n")
    lines = [f"2026-01-01 00:00:00 | INFO | valid | epoch {e:03d} | valid on 'valid' subset | loss 7 | "
             f"ppl {200 - e} | num_updates {10 * e}" for e in range(1, 46)]
    (work / "logs" / "train.r1.log").write_text("+ fairseq-train data --max-epoch 45\n" + "\n".join(lines) + "\n")
    dest = REPO / "examples" / "_test_recipe"
    try:
        subprocess.run(["bash", str(REPO / "examples" / "save_row.sh"), "_test_recipe", "r1", str(work)],
                       check=True, capture_output=True, text=True)
        kept = (dest / "results" / "r1.log").read_text()
        assert [e for e, _ in learning_curves.valid_curve(kept)] == list(range(1, 46))
        assert (dest / "results" / "r1.tsv").read_text() == "r1\tppl\t90.00\nr1\tstopped\tpatience\n"
    finally:
        import shutil
        shutil.rmtree(dest, ignore_errors=True)


@pytest.mark.skipif(not list((REPO / "examples" / "ptb_awd_define" / "results").glob("*.log")),
                    reason="no kept ptb_awd_define rows in this checkout")
def test_report_draws_a_curve_figure_per_experiment_from_the_kept_logs(tmp_path, capsys):
    (tmp_path / "examples" / "ptb_awd_define").mkdir(parents=True)
    text = reduced_report.main(["--root", str(tmp_path)])
    figure = tmp_path / "examples" / "ptb_awd_define" / "reduced_awd_define_curves.png"
    assert figure.stat().st_size > 1000
    assert "plot: [`examples/ptb_awd_define/reduced_awd_define_curves.png`]" in text

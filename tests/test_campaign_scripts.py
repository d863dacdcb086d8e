"""The campaign's helpers: examples/freeze_checkout.sh (rows run from a copy that later edits cannot
reach), examples/save_row.sh --commit (a finished row is committed alone, at once) and
scripts/campaign_status.py (which rows are kept, running, resumable or queued)."""
import shutil
import sys
import subprocess

import pytest

from conftest import REPO

sys.path.insert(0, str(REPO / "scripts"))
import campaign_status  # noqa: E402


def git(repo, *args):
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


def new_repo(path):
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q")
    git(path, "config", "user.email", "t@example.org")
    git(path, "config", "user.name", "test")
    return path


def test_freeze_copies_the_checkout_as_it_is_now_and_later_edits_do_not_reach_it(tmp_path):
    src = new_repo(tmp_path / "src")
    (src / ".gitignore").write_text("*.log\n")
    (src / "examples").mkdir()
    (src / "examples" / "run.sh").write_text("echo committed\n")
    (src / "gone.txt").write_text("deleted after the commit\n")
    git(src, "add", ".")
    git(src, "commit", "-q", "-m", "c")
    (src / "examples" / "run.sh").write_text("echo edited, not committed\n")
    (src / "new.py").write_text("untracked\n")
    (src / "train.log").write_text("ignored\n")
    (src / "gone.txt").unlink()

    dest = tmp_path / "snap" / "1"
    out = subprocess.run(["bash", str(REPO / "examples" / "freeze_checkout.sh"), str(src), str(dest)],
                         check=True, capture_output=True, text=True).stdout
    assert out.strip() == str(dest)
    files = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
    assert files == [".gitignore", "examples/run.sh", "new.py"]
    assert (dest / "examples" / "run.sh").read_text() == "echo edited, not committed\n"

    (src / "examples" / "run.sh").write_text("echo edited while a row runs\n")
    assert (dest / "examples" / "run.sh").read_text() == "echo edited, not committed\n"

    again = subprocess.run(["bash", str(REPO / "examples" / "freeze_checkout.sh"), str(src), str(dest)],
                           capture_output=True, text=True)
    assert again.returncode == 2
    assert again.stderr.strip() == f"freeze_checkout.sh: {dest} exists and is not empty; give a new folder"


def copy_save_row(repo):
    """save_row.sh keeps rows beside itself: a throwaway repository with its own copy."""
    (repo / "examples").mkdir(parents=True)
    (repo / "scripts").mkdir()
    shutil.copy(REPO / "examples" / "save_row.sh", repo / "examples" / "save_row.sh")
    shutil.copy(REPO / "scripts" / "stop_reason.py", repo / "scripts" / "stop_reason.py")
    return repo / "examples" / "save_row.sh"


def finished_work(path, row="r1"):
    (path / "logs").mkdir(parents=True)
    # in the recipes' order: the test score comes last, after epochs and why training stopped
    (path / "results.tsv").write_text(f"{row}\tepochs\t7\n{row}\tstopped\tpatience\n{row}\tppl\t90.00\nother\tppl\t1\n")
    (path / "logs" / f"train.{row}.log").write_text(
        "+ fairseq-train data\n2026-01-01 | INFO | valid | epoch 001 | valid on 'valid' subset | ppl 100\n")
    return path


@pytest.mark.parametrize("locked", [False, True], ids=["free", "index-locked-by-the-other-stream"])
def test_save_row_commit_commits_the_two_row_files_and_nothing_else(tmp_path, locked):
    """With --commit the row is one commit of its two files; staged work of others stays staged.
    A commit of the other campaign stream holding git's index lock delays it, never loses it."""
    import threading

    repo = new_repo(tmp_path / "repo")
    script = copy_save_row(repo)
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "start")
    (repo / "unrelated.py").write_text("staged by someone, not the row's\n")
    git(repo, "add", "unrelated.py")
    work = finished_work(tmp_path / "work")

    lock = repo / ".git" / "index.lock"
    if locked:
        lock.write_text("")
        threading.Timer(1.5, lock.unlink).start()
    proc = subprocess.run(["bash", str(script), "demo_recipe", "r1", str(work), "--commit"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert ("index.lock" in proc.stderr) == locked
    committed = git(repo, "show", "--name-only", "--format=%s", "HEAD").split("\n")
    assert committed[0].startswith("demo_recipe: row r1 kept (ppl 90.00, 7 epochs, patience; ")
    assert sorted(filter(None, committed[1:])) == ["examples/demo_recipe/results/r1.log",
                                                   "examples/demo_recipe/results/r1.tsv"]
    assert git(repo, "diff", "--cached", "--name-only").split() == ["unrelated.py"]
    assert git(repo, "show", "HEAD:examples/demo_recipe/results/r1.tsv") == \
        "r1\tepochs\t7\nr1\tstopped\tpatience\nr1\tppl\t90.00\n"


def test_a_translation_rows_hypotheses_are_kept_in_test_order_and_committed_with_it(tmp_path):
    """keep_translations (examples/common.sh) writes fairseq-generate's D- lines in sentence order
    (fairseq prints them in batch order; a D- line's score and text may hold '-'), and save_row.sh
    keeps and commits them as ROW.hyp beside the row's two files."""
    repo = new_repo(tmp_path / "repo")
    script = copy_save_row(repo)
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "start")
    work = finished_work(tmp_path / "work")
    (work / "logs" / "generate.r1.log").write_text(
        "+ fairseq-generate bin --gen-subset test\nS-10\tsource ten\nT-10\tref ten\nH-10\t-0.5\ttok▁ens\n"
        "D-10\t-0.5\tZehn - ein Satz\nP-10\t-0.1 -0.2\nD-2\t-1.25\tzwei\nD-0\t-0.75\tnull\n"
        "Generate test with beam=5: BLEU = 36.72 67.7/43.8/30.6/21.4\n")
    subprocess.run(["bash", "-c", 'set -euo pipefail; source "$1"; WORK="$2"; keep_translations r1', "bash",
                    str(REPO / "examples" / "common.sh"), str(work)], check=True, capture_output=True, text=True)
    assert (work / "logs" / "hyp.r1.txt").read_text() == "null\nzwei\nZehn - ein Satz\n"
    proc = subprocess.run(["bash", str(script), "demo_recipe", "r1", str(work), "--commit"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    committed = sorted(filter(None, git(repo, "show", "--name-only", "--format=", "HEAD").split("\n")))
    assert committed == [f"examples/demo_recipe/results/r1.{ext}" for ext in ("hyp", "log", "tsv")]
    assert git(repo, "show", "HEAD:examples/demo_recipe/results/r1.hyp") == "null\nzwei\nZehn - ein Satz\n"


FAKE_GENERATE = r"""#!/usr/bin/env bash
# fairseq-generate's output for the subset asked (the last --gen-subset wins, as in fairseq)
subset=test
while [ $# -gt 0 ]; do [ "$1" = --gen-subset ] && subset="$2"; shift; done
if [ "$subset" = valid ]; then
    printf 'D-0\t-0.3\tstopping gueltig\nGenerate valid with beam=5: BLEU = 35.83 60.1/40.2/30.3/20.4\n'
else
    printf 'D-1\t-0.2\tzwei\nD-0\t-0.1\teins\nGenerate test with beam=5: BLEU = 37.45 67.6/43.9/31.2/22.2\n'
fi
"""


@pytest.mark.parametrize("valid", ["1", "0"])
def test_generate_also_scores_the_validation_set_when_the_recipe_asks(tmp_path, valid):
    """examples/common.sh generate: the test BLEU and translations as before; with GENERATE_VALID=1
    the same decoding on the validation set (--gen-subset valid after the recipe's flags) recorded
    as valid_BLEU, its translations not mixed into the kept test ones; save_row.sh keeps both
    commands and scores in the row's log."""
    tools = tmp_path / "bin"
    tools.mkdir()
    (tools / "fairseq-generate").write_text(FAKE_GENERATE)
    (tools / "fairseq-generate").chmod(0o755)
    (tools / "python3").symlink_to(sys.executable)  # fs() runs the fairseq tool beside $PYTHON
    work = tmp_path / "work"
    (work / "logs").mkdir(parents=True)
    run = subprocess.run(["bash", "-c", 'set -euo pipefail; source "$1"; WORK="$2"; PYTHON="$3"; DRY_RUN=0; '
                          'GENERATE_VALID="$4"; generate r1 bin --gen-subset test --beam 5', "bash",
                          str(REPO / "examples" / "common.sh"), str(work), str(tools / "python3"), valid],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    results = (work / "results.tsv").read_text().splitlines()
    assert results == ["r1\tBLEU\t37.45"] + (["r1\tvalid_BLEU\t35.83"] if valid == "1" else [])
    assert (work / "logs" / "hyp.r1.txt").read_text() == "eins\nzwei\n"
    second = work / "logs" / "generate_valid.r1.log"
    assert second.exists() == (valid == "1")
    if valid == "1":
        command = second.read_text().splitlines()[0]
        assert command.startswith("+ fairseq-generate bin ") and command.endswith(
            "--gen-subset test --beam 5 --gen-subset valid")
        repo = new_repo(tmp_path / "repo")
        saved = subprocess.run(["bash", str(copy_save_row(repo)), "demo_recipe", "r1", str(work)],
                               capture_output=True, text=True)
        assert saved.returncode == 0, saved.stderr
        log = (repo / "examples" / "demo_recipe" / "results" / "r1.log").read_text()
        assert "## generate_valid.r1.log" in log and "Generate valid with beam=5: BLEU = 35.83" in log
        # each command once (its "--scoring sacrebleu" is no score line), no sentence lines
        assert log.count("+ fairseq-generate bin ") == 2 and "gueltig" not in log and "\nD-" not in log
        assert (repo / "examples" / "demo_recipe" / "results" / "r1.tsv").read_text().endswith("r1\tvalid_BLEU\t35.83\n")


def test_save_row_keeps_the_reranking_rows_translation_model_and_tuning_lines(tmp_path):
    """The reranking rows train nothing: their kept log holds the n-best commands (which
    translation model decoded) and the tuner's lines, without fairseq's config dump."""
    script = copy_save_row(tmp_path / "repo")
    work = tmp_path / "work"
    (work / "logs").mkdir(parents=True)
    (work / "results.tsv").write_text("mt-1best\tBLEU\t38.10\nrerank-slim\tBLEU\t38.90\n")
    for split in ("valid", "test"):
        (work / "logs" / f"nbest.{split}.log").write_text(
            f"+ fairseq-generate bin --path mt/ckpt/base-untied/checkpoint_best.pt --gen-subset {split} --beam 50\n"
            "INFO:fairseq_cli.generate:{'_name': None, 'scoring': 'bleu'}\nH-0\t-0.5\tein Hund\n"
            f"Generate {split} with beam=50: BLEU4 = 30.00\n")
    for lm in ("none", "slim"):
        (work / "logs" / f"tune.{lm}.log").write_text(
            f"+ python3 scripts/rerank.py tune --lm-name {lm}\n[rerank] test BLEU: 1-best 38.10 -> reranked 38.90\n")
    for row in ("mt-1best", "rerank-slim"):
        assert subprocess.run(["bash", str(script), "mt_rerank", row, str(work)], capture_output=True).returncode == 0
    results = tmp_path / "repo" / "examples" / "mt_rerank" / "results"
    mt = (results / "mt-1best.log").read_text()
    assert mt.count("--path mt/ckpt/base-untied/checkpoint_best.pt") == 2 and "Generate test with beam=50" in mt
    assert "_name" not in mt and "H-0" not in mt and "## tune.none.log" in mt
    slim = (results / "rerank-slim.log").read_text()
    assert "+ python3 scripts/rerank.py tune --lm-name slim" in slim and "-> reranked 38.90" in slim
    assert "tune.none" not in slim and (results / "rerank-slim.tsv").read_text() == "rerank-slim\tBLEU\t38.90\n"


@pytest.mark.parametrize("args, code, message", [
    (["demo_recipe", "r2", "{work}"], 1, "save_row.sh: {work}/results.tsv has no line of row r2 (did the row finish? check --work)"),
    (["demo_recipe", "r1", "{work}", "--comit"], 2, "usage: bash examples/save_row.sh RECIPE ROW WORK [--commit]"),
    (["demo_recipe", "r1"], 2, "usage: bash examples/save_row.sh RECIPE ROW WORK [--commit]"),
])
def test_save_row_refuses_a_row_that_did_not_finish_and_bad_arguments(tmp_path, args, code, message):
    script = copy_save_row(tmp_path / "repo")
    work = finished_work(tmp_path / "work")
    args = [a.format(work=work) for a in args]
    proc = subprocess.run(["bash", str(script), *args], capture_output=True, text=True)
    assert proc.returncode == code
    assert proc.stderr.strip() == message.format(work=work)
    assert not (tmp_path / "repo" / "examples" / "demo_recipe").exists()


def test_campaign_status_names_each_rows_state(tmp_path):
    """kept (from the results file), running (a process names its folder), resumes (a
    checkpoint_last.pt), queued; k1 is not taken for a running k10. A running row counts to the cap
    its log started with (25), one that resumes to the cap its recipe's command sets today (12)."""
    root, work = tmp_path / "repo", tmp_path / "work"
    (root / "examples" / "rec" / "results").mkdir(parents=True)
    # the recipe's --dry-run prints the row's command (the last --max-epoch wins, as in fairseq)
    (root / "examples" / "rec" / "run.sh").write_text(
        'echo "+ fairseq-train $WORK/data-bin --max-epoch 60 --lr 1 --max-epoch 12"\n'.replace("$WORK", "/w"))
    (root / "examples" / "rec" / "results" / "done.tsv").write_text(
        "done\tparams\t10\ndone\tppl\t93.00\ndone\tepochs\t18\ndone\tstopped\tlr floor\n")
    for row in ("k10", "cut"):
        (work / "rec" / row / "logs").mkdir(parents=True)
        (work / "rec" / row / "ckpt" / row).mkdir(parents=True)
        # epoch 1, cut off, resumed 2 hours later (a new run: its config line), epochs 2-3 6 minutes apart
        config = " | INFO | fairseq_cli.train | {'optimization': {'max_epoch': 25, 'max_update': 0}}\n"
        valid = [f"2026-01-01 {h:02d}:{m:02d}:00 | INFO | valid | epoch {e:03d} | valid on 'valid' subset | loss 7"
                 f" | ppl {300 - e}.5 | num_updates {e * 10}\n" for e, (h, m) in
                 zip((1, 2, 3), ((0, 6), (2, 12), (2, 18)))]
        (work / "rec" / row / "logs" / f"train.{row}.log").write_text(
            "2026-01-01 00:00:00" + config + valid[0] + "2026-01-01 02:06:00" + config + "".join(valid[1:]))
    (work / "rec" / "cut" / "ckpt" / "cut" / "checkpoint_last.pt").write_bytes(b"x")
    busy = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "--save-dir",
                             str(work / "rec" / "k10" / "ckpt" / "k10")])
    try:
        lines = subprocess.run(
            [sys.executable, str(REPO / "scripts" / "campaign_status.py"), "--work", str(work), "--root", str(root),
             "rec:done", "rec:k10", "rec:cut", "rec:k1"], check=True, capture_output=True, text=True).stdout.splitlines()
    finally:
        busy.kill()
    assert lines[0] == "kept     rec:done  ppl 93.00, 18 epochs, lr floor"
    pace = "epoch 3, valid ppl 297.50, ~6.0 min per epoch, at most 22 epochs (~2.2 h) to the cap of 25, log written "
    assert lines[1].startswith("running  rec:k10  " + pace)
    assert lines[2].startswith("resumes  rec:cut  " + pace.replace("22 epochs (~2.2 h) to the cap of 25",
                                                                    "9 epochs (~0.9 h) to the cap of 12"))
    assert lines[2].endswith(f"(checkpoint_last.pt in {work / 'rec' / 'cut' / 'ckpt' / 'cut'})")
    assert lines[3] == "queued   rec:k1"
    assert lines[4] == "1 kept, 1 running, 1 resumes, 1 queued"
    assert campaign_status.kept_summary(root / "examples" / "rec" / "results" / "done.tsv") == \
        "ppl 93.00, 18 epochs, lr floor"


def test_campaign_status_refuses_a_row_that_is_not_recipe_colon_row(tmp_path):
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "campaign_status.py"), "ptb_slim-in300"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].endswith("'ptb_slim-in300' is not recipe:row (e.g. ptb_slim:in300-std)")

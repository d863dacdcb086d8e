"""How examples/mt_rerank/run.sh spends its threads and picks its translation model: the
translation model trains first on every thread, then the two LMs, the two n-best lists and their
scoring run two at a time (examples/common.sh side_by_side); MT_ROW names the wmt14_en_de row."""
import os
import subprocess
import sys
from pathlib import Path

from conftest import DATA, REPO

sys.path.insert(0, str(REPO / "scripts"))
from campaign_status import command_lines  # noqa: E402

EXAMPLES = REPO / "examples"


def left_running(marker: Path):
    """Command lines of processes that name `marker` (campaign_status reads them from /proc)."""
    return [line for line in command_lines() if str(marker) in line]


def run_steps(tmp_path, threads: int, fail_b: bool = False):
    """side_by_side on two steps: A waits (at most 5 s) for a file that B writes, so A can end
    well only when both run at once; each writes the OMP_NUM_THREADS it was given."""
    script = f"""
set -euo pipefail
source "{EXAMPLES}/common.sh"
DRY_RUN=0
step() {{
    echo "$OMP_NUM_THREADS" > "{tmp_path}/threads.$1"
    if [ "$1" = a ]; then
        for i in $(seq 50); do [ -f "{tmp_path}/b-ran" ] && break; sleep 0.1; done
        [ -f "{tmp_path}/b-ran" ] && touch "{tmp_path}/a-saw-b"
    else
        touch "{tmp_path}/b-ran"; {"exit 3" if fail_b else "true"}
    fi
    touch "{tmp_path}/done.$1"
}}
side_by_side "step a" "step b"
echo after
"""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60, env=env)


def test_side_by_side_runs_two_steps_at_once_on_half_the_threads_each(tmp_path):
    proc = run_steps(tmp_path, threads=4)
    assert proc.returncode == 0 and proc.stdout.strip() == "after", proc.stderr
    assert (tmp_path / "a-saw-b").exists()  # B ran while A was still running
    assert {p.name: p.read_text().strip() for p in tmp_path.glob("threads.*")} == {"threads.a": "2", "threads.b": "2"}


def test_side_by_side_runs_the_steps_in_turn_on_one_thread(tmp_path):
    proc = run_steps(tmp_path, threads=1)
    assert proc.returncode == 0 and proc.stdout.strip() == "after", proc.stderr
    assert not (tmp_path / "a-saw-b").exists()  # A had ended before B started
    assert (tmp_path / "done.b").exists() and (tmp_path / "threads.b").read_text().strip() == "1"


def test_side_by_side_fails_the_recipe_once_both_steps_have_ended(tmp_path):
    proc = run_steps(tmp_path, threads=2, fail_b=True)
    assert proc.returncode == 1 and "after" not in proc.stdout, (proc.stdout, proc.stderr)
    assert (tmp_path / "done.a").exists() and (tmp_path / "a-saw-b").exists()  # A was not cut short
    assert not left_running(tmp_path)


def test_rerank_recipe_stops_with_one_line_when_its_translation_model_fails(tmp_path):
    """The translation model trains first (no Multi30k under --data here): the recipe ends with the
    failing file and the log named, no hang, nothing left running."""
    proc = subprocess.run(["bash", str(EXAMPLES / "mt_rerank" / "run.sh"), "--smoke", "--work", str(tmp_path),
                           "--data", str(tmp_path / "no-data")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "Multi30k train.en not found" in proc.stderr
    assert f"[mt_rerank] FAILED: bash {EXAMPLES}/wmt14_en_de/run.sh --smoke" in proc.stderr
    assert f"(log: {tmp_path}/logs/mt.log)" in proc.stderr
    assert not left_running(tmp_path)


def dry_run(tmp_path, **env):
    return subprocess.run(["bash", str(EXAMPLES / "mt_rerank" / "run.sh"), "--reduced", "--dry-run",
                           "--work", str(tmp_path), "--data", str(DATA)],
                          capture_output=True, text=True, timeout=120, env=dict(os.environ, **env))


def test_mt_row_picks_the_translation_model_that_trains_and_decodes(tmp_path):
    proc = dry_run(tmp_path, MT_ROW="base-untied")
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    mt = [i for i, line in enumerate(lines) if "wmt14_en_de/run.sh --reduced" in line]
    assert len(mt) == 1 and lines[mt[0]].endswith("--rows base-untied")
    nbest = [line for line in lines if line.startswith("+ fairseq-generate ")]
    assert len(nbest) == 2 and all(f"--path {tmp_path}/mt/ckpt/base-untied/checkpoint_best.pt" in line
                                   for line in nbest)
    lms = [i for i, line in enumerate(lines) if line.startswith("+ fairseq-train ")]
    assert lms and min(lms) > mt[0]  # the translation model first, then the LMs


def test_mt_work_without_the_rows_checkpoint_is_one_line_naming_it(tmp_path):
    mt = tmp_path / "mt-elsewhere"
    (mt / "ckpt" / "base").mkdir(parents=True)
    (mt / "ckpt" / "base" / "checkpoint_best.pt").write_bytes(b"")
    proc = subprocess.run(["bash", str(EXAMPLES / "mt_rerank" / "run.sh"), "--reduced", "--work", str(tmp_path / "w"),
                           "--data", str(DATA)], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, MT_WORK=str(mt), MT_ROW="base-untied"))
    assert proc.returncode == 2 and proc.stderr.strip() == (
        f"MT_WORK={mt} MT_ROW=base-untied: no ckpt/base-untied/checkpoint_best.pt there "
        f"(run examples/wmt14_en_de/run.sh --rows base-untied --work {mt} first)"), proc.stderr
